//! Watching a folder: additions, edits, deletions and renames update the records and the report,
//! debounced, and each change is announced as an event for the app.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::options::{Options, TokenCounter};
use crate::persona::Persona;
use crate::record::Record;
use crate::report::Report;

/// What happened to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(PathBuf),
    Modified(PathBuf),
    Removed(PathBuf),
    Renamed { from: PathBuf, to: PathBuf },
}

/// Events sent to the app.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// Files changed (one debounced batch).
    Changed(Vec<Change>),
    /// The dataset and report were rebuilt after a batch; `took` is how long that took.
    Updated { snapshot: Arc<Snapshot>, took: Duration },
    /// The watcher itself hit a problem (the folder was removed, the OS event queue overflowed…).
    Error(String),
}

/// The records and report at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub records: Vec<Record>,
    pub report: Report,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {message}")]
    Watch { path: String, message: String },
}

/// A running watch; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    latest: Arc<Mutex<Arc<Snapshot>>>,
}

impl Watcher {
    /// The latest records and report.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.latest.lock().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// Reads the folder once, then keeps records and report up to date as files change, calling
/// `on_event` from the watcher's thread. `debounce` groups bursts of events (200 ms is a good value).
pub fn watch(
    root: &Path,
    opts: Options,
    counter: Arc<dyn TokenCounter>,
    persona: Option<Persona>,
    debounce: Duration,
    on_event: impl Fn(WatchEvent) + Send + 'static,
) -> Result<Watcher, WatchError> {
    let root = root.to_path_buf();
    let first = Arc::new(scan(&root, &opts, counter.as_ref(), persona.clone()));
    let latest = Arc::new(Mutex::new(first));
    let latest2 = latest.clone();
    let root2 = root.clone();
    let mut debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| match res {
        Err(errors) => {
            for e in errors {
                on_event(WatchEvent::Error(e.to_string()));
            }
        }
        Ok(events) => {
            let mut changes = Vec::new();
            for ev in events {
                let paths = &ev.event.paths;
                let change = match ev.event.kind {
                    EventKind::Create(_) => paths.first().cloned().map(Change::Added),
                    EventKind::Remove(_) => paths.first().cloned().map(Change::Removed),
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if paths.len() >= 2 => {
                        Some(Change::Renamed { from: paths[0].clone(), to: paths[1].clone() })
                    }
                    EventKind::Modify(ModifyKind::Name(RenameMode::From)) => paths.first().cloned().map(Change::Removed),
                    EventKind::Modify(ModifyKind::Name(RenameMode::To)) => paths.first().cloned().map(Change::Added),
                    EventKind::Modify(ModifyKind::Metadata(_)) => None,
                    EventKind::Modify(_) => paths.first().cloned().map(Change::Modified),
                    _ => None,
                };
                if let Some(c) = change {
                    if !changes.contains(&c) {
                        changes.push(c);
                    }
                }
            }
            if changes.is_empty() {
                return;
            }
            on_event(WatchEvent::Changed(changes));
            let t = Instant::now();
            let snap = Arc::new(scan(&root2, &opts, counter.as_ref(), persona.clone()));
            if let Ok(mut g) = latest2.lock() {
                *g = snap.clone();
            }
            on_event(WatchEvent::Updated { snapshot: snap, took: t.elapsed() });
        }
    })
    .map_err(|e| WatchError::Watch { path: root.display().to_string(), message: e.to_string() })?;
    debouncer
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| WatchError::Watch { path: root.display().to_string(), message: e.to_string() })?;
    Ok(Watcher { _debouncer: debouncer, latest })
}

fn scan(root: &Path, opts: &Options, counter: &dyn TokenCounter, persona: Option<Persona>) -> Snapshot {
    let mut records = Vec::new();
    let s = crate::collect::run(&[root.to_path_buf()], opts, counter, persona, &[], &mut |_, r, _| records.push(r));
    Snapshot { records, report: s.report }
}
