//! Commands the UI calls with `invoke`. Each one hands the work to a library
//! crate (or the [`Session`]) on a blocking thread and returns its result as
//! JSON; errors become the crate's own message (a string the UI shows as is).

use std::sync::Arc;

use catalog::hardware::Hardware;
use catalog::{Catalog, ModelEntry};
use serde::Serialize;
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
    models: Vec<ModelEntry>,
    locations: Vec<catalog::LocationReport>,
}

/// Scans the usual model folders (Ollama, LM Studio, Hugging Face, Residency).
#[tauri::command]
pub async fn list_models() -> Result<ModelList, String> {
    blocking(|| {
        let Catalog { models, locations } = catalog::scan(&catalog::default_locations());
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(|h| h.to_string_lossy().into_owned());
        Ok(ModelList {
            home,
            models,
            locations,
        })
    })
    .await
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
    }
}
