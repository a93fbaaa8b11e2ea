//! What the Data screen shows about a project's folders: the dataset crate's report, the persona
//! card found among the files, and a few parsed examples to preview. Read-only: the person's
//! files are never changed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dataset::{Kind, Options, Record, Report, TokenCounter};
use serde::Serialize;

use crate::store::PersonaCard;

/// How many parsed examples the preview shows.
pub const PREVIEW_RECORDS: usize = 6;

/// A persona file found among the inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundPersona {
    /// The file, as the report shows paths.
    pub file: String,
    /// The card read from it, or why it could not be read.
    pub card: Option<PersonaCard>,
    pub error: Option<String>,
}

/// One added folder or file and whether it is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathStatus {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
}

/// Everything the Data screen shows. `report` is the dataset crate's `Report` as it serialises
/// (snake_case fields), so the app never loses a detail the crate reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataView {
    pub project_id: String,
    pub paths: Vec<PathStatus>,
    pub report: Report,
    pub persona_found: Option<FoundPersona>,
    /// True when the project's own (edited) persona card was used for the checks.
    pub persona_from_project: bool,
    pub preview: Vec<Record>,
    /// Why the project's model could not count the tokens (the estimate was used instead).
    pub tokenizer_problem: Option<String>,
    /// How long the inspection took, in milliseconds.
    pub took_ms: u64,
}

/// Normalises paths dropped or picked by the person: absolute, existing, no duplicates (also
/// against `already`). Returns the new paths and a message for each refused one.
pub fn accept_paths(already: &[String], given: &[String]) -> (Vec<String>, Vec<String>) {
    let mut added: Vec<String> = Vec::new();
    let mut refused = Vec::new();
    for raw in given {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let p = PathBuf::from(raw);
        if !p.is_absolute() {
            refused.push(format!("{raw} is not a full path; drop the folder onto the window or use the Add button."));
            continue;
        }
        let p = match std::fs::canonicalize(&p) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                refused.push(format!("{raw} does not exist (was it moved or deleted?)."));
                continue;
            }
            Err(e) => {
                refused.push(format!("{raw} cannot be opened: {e}. Check that you may read it."));
                continue;
            }
        };
        let s = p.to_string_lossy().into_owned();
        if already.contains(&s) || added.contains(&s) {
            continue;
        }
        added.push(s);
    }
    (added, refused)
}

/// Reads and checks the project's paths. `persona` is the project's saved card, if any; without
/// one, the persona file found among the inputs is used for the checks. `counter` measures the
/// lengths (the model's tokenizer, or the labelled estimate).
pub fn inspect(project_id: &str, paths: &[String], persona: Option<&PersonaCard>, counter: &dyn TokenCounter) -> DataView {
    let t0 = Instant::now();
    let bufs: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let opts = Options::default();
    let mut preview = Preview::default();
    let scan = dataset::collect::run(&bufs, &opts, counter, persona.map(PersonaCard::to_persona), &[], &mut |_, r, _| {
        preview.offer(r)
    });
    let persona_found = find_persona(&bufs, &opts);
    DataView {
        project_id: project_id.to_string(),
        paths: paths
            .iter()
            .map(|p| {
                let m = std::fs::metadata(p);
                PathStatus { path: p.clone(), exists: m.is_ok(), is_dir: m.map(|m| m.is_dir()).unwrap_or(false) }
            })
            .collect(),
        report: scan.report,
        persona_found,
        persona_from_project: persona.is_some(),
        preview: preview.records,
        tokenizer_problem: None,
        took_ms: t0.elapsed().as_millis() as u64,
    }
}

/// Keeps a few examples worth looking at: conversations with a reply, one per file first.
#[derive(Default)]
struct Preview {
    records: Vec<Record>,
    files: Vec<String>,
}

impl Preview {
    fn offer(&mut self, r: Record) {
        if self.records.len() >= PREVIEW_RECORDS || r.kind == Kind::Replay || r.replies().all(|m| m.content.trim().is_empty()) {
            return;
        }
        // One per file while there is room for files not seen yet; a second from a file only
        // in the last slot. Readers stream file by file, so this spreads the preview.
        if self.files.contains(&r.source.file) && self.records.len() + 1 < PREVIEW_RECORDS {
            return;
        }
        self.files.push(r.source.file.clone());
        self.records.push(r);
    }
}

