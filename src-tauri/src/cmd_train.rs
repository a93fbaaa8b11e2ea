//! The Train screen's commands: thin wrappers over the runs crate. Progress reaches the window
//! as `train-update` events (a trainer event or a run's new status, see [`runs::Update`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runs::{Fit, Preset, RunDetail, RunRecord, RunSpec, Runs, Settings};
use serde::Serialize;
use tauri::{Emitter, State};

use crate::session::Session;
use crate::store::Project;

/// The event every run update is sent as (payload: `runs::Update`).
pub const TRAIN_UPDATE: &str = "train-update";

/// Sends run updates to every window.
pub fn window_sink(app: tauri::AppHandle) -> runs::Sink {
    Arc::new(move |u: &runs::Update| {
        if let Err(e) = app.emit(TRAIN_UPDATE, u) {
            eprintln!("Residency could not send a training update to the window: {e}");
        }
    })
}

/// A preset card: its id, its name and the settings it starts from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresetCard {
    pub id: Preset,
    pub label: &'static str,
    pub settings: Settings,
}

pub fn preset_cards() -> Vec<PresetCard> {
    Preset::ALL.iter().map(|p| PresetCard { id: *p, label: p.label(), settings: p.settings() }).collect()
}

/// What a run of the project is made from: its folders, its persona and accepted fixes, its model.
pub fn spec_for(p: &Project, preset: Preset, settings: Settings) -> RunSpec {
    let model = p.model.as_ref().map(PathBuf::from);
    // The model's own tokenizer measures the records, as on the Data screen; the labelled
    // estimate when it cannot be read (the trainer then says why the model is unusable).
    let counter = model
        .as_deref()
        .and_then(|m| crate::tokens::counter_for(m).ok())
        .unwrap_or_else(|| Arc::new(dataset::CharEstimate) as Arc<dyn dataset::TokenCounter>);
    RunSpec {
        project_id: p.id.clone(),
        model,
        paths: p.paths.iter().map(PathBuf::from).collect(),
        build: p.build_options(Path::new("train.jsonl")),
        preset,
        settings,
        counter,
    }
}

fn current(session: &Session) -> Result<Project, String> {
    session.current().ok_or_else(|| "Create or open a project first.".to_string())
}

#[tauri::command]
pub fn train_presets() -> Vec<PresetCard> {
    preset_cards()
}

/// The memory a run with `settings` needs on the project's model, against what is free.
#[tauri::command]
pub async fn train_estimate(session: State<'_, Arc<Session>>, settings: Settings) -> Result<Fit, String> {
    let s = session.inner().clone();
    blocking(move || {
        let p = current(&s)?;
        let model = p.model.ok_or_else(|| runs::RunError::NoModel.to_string())?;
        runs::estimate(Path::new(&model), &settings).map_err(|e| e.to_string())
    })
    .await
}

#[tauri::command]
pub async fn start_run(session: State<'_, Arc<Session>>, runs: State<'_, Runs>, preset: Preset, settings: Settings) -> Result<RunRecord, String> {
    let (s, r) = (session.inner().clone(), runs.inner().clone());
    blocking(move || r.start(spec_for(&current(&s)?, preset, settings)).map_err(|e| e.to_string())).await
}

#[tauri::command]
pub async fn pause_run(runs: State<'_, Runs>, id: String) -> Result<(), String> {
    let r = runs.inner().clone();
    blocking(move || r.pause(&id).map_err(|e| e.to_string())).await
}

#[tauri::command]
pub async fn resume_run(runs: State<'_, Runs>, id: String) -> Result<RunRecord, String> {
    let r = runs.inner().clone();
    blocking(move || r.resume(&id).map_err(|e| e.to_string())).await
}

#[tauri::command]
pub async fn cancel_run(runs: State<'_, Runs>, id: String) -> Result<(), String> {
    let r = runs.inner().clone();
    blocking(move || r.cancel(&id).map_err(|e| e.to_string())).await
}

#[tauri::command]
pub async fn discard_run(runs: State<'_, Runs>, id: String) -> Result<(), String> {
    let r = runs.inner().clone();
    blocking(move || r.discard(&id).map_err(|e| e.to_string())).await
}

/// The runs of a project (the current one when `project_id` is null), newest first. Each has
/// at least `id`, `status`, `adapterDir` (null unless an adapter exists), `startedAt`, `finishedAt`.
#[tauri::command]
pub async fn list_runs(session: State<'_, Arc<Session>>, runs: State<'_, Runs>, project_id: Option<String>) -> Result<Vec<RunRecord>, String> {
    let (s, r) = (session.inner().clone(), runs.inner().clone());
    blocking(move || {
        let id = match project_id {
            Some(id) => id,
            None => match s.current() {
                Some(p) => p.id,
                None => return Ok(Vec::new()),
            },
        };
        r.list(&id).map_err(|e| e.to_string())
    })
    .await
}

/// A run with its history (every step, evaluation and sample reply) to redraw the chart.
#[tauri::command]
pub async fn run_detail(runs: State<'_, Runs>, id: String) -> Result<RunDetail, String> {
    let r = runs.inner().clone();
    blocking(move || r.detail(&id).map_err(|e| e.to_string())).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(f).await.map_err(|e| format!("Residency hit an internal error: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BuildFixes, PersonaCard, Store};

    #[test]
    fn presets_reach_the_window_with_their_settings_in_camel_case() {
        let json = serde_json::to_value(preset_cards()).unwrap();
        assert_eq!(json[0]["id"], "personaAndStyle");
        assert_eq!(json[0]["label"], "Persona and style");
        assert_eq!(json[2]["id"], "textToSql");
        assert!(json[2]["settings"]["seqLen"].as_u64().unwrap() > json[0]["settings"]["seqLen"].as_u64().unwrap());
        assert!(json[1]["settings"]["gradAccum"].is_u64() && json[1]["settings"]["evalEvery"].is_u64());
    }

    #[test]
    fn a_run_is_made_from_the_projects_data_persona_fixes_and_model() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let mut p = store.create("Roastery").unwrap();
        p.paths = vec!["/data/a".into(), "/data/b".into()];
        p.fixes = BuildFixes { redact: true, drop_duplicates: true, ..Default::default() };
        p.persona = Some(PersonaCard { name: "Maggie".into(), ..Default::default() });
        let spec = spec_for(&p, Preset::DomainExpert, Preset::DomainExpert.settings());
        assert_eq!(spec.project_id, p.id);
        assert_eq!(spec.paths, [PathBuf::from("/data/a"), PathBuf::from("/data/b")]);
        assert!(spec.build.redact && spec.build.drop_duplicates && !spec.build.fix_text);
        assert_eq!(spec.build.persona.as_ref().unwrap().name, "Maggie");
        assert!(spec.model.is_none(), "no model chosen: the run is refused with the reason");
        let runs = Runs::open(&d.path().join("runs"), Arc::new(|_: &runs::Update| {})).unwrap();
        assert!(runs.start(spec).unwrap_err().to_string().contains("Choose a model"));
    }
}
