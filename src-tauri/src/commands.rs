//! Commands the UI calls with `invoke`. Each one hands the work to a library
//! crate (or the [`Session`]) on a blocking thread and returns its result as
//! JSON; errors become the crate's own message (a string the UI shows as is).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog::download::{Downloaded, Hub, Progress};
use catalog::fit::FitEstimate;
use catalog::hardware::Hardware;
use catalog::{Catalog, ModelEntry};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use crate::data::DataView;
use crate::session::{Added, Overview, Session};
use crate::store::{BuildFixes, PersonaCard, Project};

/// The processor, memory and graphics cards of this computer.
#[tauri::command]
pub async fn hardware_info() -> Result<Hardware, String> {
    blocking(|| catalog::hardware::probe().map_err(|e| e.to_string())).await
}

/// The models found on disk, plus the home folder so the UI can shorten paths.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelList {
    home: Option<String>,
    models: Vec<ModelCard>,
    locations: Vec<catalog::LocationReport>,
    /// The run the fit and time estimates are for (the default preset).
    fit_preset: &'static str,
    /// Tokens that run trains, and the data set assumed for it.
    fit_run_tokens: u64,
}

/// A model found on disk, with whether training it fits this computer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCard {
    #[serde(flatten)]
    entry: ModelEntry,
    /// Fits / tight / does not fit and about how long the default preset takes.
    fit: Option<FitEstimate>,
    /// Why there is no estimate (the file cannot be trained, or its shape is unknown).
    fit_problem: Option<String>,
}

/// Scans the usual model folders (Ollama, LM Studio, Hugging Face, Residency)
/// and estimates, for each model, the default preset's memory and time.
#[tauri::command]
pub async fn list_models() -> Result<ModelList, String> {
    blocking(|| {
        let Catalog { models, locations } = catalog::scan(&catalog::default_locations());
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(|h| h.to_string_lossy().into_owned());
        let hw = catalog::hardware::probe().ok();
        let models = models.into_iter().map(|entry| model_card(entry, hw.as_ref())).collect();
        Ok(ModelList {
            home,
            models,
            locations,
            fit_preset: runs::Preset::PersonaAndStyle.label(),
            fit_run_tokens: catalog::fit::TYPICAL_RUN_TOKENS,
        })
    })
    .await
}

/// The fit of the app's default preset (Persona and style) on `entry`: the
/// trainer's memory estimate for the model's shape, judged against `hw`.
fn model_card(entry: ModelEntry, hw: Option<&Hardware>) -> ModelCard {
    let no_fit = |why: String| (None, Some(why));
    let (fit, fit_problem) = match (&entry.problem, &entry.gguf, hw) {
        (Some(p), _, _) => no_fit(p.clone()),
        (None, None, _) => no_fit("Its header could not be read.".into()),
        (None, _, None) => no_fit("The memory of this computer could not be measured.".into()),
        (None, Some(g), Some(hw)) => match runs::estimate(&entry.path, &runs::Preset::PersonaAndStyle.settings()) {
            Ok(est) => (Some(catalog::fit::assess(est.need_bytes, g.parameter_count, catalog::fit::TYPICAL_RUN_TOKENS, hw)), None),
            Err(e) => no_fit(e.to_string()),
        },
    };
    ModelCard { entry, fit, fit_problem }
}

/// The stop flag of the download in progress (one at a time: a second one
/// would compete for the same connection and disk).
static DOWNLOAD: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);

/// Progress is sent at most this often (a fast link gives thousands of chunks).
const PROGRESS_EVERY: Duration = Duration::from_millis(150);

/// Downloads `file` of the Hugging Face repository `repo` (or its 4-bit GGUF
/// file when `file` is empty) into the Hugging Face cache, where the model
/// list finds it. A download cut short (cancelled, connection lost) keeps its
/// part, and the next call for the same file continues from there.
#[tauri::command]
pub async fn download_model(repo: String, file: Option<String>, on_progress: Channel<Progress>) -> Result<Downloaded, String> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut slot = DOWNLOAD.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return Err("A download is already running: wait for it to finish or cancel it first.".into());
        }
        *slot = Some(stop.clone());
    }
    let result = blocking(move || {
        let hub = Hub::from_env().map_err(|e| e.to_string())?;
        let file = file.map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
        let mut last: Option<Instant> = None;
        hub.download(repo.trim(), file.as_deref(), &stop, |p| {
            if p.done == p.total || last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                last = Some(Instant::now());
                // The window may have closed: the download still finishes.
                let _ = on_progress.send(p);
            }
        })
        .map_err(|e| e.to_string())
    })
    .await;
    *DOWNLOAD.lock().unwrap_or_else(|p| p.into_inner()) = None;
    result
}

