//! The Residency desktop shell: a window showing the web UI (ui/) and commands that call the
//! library crates. The little state it keeps (projects, the last data inspection, folder
//! watchers) lives in [`session::Session`], over the project store in [`store`].

mod cmd_train;
mod cmd_chat;
mod commands;
pub mod data;
pub mod session;
pub mod store;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{Emitter, Manager};

/// Overrides the app-data folder (tests run the real app without touching a person's projects).
pub const DATA_DIR_ENV: &str = "RESIDENCY_DATA_DIR";

/// Sends session events to every window.
struct WindowSink(tauri::AppHandle);

impl session::EventSink for WindowSink {
    fn emit(&self, event: &str, payload: serde_json::Value) {
        if let Err(e) = self.0.emit(event, payload) {
            eprintln!("Residency could not send {event} to the window: {e}");
        }
    }
}

pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            let dir = match std::env::var_os(DATA_DIR_ENV) {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => app.path().app_data_dir()?,
            };
            let store = store::Store::open(&dir)?;
            let session = session::Session::open(store, Arc::new(WindowSink(app.handle().clone())));
            app.manage(session);
            // The Chat screen's model and conversation, kept while the app runs.
            app.manage(Arc::new(cmd_chat::ChatState::default()));
            // Training runs; a run that was training when the app stopped is marked interrupted.
            let runs = runs::Runs::open(&dir.join("runs"), cmd_train::window_sink(app.handle().clone()))?;
            app.manage(runs);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::hardware_info,
            commands::list_models,
            commands::download_model,
            commands::cancel_download,
            commands::app_overview,
            commands::create_project,
            commands::rename_project,
            commands::open_project,
            commands::add_data_paths,
            commands::remove_data_path,
            commands::data_view,
            commands::refresh_data,
            commands::set_build_fixes,
            commands::save_persona,
            commands::reset_persona,
            commands::set_project_model,
            cmd_train::train_presets,
            cmd_train::train_estimate,
            cmd_train::start_run,
            cmd_train::pause_run,
            cmd_train::resume_run,
            cmd_train::cancel_run,
            cmd_train::discard_run,
            cmd_train::list_runs,
            cmd_train::run_detail,
            cmd_chat::open_chat,
            cmd_chat::send_chat_message,
            cmd_chat::stop_chat,
            cmd_chat::new_chat,
            cmd_chat::list_chats,
            cmd_chat::load_chat,
            cmd_chat::set_chat_settings,
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("Residency could not start: {e}");
            std::process::exit(1);
        });
}
