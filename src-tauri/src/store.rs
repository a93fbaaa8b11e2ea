//! The project store: one JSON file per project plus `state.json` (the current project) in the
//! app-data folder. Every write goes to a temporary file in the same folder, is flushed to disk,
//! then renamed over the old file, so a crash or a full disk leaves the previous version intact.
//!
//! A project remembers what the person chose: the folders and files added, the build fixes
//! accepted in the quality report, the persona card (as edited in the app, never written back to
//! their own `persona.toml`) and the model.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The longest project name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Residency cannot use its data folder {path}: {source}. Check that the disk is not full and that you may write there.")]
    Folder { path: String, source: std::io::Error },
    #[error("Residency could not save {path}: {source}. Check that the disk is not full.")]
    Write { path: String, source: std::io::Error },
    #[error("Residency could not read the project file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("The project file {path} is damaged ({message}); the project cannot be opened. Your own files are not affected.")]
    Damaged { path: String, message: String },
    #[error("There is no project with the id {0}; it may have been deleted.")]
    NoSuchProject(String),
    #[error("Give the project a name.")]
    EmptyName,
    #[error("That name is too long: keep it under {MAX_NAME_CHARS} characters.")]
    LongName,
}

/// The persona card as the app edits and saves it. The dataset crate's `Persona` is what the
/// builder and the checks use; [`PersonaCard::to_persona`] and `From<&Persona>` convert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersonaCard {
    pub name: String,
    pub description: String,
    pub voice: String,
    pub style: Vec<String>,
    pub dos: Vec<String>,
    pub donts: Vec<String>,
    pub forbidden: Vec<String>,
    pub greeting: String,
    pub signoff: String,
    pub markers: Vec<String>,
    /// The owner's email addresses (their replies in a mailbox become the assistant's turns).
    pub addresses: Vec<String>,
}

impl PersonaCard {
    /// Trims every field and drops empty list entries; the name is required.
    pub fn cleaned(&self) -> Result<PersonaCard, String> {
        let list = |v: &[String]| -> Vec<String> {
            v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        };
        let card = PersonaCard {
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            voice: self.voice.trim().to_string(),
            style: list(&self.style),
            dos: list(&self.dos),
            donts: list(&self.donts),
            forbidden: list(&self.forbidden),
            // The sign-off may span lines ("Stay toasty,\nMaggie"): keep inner line breaks.
            greeting: self.greeting.trim().to_string(),
            signoff: self.signoff.trim().to_string(),
            markers: list(&self.markers),
            addresses: list(&self.addresses),
        };
        if card.name.is_empty() {
            return Err("Give the persona a name: it is how the assistant introduces itself.".into());
        }
        Ok(card)
    }

    pub fn to_persona(&self) -> dataset::Persona {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        dataset::Persona {
            name: self.name.clone(),
            description: self.description.clone(),
            voice: opt(&self.voice),
            greeting: opt(&self.greeting),
            signoff: opt(&self.signoff),
            style: self.style.clone(),
            dos: self.dos.clone(),
            donts: self.donts.clone(),
            forbidden: self.forbidden.clone(),
            markers: self.markers.clone(),
            addresses: self.addresses.clone(),
        }
    }
}

impl From<&dataset::Persona> for PersonaCard {
    fn from(p: &dataset::Persona) -> Self {
        PersonaCard {
            name: p.name.clone(),
            description: p.description.clone(),
            voice: p.voice.clone().unwrap_or_default(),
            style: p.style.clone(),
            dos: p.dos.clone(),
            donts: p.donts.clone(),
            forbidden: p.forbidden.clone(),
            greeting: p.greeting.clone().unwrap_or_default(),
            signoff: p.signoff.clone().unwrap_or_default(),
            markers: p.markers.clone(),
            addresses: p.addresses.clone(),
        }
    }
}

/// The one-click fixes from the quality report. They only change how the training set is built;
/// the person's files are never touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BuildFixes {
    pub drop_duplicates: bool,
    pub redact: bool,
    pub drop_too_long: bool,
    /// Repair garbled characters ("cafÃ©" → "café").
    pub fix_text: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    /// Seconds since 1970, UTC.
    pub created: u64,
    pub updated: u64,
    /// Folders and files added, in the order they were added (absolute paths).
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub fixes: BuildFixes,
    /// The persona card saved in the app; `None` uses the persona.toml found in the data, if any.
    #[serde(default)]
    pub persona: Option<PersonaCard>,
    /// Path of the chosen model file or folder.
    #[serde(default)]
    pub model: Option<String>,
}

impl Project {
    /// The dataset builder's options for this project: the accepted fixes and the persona card.
    pub fn build_options(&self, out: &Path) -> dataset::BuildOptions {
        let mut b = dataset::BuildOptions::new(out);
        b.drop_duplicates = self.fixes.drop_duplicates;
        b.redact = self.fixes.redact;
        b.drop_too_long = self.fixes.drop_too_long;
        b.fix_text = self.fixes.fix_text;
        b.persona = self.persona.as_ref().map(PersonaCard::to_persona);
        b
    }