/// Stops the download in progress soon (between two chunks); what arrived is
/// kept for resuming. False when no download was running.
#[tauri::command]
pub fn cancel_download() -> bool {
    match DOWNLOAD.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(stop) => {
            stop.store(true, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// The current project, every project, and why the last one could not be reopened (if so).
#[tauri::command]
pub async fn app_overview(session: State<'_, Arc<Session>>) -> Result<Overview, String> {
    let s = session.inner().clone();
    blocking(move || s.overview().map_err(|e| e.to_string())).await
}

/// Makes a new, empty project the current one.
#[tauri::command]
pub async fn create_project(session: State<'_, Arc<Session>>, name: String) -> Result<Overview, String> {
    let s = session.inner().clone();
    blocking(move || {
        s.create_project(&name).map_err(|e| e.to_string())?;
        s.overview().map_err(|e| e.to_string())
    })
    .await
}

#[tauri::command]
pub async fn rename_project(session: State<'_, Arc<Session>>, id: String, name: String) -> Result<Overview, String> {
    let s = session.inner().clone();
    blocking(move || {
        s.rename_project(&id, &name).map_err(|e| e.to_string())?;
        s.overview().map_err(|e| e.to_string())
    })
    .await
}

#[tauri::command]
pub async fn open_project(session: State<'_, Arc<Session>>, id: String) -> Result<Overview, String> {
    let s = session.inner().clone();
    blocking(move || {
        s.open_project(&id).map_err(|e| e.to_string())?;
        s.overview().map_err(|e| e.to_string())
    })
    .await
}

/// What the drop zone and the Add buttons call: adds folders and files (absolute paths) to the
/// current project, then reads and checks them. Paths that cannot be used come back in `refused`.
#[tauri::command]
pub async fn add_data_paths(session: State<'_, Arc<Session>>, paths: Vec<String>) -> Result<Added, String> {
    let s = session.inner().clone();
    blocking(move || s.add_paths(&paths)).await
}

/// Takes a folder or file out of the project (it stays where it is on disk).
#[tauri::command]
pub async fn remove_data_path(session: State<'_, Arc<Session>>, path: String) -> Result<DataView, String> {
    let s = session.inner().clone();
    blocking(move || s.remove_path(&path)).await
}

/// The last inspection of the current project's data (`null` when it has none).
#[tauri::command]
pub async fn data_view(session: State<'_, Arc<Session>>) -> Result<Option<DataView>, String> {
    let s = session.inner().clone();
    blocking(move || s.data_view()).await
}

/// Reads and checks the current project's data again.
#[tauri::command]
pub async fn refresh_data(session: State<'_, Arc<Session>>) -> Result<DataView, String> {
    let s = session.inner().clone();
    blocking(move || s.refresh()).await
}

/// The one-click fixes accepted in the quality report (applied when the training set is built).
#[tauri::command]
pub async fn set_build_fixes(session: State<'_, Arc<Session>>, fixes: BuildFixes) -> Result<Project, String> {
    let s = session.inner().clone();
    blocking(move || s.set_fixes(fixes)).await
}

/// Saves the persona card with the project (never into the user's persona.toml).
#[tauri::command]
pub async fn save_persona(session: State<'_, Arc<Session>>, card: PersonaCard) -> Result<Project, String> {
    let s = session.inner().clone();
    blocking(move || s.save_persona(&card)).await
}

/// Chooses the project's model (its tokenizer measures the examples); `null` for none.
#[tauri::command]
pub async fn set_project_model(session: State<'_, Arc<Session>>, path: Option<String>) -> Result<Project, String> {
    let s = session.inner().clone();
    blocking(move || s.set_model(path.as_deref())).await
}

/// Drops the project's card: the persona file in the data is used again.
#[tauri::command]
pub async fn reset_persona(session: State<'_, Arc<Session>>) -> Result<Project, String> {
    let s = session.inner().clone();
    blocking(move || s.reset_persona()).await
}

/// Runs disk- or system-bound work off the UI thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| format!("Residency hit an internal error: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_info_reports_cores_and_memory() {
        let hw = tauri::async_runtime::block_on(hardware_info()).unwrap();
        assert!(hw.logical_cores >= 1);
        assert!(hw.total_memory_bytes > 0);
    }

    #[test]
    fn list_models_reports_every_default_location_as_camel_case_json() {
        let list = tauri::async_runtime::block_on(list_models()).unwrap();
        assert_eq!(list.locations.len(), catalog::default_locations().len());
        let json = serde_json::to_value(&list).unwrap();
        assert!(json["models"].is_array());
        assert!(json["locations"][0]["modelCount"].is_u64());
        assert!(json.get("home").is_some());
        assert_eq!(json["fitPreset"], "Persona and style");
        for m in json["models"].as_array().unwrap() {
            assert!(m["path"].is_string(), "the entry's fields stay at the top level: {m}");
            assert!(m["fit"].is_object() != m["fitProblem"].is_string(), "an estimate or the reason for none: {m}");
        }
    }

    #[test]
    fn the_smollm2_fixture_gets_a_fit_and_a_time() {
        let path = fixtures::path(fixtures::Fixture::SmolLm2);
        let gguf = catalog::read_summary(&path).unwrap();
        let entry = ModelEntry {
            name: "SmolLM2".into(),
            size_bytes: std::fs::metadata(&path).unwrap().len(),
            path,
            source: catalog::Source::Residency,
            gguf: Some(gguf),
            problem: None,
        };
        let hw = catalog::hardware::probe().unwrap();
        let card = model_card(entry, Some(&hw));
        let fit = card.fit.unwrap_or_else(|| panic!("{:?}", card.fit_problem));
        // The trainer's estimate for this preset (sequence 1024) is a few hundred MiB.
        assert!(fit.need_bytes > 200 << 20 && fit.need_bytes < 2 << 30, "{}", fit.need_bytes);
        assert!(fit.seconds > 0.0 && fit.summary.contains("(estimate)") || fit.verdict == catalog::fit::Verdict::DoesNotFit);
    }

    #[test]
    fn a_model_that_cannot_be_read_gets_the_reason_instead_of_a_fit() {
        let entry = ModelEntry {
            name: "broken".into(),
            path: "/nowhere/broken.gguf".into(),
            size_bytes: 3,
            source: catalog::Source::Residency,
            gguf: None,
            problem: Some("This file is not a model: it has no GGUF header.".into()),
        };
        let card = model_card(entry, None);
        assert!(card.fit.is_none());
        assert_eq!(card.fit_problem.as_deref(), Some("This file is not a model: it has no GGUF header."));
    }

    #[test]
    fn cancel_without_a_download_returns_false() {
        assert!(!cancel_download());
    }
}
