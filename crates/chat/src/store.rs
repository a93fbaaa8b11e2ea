//! Conversations on disk: one JSON file each in a folder of the project's (the app gives
//! `<app data>/chats/<project id>`). Every write goes to a temporary file in the same folder,
//! flushed, then renamed over the old one: a crash leaves the previous version whole.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::conversation::{Conversation, Settings};
use crate::error::{ChatError, Result};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub id: String,
    pub title: String,
    pub updated: u64,
    pub turns: usize,
}

/// Every conversation found, newest first, and the files that could not be read (never hidden).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub conversations: Vec<Summary>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ConversationStore {
    dir: PathBuf,
}

impl ConversationStore {
    /// The store in `dir` (made on the first save).
    pub fn new(dir: &Path) -> ConversationStore {
        ConversationStore { dir: dir.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> Result<PathBuf> {
        if !valid_id(id) {
            return Err(ChatError::NoSuchConversation(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// A new, empty conversation (not saved until its first message).
    pub fn create(&self, settings: Settings) -> Conversation {
        let mut id = new_id();
        while self.dir.join(format!("{id}.json")).exists() {
            id = new_id();
        }
        Conversation::new(id, now(), settings)
    }

    pub fn load(&self, id: &str) -> Result<Conversation> {
        let path = self.path(id)?;
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ChatError::NoSuchConversation(id.to_string())),
            Err(source) => return Err(ChatError::Read { path, source }),
        };
        serde_json::from_str(&text).map_err(|e| ChatError::Damaged { path, why: e.to_string() })
    }

    /// Saves `c`, stamping `updated`.
    pub fn save(&self, c: &mut Conversation) -> Result<()> {
        let path = self.path(&c.id)?;
        fs::create_dir_all(&self.dir).map_err(|source| ChatError::Write { path: self.dir.clone(), source })?;
        c.updated = now().max(c.created);
        let json = serde_json::to_vec_pretty(c).expect("a conversation always serialises");
        write_atomic(&path, &json)
    }

    /// All saved conversations, most recent first. A missing folder is an empty list.
    pub fn list(&self) -> Result<Listing> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing { conversations: vec![], problems: vec![] }),
            Err(source) => return Err(ChatError::Read { path: self.dir.clone(), source }),
        };
        let (mut conversations, mut problems) = (Vec::new(), Vec::new());
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json").filter(|id| valid_id(id)) else { continue };
            match self.load(id) {
                Ok(c) => conversations.push(Summary { id: c.id, title: c.title, updated: c.updated, turns: c.turns.len() }),
                Err(err) => problems.push(err.to_string()),
            }
        }
        conversations.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
        problems.sort();
        Ok(Listing { conversations, problems })
    }
}

/// Ids are made here (lowercase hex and dashes); anything else (a path, `..`) is refused.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn new_id() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // Milliseconds (so ids sort by time), then the sub-millisecond part; `create` checks clashes.
    format!("{:012x}-{:x}", t.as_millis(), t.subsec_nanos() % 1_000_000)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    engine::files::write_atomic(path, bytes).map_err(|source| ChatError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Turn;

    #[test]
    fn conversations_round_trip_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::new(&dir.path().join("chats").join("p1"));
        assert!(store.list().unwrap().conversations.is_empty(), "a missing folder is an empty list");
        let mut a = store.create(Settings::default());
        a.title_from("first");
        a.turns.push(Turn { user: "first".into(), at: 1, replies: vec![], error: Some("it failed".into()) });
        store.save(&mut a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut b = store.create(Settings { side_by_side: true, ..Default::default() });
        store.save(&mut b).unwrap();
        assert_eq!(store.load(&a.id).unwrap(), a);
        let l = store.list().unwrap();
        assert_eq!(l.conversations.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [b.id.as_str(), a.id.as_str()]);
        assert_eq!(l.conversations[1].turns, 1);
        let leftovers: Vec<_> = fs::read_dir(store.dir()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn bad_ids_and_damaged_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::new(dir.path());
        assert!(matches!(store.load("../etc/passwd"), Err(ChatError::NoSuchConversation(_))));
        assert!(matches!(store.load("abc"), Err(ChatError::NoSuchConversation(_))));
        fs::write(dir.path().join("abc.json"), "{ not json").unwrap();
        let e = store.load("abc").unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
        let l = store.list().unwrap();
        assert!(l.conversations.is_empty());
        assert_eq!(l.problems.len(), 1);
    }
}
