//! The Chat screen's commands: thin wrappers over the chat crate's [`ChatSession`]. Replies
//! stream to the window through a `Channel` (one [`ChatEvent`] per piece of text, then one per
//! finished reply); generation runs on a blocking thread, and `stop_chat` only raises a flag, so
//! it answers at once while a reply is being written.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chat::{ChatSession, ChatView, Conversation, Listing, Settings, Setup, Side, SideReply, Turn};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use crate::session::Session;
use crate::store::{PersonaCard, Project, Store};

/// The chat kept while the app runs (the model stays loaded between visits to the screen).
#[derive(Default)]
pub struct ChatState {
    session: Mutex<Option<ChatSession>>,
    stop: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What `open_chat` returns: the screen, and why the chosen adapter could not be used.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatOpened {
    pub view: ChatView,
    pub adapter_error: Option<String>,
}

/// A streamed piece of a reply, or a finished reply.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ChatEvent {
    Token { side: Side, text: String },
    Reply { reply: SideReply },
}

/// What the chat runs with for project `p`: its model (or `model` when given, e.g. the model a
/// run trained on), the adapter, its persona card (or the persona file among its data), its
/// data as the examples, and its conversations folder in the app-data folder.
pub fn setup_for(p: &Project, store: &Store, model: Option<&str>, adapter: Option<&str>) -> Result<Setup, String> {
    let model = model.or(p.model.as_deref()).map(str::trim).filter(|m| !m.is_empty()).ok_or_else(|| {
        "Choose a model on the Model screen first: the chat needs one to talk with.".to_string()
    })?;
    let examples: Vec<PathBuf> = p.paths.iter().map(PathBuf::from).collect();
    let persona = match &p.persona {
        Some(card) => Some(card.to_persona()),
        None => crate::data::find_persona(&examples, &dataset::Options::default()).and_then(|f| f.card).map(|c: PersonaCard| c.to_persona()),
    };
    Ok(Setup {
        model: PathBuf::from(model),
        adapter: adapter.map(str::trim).filter(|a| !a.is_empty()).map(PathBuf::from),
        persona,
        examples,
        conversations: store.dir().join("chats").join(&p.id),
    })
}

/// Opens the chat for the current project with `adapter` (null: none), loading the model the
/// first time and reloading only what changed.
#[tauri::command]
pub async fn open_chat(
    session: State<'_, Arc<Session>>,
    chat: State<'_, Arc<ChatState>>,
    model: Option<String>,
    adapter: Option<String>,
) -> Result<ChatOpened, String> {
    let (s, c) = (session.inner().clone(), chat.inner().clone());
    blocking(move || {
        let p = s.current().ok_or("Create or open a project first.")?;
        let setup = setup_for(&p, s.store(), model.as_deref(), adapter.as_deref())?;
        let mut guard = lock(&c.session);
        let adapter_error = match guard.as_mut() {
            Some(chat) => chat.configure(&setup).err().map(|e| e.to_string()),
            None => match ChatSession::open(&setup) {
                Ok(chat) => {
                    *guard = Some(chat);
                    None
                }
                Err(e @ chat::ChatError::Adapter { .. }) => {
                    // The model is fine: go on without the adapter and say why.
                    *guard = Some(ChatSession::open(&Setup { adapter: None, ..setup }).map_err(|e| e.to_string())?);
                    Some(e.to_string())
                }
                Err(e) => return Err(e.to_string()),
            },
        };
        let view = guard.as_ref().expect("opened above").view().map_err(|e| e.to_string())?;
        Ok(ChatOpened { view, adapter_error })
    })
    .await
}

/// Sends a message; each side's reply streams through `on_event`. The message is saved first,
/// so a failure (returned as its message) never loses it.
#[tauri::command]
pub async fn send_chat_message(chat: State<'_, Arc<ChatState>>, text: String, on_event: Channel<ChatEvent>) -> Result<Turn, String> {
    let c = chat.inner().clone();
    blocking(move || {
        let mut guard = lock(&c.session);
        let session = guard.as_mut().ok_or("Open the Chat screen first.")?;
        let send = |e: ChatEvent| {
            if let Err(err) = on_event.send(e) {
                eprintln!("Residency could not send a reply to the window: {err}");
            }
        };
        let turn = session
            .send(&text, &c.stop, |side, piece| send(ChatEvent::Token { side, text: piece.to_string() }))
            .map_err(|e| e.to_string())?;
        for r in &turn.replies {
            send(ChatEvent::Reply { reply: r.clone() });
        }
        Ok(turn)
    })
    .await
}

