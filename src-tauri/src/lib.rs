//! The Residency desktop shell: a window showing the web UI (ui/) and a few
//! commands that call the library crates. No logic of its own lives here.

mod commands;

pub fn run() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![
            commands::hardware_info,
            commands::list_models
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("Residency could not start: {e}");
            std::process::exit(1);
        });
}
