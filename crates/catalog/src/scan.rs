//! Walks the model folders and lists the GGUF files in them.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gguf::{read_summary, GgufSummary};
use crate::locations::{Location, Source};

/// How deep to look below a folder. LM Studio needs 3 levels, the Hugging Face
/// cache 4 to 5; the limit keeps a mistaken root (a whole disk) from taking ages.
const MAX_DEPTH: usize = 8;

/// The media type Ollama gives the layer that holds the GGUF weights.
const OLLAMA_MODEL_LAYER: &str = "application/vnd.ollama.image.model";

/// One model file found on disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelEntry {
    /// The name to show: Ollama's `model:tag`, otherwise the file name
    /// without `.gguf`.
    pub name: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub source: Source,
    /// What the header says, when it could be read.
    pub gguf: Option<GgufSummary>,
    /// Why the file cannot be used, in words for the person at the screen.
    pub problem: Option<String>,
}

/// What was found in one folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationReport {
    pub source: Source,
    pub path: PathBuf,
    /// False when the folder does not exist (the tool is not installed, or
    /// has downloaded nothing).
    pub exists: bool,
    pub model_count: usize,
    /// Sub-folders or manifests that could not be read.
    pub problems: Vec<String>,
}

/// The result of a scan: every model found, and what happened in each folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub models: Vec<ModelEntry>,
    pub locations: Vec<LocationReport>,
}

/// Looks in each location for GGUF files and reads their headers. Never
/// fails as a whole: unreadable folders and files are reported in place.
/// A file reached twice (two Ollama tags, two Hugging Face snapshots of the
/// same blob, two overlapping folders) is listed once, under the first name.
pub fn scan(locations: &[Location]) -> Catalog {
    let mut seen = HashSet::new();
    let mut models = Vec::new();
    let mut reports = Vec::new();

    for loc in locations {
        let mut report = LocationReport {
            source: loc.source,
            path: loc.path.clone(),
            exists: loc.path.is_dir(),
            model_count: 0,
            problems: Vec::new(),
        };
        if report.exists {
            let mut found = match loc.source {
                Source::Ollama => ollama_files(&loc.path, &mut report.problems),
                _ => gguf_files(&loc.path, &mut report.problems),
            };
            found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            for (name, path) in found {
                let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if !seen.insert(key) {
                    continue;
                }
                models.push(describe(name, path, loc.source));
                report.model_count += 1;
            }
        }
        reports.push(report);
    }
    Catalog {
        models,
        locations: reports,
    }
}

fn describe(name: String, path: PathBuf, source: Source) -> ModelEntry {
    let size_bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (gguf, problem) = match read_summary(&path) {
        Ok(summary) => (Some(summary), None),
        Err(e) => (None, Some(e.to_string())),
    };
    ModelEntry {
        name,
        path,
        size_bytes,
        source,
        gguf,
        problem,
    }
}

/// Every `*.gguf` file below `root`, named by its file name without the
/// extension. Hidden folders and folder links are not followed; file links
/// (the Hugging Face cache is made of them) are.
fn gguf_files(root: &Path, problems: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(folder_problem(&dir, &e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    problems.push(folder_problem(&dir, &e));
                    continue;
                }
            };
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                if !file_name.starts_with('.') && depth + 1 < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let Some(stem) = gguf_stem(&file_name) else {
                continue;
            };
            // A link counts when it leads to a file (a broken one is skipped:
            // the Hugging Face cache leaves them behind after a failed download).
            if file_type.is_symlink() && !path.is_file() {
                continue;
            }
            out.push((stem.to_owned(), path));
        }
    }
    out
}

fn gguf_stem(file_name: &str) -> Option<&str> {
    let (stem, ext) = file_name.rsplit_once('.')?;
    (ext.eq_ignore_ascii_case("gguf") && !stem.is_empty()).then_some(stem)
}

fn folder_problem(dir: &Path, e: &io::Error) -> String {
    format!("Could not look inside {}: {e}", dir.display())
}

#[derive(Deserialize)]
struct OllamaManifest {
    #[serde(default)]
    layers: Vec<OllamaLayer>,
}

#[derive(Deserialize)]
struct OllamaLayer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
}

