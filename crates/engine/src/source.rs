//! What a path the user gave us is: a GGUF file, a Hugging Face folder, or something
//! we refuse (pickle checkpoints) or do not understand, with the reason.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// A model on disk that we know how to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A single `.gguf` file (Ollama, LM Studio, llama.cpp).
    Gguf(PathBuf),
    /// A Hugging Face folder: `config.json`, `*.safetensors` (single or sharded), `tokenizer.json`.
    HfFolder(PathBuf),
}

const PICKLE_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "pkl", "ckpt", "pickle"];

impl ModelSource {
    /// Looks at a path and says what it is, reading at most a few bytes.
    pub fn detect(path: &Path) -> Result<ModelSource> {
        let meta = std::fs::metadata(path).map_err(|e| EngineError::io(path, e))?;
        if meta.is_dir() {
            return detect_folder(path);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        let head = read_head(path)?;
        if head.starts_with(b"GGUF") {
            return Ok(ModelSource::Gguf(path.to_path_buf()));
        }
        if PICKLE_EXTENSIONS.contains(&ext.as_str()) || looks_like_pickle(&head) {
            return Err(EngineError::Pickle { path: path.to_path_buf() });
        }
        if ext == "safetensors" || path.file_name().is_some_and(|n| n == "config.json") {
            let dir = path.parent().unwrap_or(Path::new("."));
            if dir.join("config.json").is_file() {
                return detect_folder(dir);
            }
            return Err(EngineError::NotAModel {
                path: path.to_path_buf(),
                why: "a .safetensors file needs the config.json and tokenizer.json of its model beside it; \
                      choose the model's whole folder"
                    .into(),
            });
        }
        Err(EngineError::NotAModel { path: path.to_path_buf(), why: describe_head(&head, meta.len(), &ext) })
    }

    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Gguf(p) | ModelSource::HfFolder(p) => p,
        }
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let mut buf = vec![0u8; 64];
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..]).map_err(|e| EngineError::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    buf.truncate(n);
    Ok(buf)
}

/// Pickle protocol 2+ starts with 0x80 then the protocol number; PyTorch's zip
/// checkpoints start with the zip signature.
fn looks_like_pickle(head: &[u8]) -> bool {
    matches!(head, [0x80, 2..=5, ..]) || head.starts_with(b"PK\x03\x04")
}

fn describe_head(head: &[u8], len: u64, ext: &str) -> String {
    if len == 0 {
        return "the file is empty".into();
    }
    let printable = head.iter().filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()).count();
    let kind = if printable * 10 >= head.len() * 9 {
        "it contains text"
    } else {
        "its content is not in a model format Residency reads"
    };
    if ext == "gguf" {
        format!("it is named .gguf but does not start with the GGUF signature ({kind}); the file may be damaged or renamed")
    } else {
        format!("{kind}; Residency reads GGUF files and Hugging Face folders with .safetensors weights")
    }
}

fn detect_folder(dir: &Path) -> Result<ModelSource> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let has_ext = |ext: &str| {
        entries.iter().any(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case(ext)))
    };
    let has_config = dir.join("config.json").is_file();
    if has_config && has_ext("safetensors") {
        return Ok(ModelSource::HfFolder(dir.to_path_buf()));
    }
    let ggufs: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("gguf")))
        .collect();
    if ggufs.len() == 1 {
        return ModelSource::detect(ggufs[0]);
    }
    let why = if ggufs.len() > 1 {
        format!("the folder holds {} .gguf files; choose one of them", ggufs.len())
    } else if PICKLE_EXTENSIONS.iter().any(|e| has_ext(e)) {
        return Err(EngineError::Pickle { path: dir.to_path_buf() });
    } else if has_config {
        "the folder has a config.json but no .safetensors weights".into()
    } else if has_ext("safetensors") {
        "the folder has .safetensors weights but no config.json describing the model".into()
    } else {
        "the folder holds no model: expected a .gguf file, or config.json with .safetensors weights".into()
    };
    Err(EngineError::NotAModel { path: dir.to_path_buf(), why })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn gguf_magic_is_recognised_whatever_the_name() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "model.bin.x", b"GGUF\x03\0\0\0rest");
        assert_eq!(ModelSource::detect(&p).unwrap(), ModelSource::Gguf(p));
    }

    #[test]
    fn pickles_are_refused_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        for (name, bytes) in [("pytorch_model.bin", &b"\x80\x02}q\0"[..]), ("x.pt", b"PK\x03\x04abc"), ("weird", b"\x80\x04\x95")] {
            let p = write(d.path(), name, bytes);
            let err = ModelSource::detect(&p).unwrap_err();
            assert!(matches!(err, EngineError::Pickle { .. }), "{name}: {err}");
            assert!(err.to_string().contains("safetensors"));
        }
    }

    #[test]
    fn text_renamed_gguf_says_so() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "notes.gguf", b"Dear Maggie, thanks for the beans!\n");
        let msg = ModelSource::detect(&p).unwrap_err().to_string();
        assert!(msg.contains("not a model") && msg.contains("GGUF signature") && msg.contains("text"), "{msg}");
        assert!(msg.contains("notes.gguf"));
    }

    #[test]
    fn folders() {
        let d = tempfile::tempdir().unwrap();
        let msg = ModelSource::detect(d.path()).unwrap_err().to_string();
        assert!(msg.contains("holds no model"), "{msg}");
        write(d.path(), "config.json", b"{}");
        assert!(ModelSource::detect(d.path()).unwrap_err().to_string().contains("no .safetensors"));
        write(d.path(), "model.safetensors", b"xx");
        assert_eq!(ModelSource::detect(d.path()).unwrap(), ModelSource::HfFolder(d.path().to_path_buf()));
        let e = tempfile::tempdir().unwrap();
        write(e.path(), "pytorch_model.bin", b"\x80\x02");
        write(e.path(), "config.json", b"{}");
        assert!(matches!(ModelSource::detect(e.path()).unwrap_err(), EngineError::Pickle { .. }));
    }

    #[test]
    fn missing_and_empty() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(ModelSource::detect(&d.path().join("nope.gguf")).unwrap_err(), EngineError::NotFound { .. }));
        let p = write(d.path(), "empty.gguf", b"");
        assert!(ModelSource::detect(&p).unwrap_err().to_string().contains("empty"));
    }
}
