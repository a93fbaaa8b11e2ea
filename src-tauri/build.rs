// The app embeds the web UI from ../ui/dist at compile time (tauri.conf.json's
// frontendDist). Fail early, with the command to run, when it was not built.
use std::path::Path;

/// The app's own commands. Listing them here makes Tauri generate one
/// permission per command (`allow-hardware-info`, ...) and deny any command
/// not granted in capabilities/default.json.
const COMMANDS: &[&str] = &[
    "hardware_info",
    "list_models",
    "download_model",
    "cancel_download",
    "app_overview",
    "create_project",
    "rename_project",
    "open_project",
    "add_data_paths",
    "remove_data_path",
    "data_view",
    "refresh_data",
    "set_build_fixes",
    "save_persona",
    "reset_persona",
    "set_project_model",
    "train_presets",
    "train_estimate",
    "start_run",
    "pause_run",
    "resume_run",
    "cancel_run",
    "discard_run",
    "list_runs",
    "run_detail",
    "open_chat",
    "send_chat_message",
    "stop_chat",
    "new_chat",
    "list_chats",
    "load_chat",
    "set_chat_settings",
];

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("src-tauri has a parent folder")
        .join("ui/dist");
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );
    if !dist.join("index.html").is_file() {
        panic!(
            "\n\nThe web UI has not been built: {} has no index.html.\n\
             Build it first with:  cd ui && npm ci && npm run build\n\
             (or build and bundle the whole app with:  cd ui && npm ci && npm run app:build)\n\n",
            dist.display()
        );
    }
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