/// Ollama keeps `manifests/<host>/<namespace>/<model>/<tag>` (JSON) and
/// `blobs/sha256-<hex>`; the manifest's model layer names the GGUF blob.
fn ollama_files(root: &Path, problems: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let manifests = root.join("manifests");
    let blobs = root.join("blobs");
    let mut out = Vec::new();
    if !manifests.is_dir() {
        return out;
    }
    for (rel, manifest_path) in files_at_depth(&manifests, 4, problems) {
        let text = match fs::read_to_string(&manifest_path) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!(
                    "Could not read Ollama manifest {}: {e}",
                    manifest_path.display()
                ));
                continue;
            }
        };
        let manifest: OllamaManifest = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!(
                    "Ollama manifest {} is not valid JSON: {e}",
                    manifest_path.display()
                ));
                continue;
            }
        };
        let name = ollama_name(&rel);
        for layer in manifest
            .layers
            .iter()
            .filter(|l| l.media_type == OLLAMA_MODEL_LAYER)
        {
            let blob = blobs.join(layer.digest.replace(':', "-"));
            if blob.is_file() {
                out.push((name.clone(), blob));
            } else {
                problems.push(format!(
                    "Ollama lists {name} but its weights file {} is missing; `ollama pull {name}` fetches it again",
                    blob.display()
                ));
            }
        }
    }
    out
}

/// `registry.ollama.ai/library/llama3.2/1b` is shown as `llama3.2:1b`, as
/// `ollama list` does; other namespaces and hosts keep their prefix.
fn ollama_name(rel: &[String]) -> String {
    match rel {
        [host, namespace, model, tag] => {
            if host == "registry.ollama.ai" {
                if namespace == "library" {
                    format!("{model}:{tag}")
                } else {
                    format!("{namespace}/{model}:{tag}")
                }
            } else {
                format!("{host}/{namespace}/{model}:{tag}")
            }
        }
        _ => rel.join("/"),
    }
}