    pub fn summary(&self) -> ProjectSummary {
        ProjectSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            updated: self.updated,
            paths: self.paths.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    pub updated: u64,
    /// How many folders and files were added.
    pub paths: usize,
}

/// Every project found, newest first, and the files that could not be read (never hidden).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub projects: Vec<ProjectSummary>,
    pub problems: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    current: Option<String>,
}

/// The store in one folder (the app-data folder in the app, a temporary folder in tests).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating when needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let projects = dir.join("projects");
        fs::create_dir_all(&projects).map_err(|source| StoreError::Folder { path: projects.display().to_string(), source })?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn project_path(&self, id: &str) -> PathBuf {
        self.dir.join("projects").join(format!("{id}.json"))
    }

    pub fn create(&self, name: &str) -> Result<Project, StoreError> {
        let name = check_name(name)?;
        let now = now();
        let mut id = new_id();
        while self.project_path(&id).exists() {
            id = new_id();
        }
        let p = Project { id, name, created: now, updated: now, paths: Vec::new(), fixes: BuildFixes::default(), persona: None, model: None };
        self.save(&p)?;
        Ok(p)
    }

    pub fn load(&self, id: &str) -> Result<Project, StoreError> {
        if !valid_id(id) {
            return Err(StoreError::NoSuchProject(id.to_string()));
        }
        let path = self.project_path(id);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NoSuchProject(id.to_string())),
            Err(source) => return Err(StoreError::Read { path: path.display().to_string(), source }),
        };
        serde_json::from_str(&text).map_err(|e| StoreError::Damaged { path: path.display().to_string(), message: e.to_string() })
    }

    /// Saves `p` (stamping `updated`), atomically.
    pub fn save(&self, p: &Project) -> Result<Project, StoreError> {
        if !valid_id(&p.id) {
            return Err(StoreError::NoSuchProject(p.id.clone()));
        }
        let mut p = p.clone();
        p.updated = now().max(p.created);
        let json = serde_json::to_vec_pretty(&p).expect("a project always serialises");
        write_atomic(&self.project_path(&p.id), &json)?;
        Ok(p)
    }

    pub fn rename(&self, id: &str, name: &str) -> Result<Project, StoreError> {
        let name = check_name(name)?;
        let mut p = self.load(id)?;
        p.name = name;
        self.save(&p)
    }

    /// All projects, most recently changed first. A damaged file is listed as a problem.
    pub fn list(&self) -> Result<Listing, StoreError> {
        let dir = self.dir.join("projects");
        let entries = fs::read_dir(&dir).map_err(|source| StoreError::Folder { path: dir.display().to_string(), source })?;
        let mut projects = Vec::new();
        let mut problems = Vec::new();
        for e in entries {
            let e = e.map_err(|source| StoreError::Folder { path: dir.display().to_string(), source })?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else { continue };
            match self.load(id) {
                Ok(p) => projects.push(p.summary()),
                Err(err) => problems.push(err.to_string()),
            }
        }
        projects.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.name.cmp(&b.name)));
        problems.sort();
        Ok(Listing { projects, problems })
    }

    /// The id remembered as the current project, if any.
    pub fn current_id(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join("state.json");
        match fs::read_to_string(&path) {
            Ok(t) => Ok(serde_json::from_str::<State>(&t)
                .map_err(|e| StoreError::Damaged { path: path.display().to_string(), message: e.to_string() })?
                .current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path: path.display().to_string(), source }),
        }
    }

    pub fn set_current(&self, id: Option<&str>) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(&State { current: id.map(str::to_string) }).expect("state serialises");
        write_atomic(&self.dir.join("state.json"), &json)
    }
}

fn check_name(name: &str) -> Result<String, StoreError> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(StoreError::EmptyName);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::LongName);
    }
    Ok(name)
}

