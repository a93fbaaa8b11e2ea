//! The app's state between commands: the project store, the current project, the last data
//! inspection and the folder watchers. Plain Rust (no window needed), so the tests drive it
//! directly; the Tauri commands are thin wrappers. Every method may block (disk, inspection):
//! the commands call them on a blocking thread.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dataset::TokenCounter;

use serde::Serialize;

use crate::data::{self, DataView};
use crate::store::{BuildFixes, Listing, PersonaCard, Project, Store, StoreError};

/// Names of the events sent to the window.
pub mod events {
    /// Files changed in a watched folder (payload: [`super::Changed`]); a fresh inspection follows.
    pub const DATA_CHANGED: &str = "data-changed";
    /// A fresh inspection of the current project (payload: `DataView`).
    pub const DATA_UPDATED: &str = "data-updated";
    /// Watching a folder failed (payload: [`super::WatchProblem`]).
    pub const WATCH_ERROR: &str = "data-watch-error";
}

/// Where events go: the window in the app, a list in tests.
pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: &str, payload: serde_json::Value);
}

/// The default name of the project made when data is added before any project exists.
pub const FIRST_PROJECT_NAME: &str = "My assistant";

/// How long the watcher waits for a burst of file changes to settle.
const DEBOUNCE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    pub project_id: String,
    /// One line per change, e.g. "added notes/faq.md".
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchProblem {
    pub project_id: String,
    pub message: String,
}

/// What the window needs at start and after switching projects.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub current: Option<Project>,
    pub listing: Listing,
    /// Why the last project could not be reopened, when it could not.
    pub notice: Option<String>,
}

/// The result of adding paths: the fresh view and the paths refused, each with the reason.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    pub project: Project,
    pub view: DataView,
    pub refused: Vec<String>,
}

