//! Commands the UI calls with `invoke`. Each one hands the work to a library
//! crate on a blocking thread and returns its result as JSON; errors become
//! the crate's own message (a string the UI shows as is).

use catalog::hardware::Hardware;
use catalog::{Catalog, ModelEntry};
use serde::Serialize;

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