/// Stops the reply being written (what arrived is kept, marked stopped).
#[tauri::command]
pub fn stop_chat(chat: State<'_, Arc<ChatState>>) {
    chat.stop.store(true, Ordering::SeqCst);
}

/// Starts an empty conversation (the previous one stays saved).
#[tauri::command]
pub async fn new_chat(chat: State<'_, Arc<ChatState>>) -> Result<ChatView, String> {
    with_chat(chat.inner().clone(), |s| {
        s.new_conversation();
        s.view().map_err(|e| e.to_string())
    })
    .await
}

/// The project's saved conversations, newest first.
#[tauri::command]
pub async fn list_chats(chat: State<'_, Arc<ChatState>>) -> Result<Listing, String> {
    with_chat(chat.inner().clone(), |s| s.list().map_err(|e| e.to_string())).await
}

/// Reopens a saved conversation.
#[tauri::command]
pub async fn load_chat(chat: State<'_, Arc<ChatState>>, id: String) -> Result<ChatView, String> {
    with_chat(chat.inner().clone(), move |s| {
        s.open_conversation(&id).map_err(|e| e.to_string())?;
        s.view().map_err(|e| e.to_string())
    })
    .await
}

/// Temperature, top-p, reply length, seed and side by side (checked; saved with the conversation).
#[tauri::command]
pub async fn set_chat_settings(chat: State<'_, Arc<ChatState>>, settings: Settings) -> Result<ChatView, String> {
    with_chat(chat.inner().clone(), move |s| {
        s.set_settings(settings).map(|_: &Conversation| ()).map_err(|e| e.to_string())?;
        s.view().map_err(|e| e.to_string())
    })
    .await
}

async fn with_chat<T: Send + 'static>(c: Arc<ChatState>, f: impl FnOnce(&mut ChatSession) -> Result<T, String> + Send + 'static) -> Result<T, String> {
    blocking(move || {
        let mut guard = lock(&c.session);
        f(guard.as_mut().ok_or("Open the Chat screen first.")?)
    })
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(f).await.map_err(|e| format!("Residency hit an internal error: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/coffee-roaster")
    }

    #[test]
    fn the_setup_comes_from_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut p = store.create("Shop").unwrap();
        assert!(setup_for(&p, &store, None, None).unwrap_err().contains("Model screen"));
        p.model = Some("/models/m.gguf".into());
        p.paths = vec![demo().display().to_string()];
        let s = setup_for(&p, &store, None, Some("  ")).unwrap();
        assert_eq!(s.model, PathBuf::from("/models/m.gguf"));
        assert_eq!(s.adapter, None, "a blank adapter is none");
        assert_eq!(s.examples, [demo()]);
        assert_eq!(s.conversations, dir.path().join("chats").join(&p.id));
        assert!(s.persona.as_ref().unwrap().name.starts_with("Maggie"), "the persona file in the data is used");
        p.persona = Some(PersonaCard { name: "Sam".into(), ..Default::default() });
        let s = setup_for(&p, &store, Some("/runs/base.gguf"), Some("/runs/r1/adapter")).unwrap();
        assert_eq!(s.persona.unwrap().name, "Sam", "the card saved in the app wins");
        assert_eq!(s.model, PathBuf::from("/runs/base.gguf"));
        assert_eq!(s.adapter, Some(PathBuf::from("/runs/r1/adapter")));
    }

    #[test]
    fn events_serialise_as_the_ui_reads_them() {
        let e = serde_json::to_value(ChatEvent::Token { side: Side::Prompted, text: "Hi".into() }).unwrap();
        assert_eq!(e, serde_json::json!({"kind": "token", "side": "prompted", "text": "Hi"}));
    }
}