pub struct Session {
    store: Store,
    sink: Arc<dyn EventSink>,
    current: Mutex<Option<Project>>,
    view: Mutex<Option<DataView>>,
    watchers: Mutex<Vec<dataset::Watcher>>,
    /// Inspections run one at a time, each reading the project as it is when it starts, so the
    /// last one to finish always reflects the latest paths and files.
    inspecting: Mutex<()>,
    notice: Mutex<Option<String>>,
    /// The token counter of the project's model, kept while the model stays the same.
    counter: Mutex<Option<(String, Arc<dyn TokenCounter>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another thread must not make the app unusable: the data is still consistent
    // (every field is replaced whole).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// Opens the store and reopens the project that was current when the app last closed.
    pub fn open(store: Store, sink: Arc<dyn EventSink>) -> Arc<Session> {
        let s = Arc::new(Session {
            store,
            sink,
            current: Mutex::new(None),
            view: Mutex::new(None),
            watchers: Mutex::new(Vec::new()),
            inspecting: Mutex::new(()),
            notice: Mutex::new(None),
            counter: Mutex::new(None),
        });
        let restored = s.store.current_id().and_then(|id| id.map(|id| s.store.load(&id)).transpose());
        match restored {
            Ok(p) => *lock(&s.current) = p,
            Err(e) => *lock(&s.notice) = Some(format!("Your last project could not be reopened. {e}")),
        }
        s
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn overview(&self) -> Result<Overview, StoreError> {
        Ok(Overview { current: lock(&self.current).clone(), listing: self.store.list()?, notice: lock(&self.notice).clone() })
    }

    pub fn current(&self) -> Option<Project> {
        lock(&self.current).clone()
    }

    fn set_current(&self, p: Project) -> Result<(), StoreError> {
        self.store.set_current(Some(&p.id))?;
        let switched = lock(&self.current).as_ref().map(|c| c.id != p.id).unwrap_or(true);
        *lock(&self.current) = Some(p);
        *lock(&self.notice) = None;
        if switched {
            lock(&self.watchers).clear();
            *lock(&self.view) = None;
        }
        Ok(())
    }

    /// Saves a changed copy of the current project and makes it current.
    fn save_current(&self, change: impl FnOnce(&mut Project)) -> Result<Project, String> {
        let mut p = self.current().ok_or_else(|| "Create or open a project first.".to_string())?;
        change(&mut p);
        let saved = self.store.save(&p).map_err(|e| e.to_string())?;
        *lock(&self.current) = Some(saved.clone());
        Ok(saved)
    }

    pub fn create_project(&self, name: &str) -> Result<Project, StoreError> {
        let p = self.store.create(name)?;
        self.set_current(p.clone())?;
        Ok(p)
    }

    pub fn rename_project(&self, id: &str, name: &str) -> Result<Project, StoreError> {
        let p = self.store.rename(id, name)?;
        let mut cur = lock(&self.current);
        if cur.as_ref().is_some_and(|c| c.id == p.id) {
            *cur = Some(p.clone());
        }
        Ok(p)
    }

    pub fn open_project(&self, id: &str) -> Result<Project, StoreError> {
        let p = self.store.load(id)?;
        self.set_current(p.clone())?;
        Ok(p)
    }

    /// Adds dropped or picked folders and files to the current project (making a first project
    /// when there is none), saves it, inspects, and watches the folders.
    pub fn add_paths(self: &Arc<Self>, given: &[String]) -> Result<Added, String> {
        if self.current().is_none() {
            self.create_project(FIRST_PROJECT_NAME).map_err(|e| e.to_string())?;
        }
        let already = self.current().map(|p| p.paths).unwrap_or_default();
        let (new, refused) = data::accept_paths(&already, given);
        if new.is_empty() && !refused.is_empty() {
            return Err(refused.join(" "));
        }
        let project = self.save_current(|p| p.paths.extend(new))?;
        let view = self.refresh()?;
        self.watch();
        Ok(Added { project, view, refused })
    }

    pub fn remove_path(self: &Arc<Self>, path: &str) -> Result<DataView, String> {
        self.save_current(|p| p.paths.retain(|x| x != path))?;
        let view = self.refresh()?;
        self.watch();
        Ok(view)
    }

    pub fn set_fixes(&self, fixes: BuildFixes) -> Result<Project, String> {
        self.save_current(|p| p.fixes = fixes)
    }

    /// Saves the edited persona card with the project (the person's persona.toml is never
    /// written), then re-checks the data against it.
    pub fn save_persona(&self, card: &PersonaCard) -> Result<Project, String> {
        let card = card.cleaned()?;
        let p = self.save_current(|p| p.persona = Some(card))?;
        self.refresh_if_inspected();
        Ok(p)
    }

    /// Chooses the project's model (a GGUF file or a Hugging Face folder; `None` for none). Its
    /// tokenizer then measures the examples.
    pub fn set_model(&self, model: Option<&str>) -> Result<Project, String> {
        let model = match model.map(str::trim).filter(|m| !m.is_empty()) {
            None => None,
            Some(m) => Some(
                std::fs::canonicalize(m)
                    .map_err(|e| format!("The model {m} cannot be used: {e}. Choose it again on the Model screen."))?
                    .to_string_lossy()
                    .into_owned(),
            ),
        };
        let p = self.save_current(|p| p.model = model)?;
        self.refresh_if_inspected();
        Ok(p)
    }

    /// The counter for `p`'s model (loaded once per model), or the estimate and the reason.
    fn counter_for(&self, p: &Project) -> (Arc<dyn TokenCounter>, Option<String>) {
        let Some(model) = &p.model else { return (Arc::new(dataset::CharEstimate), None) };
        if let Some((m, c)) = lock(&self.counter).as_ref() {
            if m == model {
                return (c.clone(), None);
            }
        }
        match crate::tokens::counter_for(std::path::Path::new(model)) {
            Ok(c) => {
                *lock(&self.counter) = Some((model.clone(), c.clone()));
                (c, None)
            }
            Err(why) => (Arc::new(dataset::CharEstimate), Some(why)),
        }
    }

    /// Forgets the edited card: the persona file among the data is used again.
    pub fn reset_persona(&self) -> Result<Project, String> {
        let p = self.save_current(|p| p.persona = None)?;
        self.refresh_if_inspected();
        Ok(p)
    }

    /// The last inspection of the current project, inspecting (and starting the watchers) the
    /// first time. `None` when there is no project or it has no data yet.
    pub fn data_view(self: &Arc<Self>) -> Result<Option<DataView>, String> {
        let Some(p) = self.current() else { return Ok(None) };
        if p.paths.is_empty() {
            return Ok(None);
        }
        if let Some(v) = lock(&self.view).as_ref().filter(|v| v.project_id == p.id) {
            return Ok(Some(v.clone()));
        }
        let v = self.refresh()?;
        self.watch();
        Ok(Some(v))
    }

    /// Inspects the current project now and keeps the result.
    pub fn refresh(&self) -> Result<DataView, String> {
        let _one_at_a_time = lock(&self.inspecting);
        let p = self.current().ok_or_else(|| "Create or open a project first.".to_string())?;
        let (counter, problem) = self.counter_for(&p);
        let mut v = data::inspect(&p.id, &p.paths, p.persona.as_ref(), counter.as_ref());
        v.tokenizer_problem = problem;
        // The project may have been switched meanwhile: keep only a view of the current one.
        if self.current().is_some_and(|c| c.id == p.id) {
            *lock(&self.view) = Some(v.clone());
        }
        Ok(v)
    }

    fn refresh_if_inspected(&self) {
        if lock(&self.view).is_some() {
            if let Ok(v) = self.refresh() {
                self.emit(events::DATA_UPDATED, &v);
            }
        }
    }

    fn emit(&self, event: &str, payload: &impl Serialize) {
        match serde_json::to_value(payload) {
            Ok(v) => self.sink.emit(event, v),
            Err(e) => eprintln!("Residency could not send {event} to the window: {e}"),
        }
    }

    /// (Re)starts one watcher per added folder or file of the current project. A change sends
    /// `data-changed`, then a fresh inspection of the whole project as `data-updated`.
    pub fn watch(self: &Arc<Self>) {
        let Some(p) = self.current() else { return };
        let mut watchers = Vec::new();
        for path in &p.paths {
            let weak = Arc::downgrade(self);
            let id = p.id.clone();
            let on_event = move |ev: dataset::WatchEvent| {
                let Some(s) = weak.upgrade() else { return };
                if !s.current().is_some_and(|c| c.id == id) {
                    return;
                }
                match ev {
                    dataset::WatchEvent::Changed(changes) => {
                        let changes = changes.iter().map(describe_change).collect();
                        s.emit(events::DATA_CHANGED, &Changed { project_id: id.clone(), changes });
                    }
                    // The watcher re-read its own folder; the project may have several, so
                    // the view is rebuilt from all of them.
                    dataset::WatchEvent::Updated { .. } => match s.refresh() {
                        Ok(v) if v.project_id == id => s.emit(events::DATA_UPDATED, &v),
                        Ok(_) => {}
                        Err(message) => s.emit(events::WATCH_ERROR, &WatchProblem { project_id: id.clone(), message }),
                    },
                    dataset::WatchEvent::Error(message) => s.emit(events::WATCH_ERROR, &WatchProblem { project_id: id.clone(), message }),
                }
            };
            // A watcher reads its folder once when it starts (bounded by the folder's size); its
            // own reading is only the signal to refresh, so it counts with the cheap estimate.
            let started = dataset::watch(std::path::Path::new(path), dataset::Options::default(), Arc::new(dataset::CharEstimate), None, DEBOUNCE, on_event);
            match started {
                Ok(w) => watchers.push(w),
                Err(e) => self.emit(
                    events::WATCH_ERROR,
                    &WatchProblem { project_id: p.id.clone(), message: format!("Changes in {path} will not show up until you reopen the project: {e}") },
                ),
            }
        }
        if self.current().is_some_and(|c| c.id == p.id) {
            *lock(&self.watchers) = watchers;
        }
    }
}

fn describe_change(c: &dataset::Change) -> String {
    use dataset::Change::*;
    match c {
        Added(p) => format!("added {}", p.display()),
        Modified(p) => format!("changed {}", p.display()),
        Removed(p) => format!("removed {}", p.display()),
        Renamed { from, to } => format!("renamed {} to {}", from.display(), to.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, serde_json::Value)>>);
    impl EventSink for Recorder {
        fn emit(&self, event: &str, payload: serde_json::Value) {
            self.0.lock().unwrap().push((event.to_string(), payload));
        }
    }
    impl Recorder {
        fn wait_for(&self, event: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                if let Some((_, v)) = self.0.lock().unwrap().iter().find(|(e, v)| e == event && pred(v)) {
                    return v.clone();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("no {event} event within 20 s; got {:?}", self.0.lock().unwrap().iter().map(|(e, _)| e).collect::<Vec<_>>());
        }
    }

    fn session(dir: &std::path::Path) -> (Arc<Recorder>, Arc<Session>) {
        let rec = Arc::new(Recorder::default());
        let s = Session::open(Store::open(dir).unwrap(), rec.clone());
        (rec, s)
    }

    const CHAT: &str = "{\"messages\":[{\"role\":\"user\",\"content\":\"Do you ship on Mondays?\"},{\"role\":\"assistant\",\"content\":\"Yes, every Monday before noon.\"}]}\n";

    #[test]
    fn adding_data_makes_a_first_project_that_is_reopened_after_a_restart() {
        let app = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::write(data.path().join("chats.jsonl"), CHAT).unwrap();
        let folder = fs::canonicalize(data.path()).unwrap().to_string_lossy().into_owned();
        let id = {
            let (_rec, s) = session(app.path());
            assert!(s.current().is_none());
            let added = s.add_paths(&[folder.clone()]).unwrap();
            assert_eq!(added.project.name, FIRST_PROJECT_NAME);
            assert_eq!(added.view.report.stats.records, 1);
            assert!(added.refused.is_empty());
            s.set_fixes(BuildFixes { redact: true, ..Default::default() }).unwrap();
            added.project.id
        };
        let (_rec, s) = session(app.path());
        let p = s.current().expect("the project is reopened");
        assert_eq!(p.id, id);
        assert_eq!(p.paths, [folder]);
        assert!(p.fixes.redact);
        let v = s.data_view().unwrap().unwrap();
        assert_eq!(v.report.stats.records, 1);
        assert!(s.overview().unwrap().notice.is_none());
    }

    #[test]
    fn refused_paths_say_why_and_nothing_is_added() {
        let app = tempfile::tempdir().unwrap();
        let (_rec, s) = session(app.path());
        let e = s.add_paths(&["/no/such/place".into()]).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert!(s.current().unwrap().paths.is_empty());
    }

    #[test]
    fn switching_projects_switches_the_data() {
        let app = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::write(data.path().join("chats.jsonl"), CHAT).unwrap();
        let (_rec, s) = session(app.path());
        let a = s.create_project("A").unwrap();
        s.add_paths(&[data.path().to_string_lossy().into_owned()]).unwrap();
        let b = s.create_project("B").unwrap();
        assert_eq!(s.current().unwrap().id, b.id);
        assert!(s.data_view().unwrap().is_none(), "B has no data");
        s.open_project(&a.id).unwrap();
        assert_eq!(s.data_view().unwrap().unwrap().project_id, a.id);
        let renamed = s.rename_project(&a.id, "Roastery").unwrap();
        assert_eq!(s.current().unwrap().name, renamed.name);
        let names: Vec<String> = s.overview().unwrap().listing.projects.into_iter().map(|p| p.name).collect();
        assert!(names.contains(&"Roastery".to_string()) && names.contains(&"B".to_string()));
        assert!(matches!(s.open_project("ffff"), Err(StoreError::NoSuchProject(_))));
    }

    #[test]
    fn a_deleted_current_project_gives_a_notice_not_a_crash() {
        let app = tempfile::tempdir().unwrap();
        let id = session(app.path()).1.create_project("gone").unwrap().id;
        fs::remove_file(app.path().join("projects").join(format!("{id}.json"))).unwrap();
        let (_rec, s) = session(app.path());
        assert!(s.current().is_none());
        assert!(s.overview().unwrap().notice.unwrap().contains("could not be reopened"));
    }

    #[test]
    fn the_saved_persona_is_used_for_the_checks_and_can_be_reset() {
        let app = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::write(data.path().join("chats.jsonl"), CHAT).unwrap();
        let (rec, s) = session(app.path());
        s.add_paths(&[data.path().to_string_lossy().into_owned()]).unwrap();
        assert!(s.save_persona(&PersonaCard::default()).unwrap_err().contains("name"));
        let card = PersonaCard { name: " Sam ".into(), forbidden: vec!["every Monday".into()], ..Default::default() };
        let p = s.save_persona(&card).unwrap();
        assert_eq!(p.persona.as_ref().unwrap().name, "Sam");
        let v = rec.wait_for(events::DATA_UPDATED, |v| v["personaFromProject"] == true);
        assert_eq!(v["report"]["stats"]["with_forbidden_output"], 1);
        s.reset_persona().unwrap();
        assert!(s.current().unwrap().persona.is_none());
        assert!(!s.data_view().unwrap().unwrap().persona_from_project);
    }

    #[test]
    fn the_projects_model_counts_the_tokens_and_a_bad_one_falls_back_to_the_estimate() {
        let app = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::write(data.path().join("chats.jsonl"), CHAT).unwrap();
        let (_rec, s) = session(app.path());
        s.add_paths(&[data.path().to_string_lossy().into_owned()]).unwrap();
        assert!(s.data_view().unwrap().unwrap().report.tokens_estimated);
        let model = fixtures::path(fixtures::Fixture::SmolLm2);
        let p = s.set_model(Some(&model.to_string_lossy())).unwrap();
        assert!(p.model.unwrap().ends_with(".gguf"));
        let v = s.data_view().unwrap().unwrap();
        assert!(!v.report.tokens_estimated, "{}", v.report.tokenizer);
        assert!(v.tokenizer_problem.is_none());
        assert!(s.set_model(Some("/no/such/model.gguf")).unwrap_err().contains("cannot be used"));
        // A model file that went bad after it was chosen: the estimate, and the reason shown.
        let bad = data.path().join("bad.gguf");
        fs::write(&bad, "not a model").unwrap();
        s.set_model(Some(&bad.to_string_lossy())).unwrap();
        let v = s.data_view().unwrap().unwrap();
        assert!(v.report.tokens_estimated);
        assert!(v.tokenizer_problem.unwrap().contains("not a GGUF model file"));
        s.set_model(None).unwrap();
        assert!(s.current().unwrap().model.is_none());
    }

    #[test]
    fn a_file_added_to_a_watched_folder_updates_the_view() {
        let app = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::write(data.path().join("chats.jsonl"), CHAT).unwrap();
        let (rec, s) = session(app.path());
        s.add_paths(&[data.path().to_string_lossy().into_owned()]).unwrap();
        fs::write(data.path().join("more.jsonl"), CHAT.replace("Mondays", "Sundays").replace("every Monday", "not on Sundays")).unwrap();
        let changed = rec.wait_for(events::DATA_CHANGED, |_| true);
        assert!(changed["changes"].to_string().contains("more.jsonl"), "{changed}");
        let v = rec.wait_for(events::DATA_UPDATED, |v| v["report"]["stats"]["records"] == 2);
        assert_eq!(v["projectId"], s.current().unwrap().id);
        assert_eq!(s.data_view().unwrap().unwrap().report.stats.records, 2);
    }
}
