//! Where the usual tools keep their downloaded models.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Which tool put a model on this computer; decides how its folder is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// Residency's own cache (for now the test fixtures).
    Residency,
    /// Ollama: content-addressed blobs named by manifests.
    Ollama,
    /// LM Studio: `publisher/repo/file.gguf`.
    LmStudio,
    /// The Hugging Face hub cache: `models--org--name/snapshots/rev/file.gguf`.
    HuggingFace,
}

impl Source {
    /// The name a person knows the tool by.
    pub fn label(self) -> &'static str {
        match self {
            Source::Residency => "Residency",
            Source::Ollama => "Ollama",
            Source::LmStudio => "LM Studio",
            Source::HuggingFace => "Hugging Face",
        }
    }
}

/// A folder to look in, and which tool's layout it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub source: Source,
    pub path: PathBuf,
}

impl Location {
    pub fn new(source: Source, path: impl Into<PathBuf>) -> Self {
        Location {
            source,
            path: path.into(),
        }
    }
}

/// The folders searched by default on this computer, read from the real
/// environment (`HOME`, and each tool's override variable).
pub fn default_locations() -> Vec<Location> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    locations_for(home.as_deref(), |name| std::env::var_os(name))
}

/// The folders to search given a home folder and a way to read environment
/// variables (a parameter so tests need not touch the process environment).
/// Each tool's own override variable wins over its default folder.
pub fn locations_for(home: Option<&Path>, env: impl Fn(&str) -> Option<OsString>) -> Vec<Location> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let under_home = |rel: &str| home.map(|h| h.join(rel));
    let mut out = Vec::new();
    let mut push = |source, path: Option<PathBuf>| {
        if let Some(path) = path {
            let loc = Location::new(source, path);
            if !out.contains(&loc) {
                out.push(loc);
            }
        }
    };

    push(
        Source::Residency,
        var("RESIDENCY_FIXTURES")
            .or_else(|| cache_dir(home, &var).map(|c| c.join("residency/fixtures"))),
    );

    push(
        Source::Ollama,
        var("OLLAMA_MODELS").or_else(|| under_home(".ollama/models")),
    );
    if cfg!(target_os = "linux") {
        // Ollama's Linux installer runs it as the `ollama` user with this home.
        push(
            Source::Ollama,
            Some(PathBuf::from("/usr/share/ollama/.ollama/models")),
        );
    }

    push(Source::LmStudio, under_home(".lmstudio/models"));
    push(Source::LmStudio, under_home(".cache/lm-studio/models"));

    let hf = var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| cache_dir(home, &var).map(|c| c.join("huggingface/hub")));
    push(Source::HuggingFace, hf);
    out
}

fn cache_dir(home: Option<&Path>, var: &impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    var("XDG_CACHE_HOME").or_else(|| home.map(|h| h.join(".cache")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn paths_of(locs: &[Location], source: Source) -> Vec<PathBuf> {
        locs.iter()
            .filter(|l| l.source == source)
            .map(|l| l.path.clone())
            .collect()
    }

    #[test]
    fn defaults_under_home() {
        let locs = locations_for(Some(Path::new("/home/ann")), env_of(&[]));
        assert_eq!(
            paths_of(&locs, Source::Residency),
            [PathBuf::from("/home/ann/.cache/residency/fixtures")]
        );
        assert_eq!(
            paths_of(&locs, Source::Ollama)[0],
            PathBuf::from("/home/ann/.ollama/models")
        );
        assert_eq!(
            paths_of(&locs, Source::LmStudio),
            [
                PathBuf::from("/home/ann/.lmstudio/models"),
                PathBuf::from("/home/ann/.cache/lm-studio/models")
            ]
        );
        assert_eq!(
            paths_of(&locs, Source::HuggingFace),
            [PathBuf::from("/home/ann/.cache/huggingface/hub")]
        );
    }

    #[test]
    fn environment_overrides_win() {
        let env = env_of(&[
            ("RESIDENCY_FIXTURES", "/data/fx"),
            ("OLLAMA_MODELS", "/data/ollama"),
            ("HF_HOME", "/data/hf"),
        ]);
        let locs = locations_for(Some(Path::new("/home/ann")), env);
        assert_eq!(
            paths_of(&locs, Source::Residency),
            [PathBuf::from("/data/fx")]
        );
        assert_eq!(
            paths_of(&locs, Source::Ollama)[0],
            PathBuf::from("/data/ollama")
        );
        assert_eq!(
            paths_of(&locs, Source::HuggingFace),
            [PathBuf::from("/data/hf/hub")]
        );

        let env = env_of(&[
            ("HF_HUB_CACHE", "/x/hub"),
            ("HF_HOME", "/data/hf"),
            ("XDG_CACHE_HOME", "/c"),
        ]);
        let locs = locations_for(Some(Path::new("/home/ann")), env);
        assert_eq!(
            paths_of(&locs, Source::HuggingFace),
            [PathBuf::from("/x/hub")]
        );
        assert_eq!(
            paths_of(&locs, Source::Residency),
            [PathBuf::from("/c/residency/fixtures")]
        );
    }

    #[test]
    fn empty_variables_are_ignored() {
        let locs = locations_for(Some(Path::new("/h")), env_of(&[("OLLAMA_MODELS", "")]));
        assert_eq!(
            paths_of(&locs, Source::Ollama)[0],
            PathBuf::from("/h/.ollama/models")
        );
    }

    #[test]
    fn no_home_still_honours_variables() {
        let locs = locations_for(None, env_of(&[("HF_HUB_CACHE", "/x/hub")]));
        assert_eq!(
            paths_of(&locs, Source::HuggingFace),
            [PathBuf::from("/x/hub")]
        );
        assert!(paths_of(&locs, Source::LmStudio).is_empty());
    }
}