/// The first persona file (`*.toml` that the dataset crate recognises as a persona) among the
/// inputs, in the order the reader walks them.
pub fn find_persona(paths: &[PathBuf], opts: &Options) -> Option<FoundPersona> {
    let walk = dataset::walk::walk(paths, opts.max_files, &[]);
    for e in walk.entries {
        if !e.path.extension().is_some_and(|x| x.eq_ignore_ascii_case("toml")) {
            continue;
        }
        let Ok(head) = head_of(&e.path) else { continue };
        if dataset::detect::sniff(&e.path, &head) != dataset::detect::Format::Persona {
            continue;
        }
        return Some(match dataset::Persona::load(&e.path) {
            Ok(p) => FoundPersona { file: e.display, card: Some(PersonaCard::from(&p)), error: None },
            Err(err) => FoundPersona { file: e.display, card: None, error: Some(err.to_string()) },
        });
    }
    None
}

fn head_of(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(p)?.take(8192).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataset::CharEstimate;
    use std::fs;

    fn demo() -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/coffee-roaster");
        fs::canonicalize(p).unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn paths_must_exist_be_absolute_and_are_not_added_twice() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::create_dir(&a).unwrap();
        let a_str = fs::canonicalize(&a).unwrap().to_string_lossy().into_owned();
        let missing = d.path().join("gone").to_string_lossy().into_owned();
        let (added, refused) = accept_paths(&[], &[a_str.clone(), a_str.clone(), missing, "relative/x".into(), "  ".into()]);
        assert_eq!(added, [a_str.clone()]);
        assert_eq!(refused.len(), 2);
        assert!(refused[0].contains("does not exist"), "{refused:?}");
        assert!(refused[1].contains("not a full path"), "{refused:?}");
        let (again, _) = accept_paths(&[a_str.clone()], &[a_str]);
        assert!(again.is_empty());
    }

    #[test]
    fn the_demo_folder_is_read_with_its_persona_and_the_invalid_json_line() {
        let v = inspect("p1", &[demo()], None, &CharEstimate);
        assert!(v.report.stats.records > 100, "{} records", v.report.stats.records);
        let found = v.persona_found.as_ref().expect("persona.toml is found");
        assert!(found.file.ends_with("persona.toml"), "{}", found.file);
        assert_eq!(found.card.as_ref().unwrap().name, "Maggie of Ember & Oak Roasters");
        assert!(v.report.persona.as_deref().unwrap().starts_with("Maggie of Ember & Oak Roasters"));
        assert!(!v.persona_from_project);
        let bad = v
            .report
            .findings
            .iter()
            .find(|f| f.file.as_deref().is_some_and(|p| p.ends_with("chats.jsonl")) && f.line == Some(67))
            .expect("a finding on chats.jsonl line 67");
        assert_eq!(bad.severity, dataset::Severity::Error);
        assert!(!v.preview.is_empty() && v.preview.len() <= PREVIEW_RECORDS);
        assert!(v.preview.iter().all(|r| r.replies().next().is_some()));
        assert!(v.paths[0].exists && v.paths[0].is_dir);
    }

    #[test]
    fn a_project_persona_replaces_the_file_for_the_checks() {
        let card = PersonaCard { name: "Dev the barista".into(), forbidden: vec!["Stay toasty".into()], ..Default::default() };
        let v = inspect("p1", &[demo()], Some(&card), &CharEstimate);
        assert!(v.persona_from_project);
        assert_eq!(v.report.persona.as_deref(), Some("Dev the barista"));
        // Maggie signs every reply "Stay toasty": now a forbidden phrase, so it is reported.
        assert!(v.report.stats.with_forbidden_output > 10, "{}", v.report.stats.with_forbidden_output);
        // The file's own card is still offered.
        assert_eq!(v.persona_found.unwrap().card.unwrap().name, "Maggie of Ember & Oak Roasters");
    }

    #[test]
    fn a_broken_persona_file_is_reported_with_its_reason() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("persona.toml"), "name = \"Ada\"\ndescription = \"x\"\ndo = 3\n").unwrap();
        fs::write(d.path().join("chats.jsonl"), "{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"},{\"role\":\"assistant\",\"content\":\"hello, how can I help?\"}]}\n").unwrap();
        let v = inspect("p", &[d.path().to_string_lossy().into_owned()], None, &CharEstimate);
        let f = v.persona_found.unwrap();
        assert!(f.card.is_none());
        assert!(f.error.unwrap().contains("`do`"));
        assert_eq!(v.report.stats.records, 1);
    }

    #[test]
    fn a_missing_folder_is_shown_as_missing_not_a_crash() {
        let v = inspect("p", &["/no/such/folder/anywhere".into()], None, &CharEstimate);
        assert!(!v.paths[0].exists);
        assert!(v.report.findings.iter().any(|f| f.code == "not-found"));
        assert!(v.preview.is_empty());
    }
}