/// Ids are made here (lowercase hex); anything else (a path, `..`) is refused.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn new_id() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // Time in milliseconds plus the sub-millisecond nanoseconds and the process id: unique
    // enough for projects made by hand, and `create` still checks for a clash.
    format!("{:x}-{:x}{:x}", t.as_millis(), t.subsec_nanos() % 1_000_000, std::process::id() & 0xffff)
}

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed to disk, then
/// renamed over `path`: readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let err = |source| StoreError::Write { path: path.display().to_string(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (not possible, nor needed, on Windows).
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        (d, s)
    }

    #[test]
    fn create_load_rename_and_list() {
        let (_d, s) = store();
        let a = s.create("  Coffee   shop ").unwrap();
        assert_eq!(a.name, "Coffee shop");
        assert_eq!(s.load(&a.id).unwrap(), a);
        let b = s.create("Bakery").unwrap();
        assert_ne!(a.id, b.id);
        let renamed = s.rename(&a.id, "Ember & Oak").unwrap();
        assert_eq!(s.load(&a.id).unwrap().name, "Ember & Oak");
        assert_eq!(renamed.created, a.created);
        let l = s.list().unwrap();
        assert_eq!(l.projects.len(), 2);
        assert!(l.problems.is_empty());
        assert!(l.projects.iter().any(|p| p.name == "Bakery"));
    }

    #[test]
    fn names_are_checked() {
        let (_d, s) = store();
        assert!(matches!(s.create("   "), Err(StoreError::EmptyName)));
        assert!(matches!(s.create(&"x".repeat(MAX_NAME_CHARS + 1)), Err(StoreError::LongName)));
        let p = s.create("ok").unwrap();
        assert!(matches!(s.rename(&p.id, ""), Err(StoreError::EmptyName)));
        assert_eq!(s.load(&p.id).unwrap().name, "ok");
    }

    #[test]
    fn everything_survives_reopening_the_store() {
        let d = tempfile::tempdir().unwrap();
        let id = {
            let s = Store::open(d.path()).unwrap();
            let mut p = s.create("Roastery").unwrap();
            p.paths.push("/data/coffee".into());
            p.fixes.redact = true;
            p.persona = Some(PersonaCard { name: "Maggie".into(), style: vec!["Short.".into()], ..Default::default() });
            p.model = Some("/models/smol.gguf".into());
            s.save(&p).unwrap();
            s.set_current(Some(&p.id)).unwrap();
            p.id
        };
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.current_id().unwrap().as_deref(), Some(id.as_str()));
        let p = s.load(&id).unwrap();
        assert_eq!(p.paths, ["/data/coffee"]);
        assert!(p.fixes.redact && !p.fixes.drop_duplicates);
        assert_eq!(p.persona.unwrap().style, ["Short."]);
        assert_eq!(p.model.as_deref(), Some("/models/smol.gguf"));
    }

    #[test]
    fn damaged_and_missing_projects_are_errors_not_panics() {
        let (d, s) = store();
        s.create("good").unwrap();
        fs::write(d.path().join("projects/abc.json"), "{ not json").unwrap();
        let l = s.list().unwrap();
        assert_eq!(l.projects.len(), 1);
        assert_eq!(l.problems.len(), 1);
        assert!(l.problems[0].contains("damaged"), "{}", l.problems[0]);
        assert!(matches!(s.load("abc"), Err(StoreError::Damaged { .. })));
        assert!(matches!(s.load("def"), Err(StoreError::NoSuchProject(_))));
        // Ids are never paths.
        assert!(matches!(s.load("../state"), Err(StoreError::NoSuchProject(_))));
        fs::write(d.path().join("state.json"), "[").unwrap();
        assert!(matches!(s.current_id(), Err(StoreError::Damaged { .. })));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file_and_replaces_whole() {
        let (d, _s) = store();
        let f = d.path().join("x.json");
        write_atomic(&f, b"first version, rather long").unwrap();
        write_atomic(&f, b"second").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "second");
        let names: Vec<String> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let (d, _s) = store();
        let f = d.path().join("x.json");
        write_atomic(&f, b"old").unwrap();
        // A folder where the file should go makes the rename fail.
        let blocked = d.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "x").unwrap();
        assert!(matches!(write_atomic(&blocked, b"new"), Err(StoreError::Write { .. })));
        assert_eq!(fs::read_to_string(&f).unwrap(), "old");
        assert!(blocked.is_dir());
    }

    #[test]
    fn persona_card_round_trips_through_the_dataset_persona() {
        let p = dataset::Persona::parse(
            "name = \"Maggie\"\nvoice = \"Warm\"\nsignoff = \"Stay toasty,\\nMaggie\"\n[rules]\ndo = [\"Be kind\"]\nforbidden = [\"Best regards\"]\n",
            "p.toml",
        )
        .unwrap();
        let card = PersonaCard::from(&p);
        assert_eq!(card.signoff, "Stay toasty,\nMaggie");
        assert_eq!(card.to_persona(), p);
        let messy = PersonaCard { name: "  Maggie ".into(), dos: vec![" a ".into(), "  ".into()], ..Default::default() };
        let clean = messy.cleaned().unwrap();
        assert_eq!(clean.name, "Maggie");
        assert_eq!(clean.dos, ["a"]);
        assert!(PersonaCard::default().cleaned().unwrap_err().contains("name"));
    }

    #[test]
    fn build_options_carry_the_fixes_and_the_persona() {
        let (_d, s) = store();
        let mut p = s.create("x").unwrap();
        p.fixes = BuildFixes { drop_duplicates: true, redact: false, drop_too_long: true, fix_text: true };
        p.persona = Some(PersonaCard { name: "Maggie".into(), ..Default::default() });
        let b = p.build_options(Path::new("/tmp/out.jsonl"));
        assert!(b.drop_duplicates && b.drop_too_long && b.fix_text && !b.redact);
        assert_eq!(b.persona.unwrap().name, "Maggie");
    }
}