/// The files exactly `depth` levels below `root`, with their path components.
fn files_at_depth(
    root: &Path,
    depth: usize,
    problems: &mut Vec<String>,
) -> Vec<(Vec<String>, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<String>::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(folder_problem(&dir, &e));
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let mut rel = rel.clone();
            rel.push(name);
            let path = entry.path();
            if rel.len() == depth {
                if path.is_file() {
                    out.push((rel, path));
                }
            } else if path.is_dir() {
                stack.push((path, rel));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::test_files::{llama_meta, write};
    use candle_core::quantized::gguf_file::Value;

    fn names(catalog: &Catalog) -> Vec<&str> {
        catalog.models.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn finds_nested_gguf_files_and_reads_headers() {
        let dir = tempfile::tempdir().unwrap();
        let lm = dir.path().join("lmstudio");
        fs::create_dir_all(lm.join("bartowski/Tiny-GGUF")).unwrap();
        write(
            &lm.join("bartowski/Tiny-GGUF/Tiny-Q8_0.gguf"),
            &llama_meta("Tiny"),
            2,
        );
        fs::write(lm.join("bartowski/Tiny-GGUF/README.md"), "not a model").unwrap();
        fs::write(
            lm.join("bartowski/Tiny-GGUF/Tiny-Q4.gguf.part"),
            "partial download",
        )
        .unwrap();

        let catalog = scan(&[Location::new(Source::LmStudio, &lm)]);
        assert_eq!(names(&catalog), ["Tiny-Q8_0"]);
        let m = &catalog.models[0];
        assert_eq!(m.source, Source::LmStudio);
        assert_eq!(m.size_bytes, fs::metadata(&m.path).unwrap().len());
        assert!(m.size_bytes > 0);
        assert_eq!(
            m.gguf.as_ref().unwrap().general_name.as_deref(),
            Some("Tiny")
        );
        assert_eq!(m.problem, None);
        assert_eq!(catalog.locations[0].model_count, 1);
        assert!(catalog.locations[0].exists);
    }

    #[test]
    fn a_broken_file_is_listed_with_its_problem() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Broken.GGUF"), "this is text").unwrap();
        let catalog = scan(&[Location::new(Source::Residency, dir.path())]);
        assert_eq!(names(&catalog), ["Broken"]);
        assert!(catalog.models[0].gguf.is_none());
        assert!(catalog.models[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("not a GGUF model file"));
    }

    #[test]
    fn missing_folder_is_reported_not_an_error() {
        let catalog = scan(&[Location::new(Source::Ollama, "/nonexistent/ollama")]);
        assert!(catalog.models.is_empty());
        assert!(!catalog.locations[0].exists);
        assert!(catalog.locations[0].problems.is_empty());
    }

    #[test]
    fn hidden_folders_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".trash")).unwrap();
        write(&dir.path().join(".trash/old.gguf"), &[], 1);
        write(&dir.path().join("kept.gguf"), &[], 1);
        let catalog = scan(&[Location::new(Source::Residency, dir.path())]);
        assert_eq!(names(&catalog), ["kept"]);
    }

    #[cfg(unix)]
    #[test]
    fn hugging_face_snapshots_of_one_blob_are_listed_once() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--org--Tiny-GGUF");
        fs::create_dir_all(repo.join("blobs")).unwrap();
        write(&repo.join("blobs/abc123"), &llama_meta("Tiny"), 1);
        for rev in ["rev1", "rev2"] {
            fs::create_dir_all(repo.join("snapshots").join(rev)).unwrap();
            symlink(
                "../../blobs/abc123",
                repo.join("snapshots").join(rev).join("tiny.Q8_0.gguf"),
            )
            .unwrap();
        }
        // A link left by a failed download leads nowhere.
        symlink("../../blobs/gone", repo.join("snapshots/rev2/gone.gguf")).unwrap();

        let catalog = scan(&[Location::new(Source::HuggingFace, dir.path())]);
        assert_eq!(names(&catalog), ["tiny.Q8_0"]);
        assert!(catalog.models[0]
            .path
            .to_string_lossy()
            .contains("snapshots/rev1"));
        assert_eq!(
            catalog.models[0]
                .gguf
                .as_ref()
                .unwrap()
                .architecture
                .as_deref(),
            Some("llama")
        );
    }

    fn ollama_manifest(root: &Path, rel: &str, digest: &str) {
        let path = root.join("manifests").join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let json = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:cfg"},
            "layers": [
                {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 1},
                {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:tmpl", "size": 1}
            ]
        });
        fs::write(path, json.to_string()).unwrap();
    }

    #[test]
    fn ollama_manifests_name_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("blobs")).unwrap();
        write(&root.join("blobs/sha256-aaa"), &llama_meta("Llama"), 1);
        write(
            &root.join("blobs/sha256-bbb"),
            &[("general.architecture", Value::String("qwen2".into()))],
            1,
        );
        fs::write(root.join("blobs/sha256-tmpl"), "{{ .Prompt }}").unwrap();
        ollama_manifest(root, "registry.ollama.ai/library/llama3.2/1b", "sha256:aaa");
        ollama_manifest(
            root,
            "registry.ollama.ai/library/llama3.2/latest",
            "sha256:aaa",
        );
        ollama_manifest(root, "registry.ollama.ai/someone/coder/q4", "sha256:bbb");
        ollama_manifest(root, "hf.co/org/repo/Q8_0", "sha256:missing");
        fs::write(
            root.join("manifests/registry.ollama.ai/library/llama3.2/broken"),
            "{not json",
        )
        .unwrap();

        let catalog = scan(&[Location::new(Source::Ollama, root)]);
        // Two tags of one blob give one entry, under the first name in order.
        assert_eq!(names(&catalog), ["llama3.2:1b", "someone/coder:q4"]);
        assert_eq!(
            catalog.models[1]
                .gguf
                .as_ref()
                .unwrap()
                .architecture
                .as_deref(),
            Some("qwen2")
        );
        let problems = &catalog.locations[0].problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.contains("hf.co/org/repo:Q8_0") && p.contains("ollama pull")));
        assert!(problems.iter().any(|p| p.contains("not valid JSON")));
    }

    #[test]
    fn ollama_names() {
        let rel = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            ollama_name(&rel("registry.ollama.ai/library/gemma3/270m")),
            "gemma3:270m"
        );
        assert_eq!(
            ollama_name(&rel("registry.ollama.ai/ann/m/latest")),
            "ann/m:latest"
        );
        assert_eq!(
            ollama_name(&rel("hf.co/org/repo/Q4_K_M")),
            "hf.co/org/repo:Q4_K_M"
        );
    }

    #[test]
    fn the_same_folder_twice_lists_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.gguf"), &[], 1);
        let loc = Location::new(Source::Residency, dir.path());
        let catalog = scan(&[loc.clone(), loc]);
        assert_eq!(names(&catalog), ["a"]);
        assert_eq!(catalog.locations[1].model_count, 0);
    }

    #[test]
    fn gguf_stems() {
        assert_eq!(gguf_stem("a.b.gguf"), Some("a.b"));
        assert_eq!(gguf_stem("X.GGUF"), Some("X"));
        assert_eq!(gguf_stem(".gguf"), None);
        assert_eq!(gguf_stem("x.gguf.part"), None);
        assert_eq!(gguf_stem("gguf"), None);
    }
}
