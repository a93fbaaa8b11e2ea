//! Reads what a GGUF file says about itself, without loading its weights.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use serde::Serialize;

/// The first four bytes of every GGUF file.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// What a model file's header says: enough to show it in a list and to tell
/// whether Residency can work with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GgufSummary {
    /// `general.architecture`, e.g. `llama`, `qwen2`, `gemma3`.
    pub architecture: Option<String>,
    /// `general.name`, the name the model's authors gave it.
    pub general_name: Option<String>,
    /// Total number of weights over all tensors.
    pub parameter_count: u64,
    /// The storage type holding most of the weights, e.g. `Q4_1` or `Q4K`.
    pub main_weight_type: Option<String>,
    /// `<architecture>.context_length`: the longest context it was trained for.
    pub context_length: Option<u64>,
    pub tensor_count: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("Could not open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF model file (it does not start with the GGUF signature)")]
    NotGguf { path: PathBuf },
    #[error("{path} uses a weight format Residency cannot read yet ({detail})")]
    UnsupportedFormat { path: PathBuf, detail: String },
    #[error("{path} looks like a GGUF model but its header is damaged or incomplete ({detail}); try downloading it again")]
    Damaged { path: PathBuf, detail: String },
}

/// Reads the header (metadata and tensor list) of the GGUF file at `path`.
pub fn read_summary(path: &Path) -> Result<GgufSummary, GgufError> {
    let file = File::open(path).map_err(|source| GgufError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);

    let mut magic = [0u8; 4];
    match reader.read_exact(&mut magic) {
        Ok(()) if &magic == GGUF_MAGIC => {}
        Ok(()) => {
            return Err(GgufError::NotGguf {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(GgufError::NotGguf {
                path: path.to_owned(),
            })
        }
        Err(source) => {
            return Err(GgufError::Open {
                path: path.to_owned(),
                source,
            })
        }
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|source| GgufError::Open {
            path: path.to_owned(),
            source,
        })?;

    let content = Content::read(&mut reader).map_err(|e| {
        let detail = e.to_string();
        if detail.contains("unknown dtype") || detail.contains("unsupported") {
            GgufError::UnsupportedFormat {
                path: path.to_owned(),
                detail,
            }
        } else {
            GgufError::Damaged {
                path: path.to_owned(),
                detail,
            }
        }
    })?;
    Ok(summarize(&content))
}

fn summarize(content: &Content) -> GgufSummary {
    let text = |key: &str| match content.metadata.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    };
    let architecture = text("general.architecture");
    let context_length = architecture
        .as_deref()
        .and_then(|arch| content.metadata.get(&format!("{arch}.context_length")))
        .and_then(as_u64);

    let mut by_type: HashMap<GgmlDType, u64> = HashMap::new();
    let mut parameter_count = 0u64;
    for info in content.tensor_infos.values() {
        let n = info.shape.elem_count() as u64;
        parameter_count += n;
        *by_type.entry(info.ggml_dtype).or_default() += n;
    }
    // Ties broken by name so the answer does not depend on hash order.
    let main_weight_type = by_type
        .into_iter()
        .map(|(dtype, n)| (n, format!("{dtype:?}")))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, name)| name);

    GgufSummary {
        general_name: text("general.name"),
        architecture,
        parameter_count,
        main_weight_type,
        context_length,
        tensor_count: content.tensor_infos.len(),
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::U8(v) => Some(u64::from(*v)),
        Value::U16(v) => Some(u64::from(*v)),
        Value::U32(v) => Some(u64::from(*v)),
        Value::U64(v) => Some(*v),
        Value::I8(v) => u64::try_from(*v).ok(),
        Value::I16(v) => u64::try_from(*v).ok(),
        Value::I32(v) => u64::try_from(*v).ok(),
        Value::I64(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod test_files {
    //! Writes tiny, real GGUF files with candle's writer.
    use super::*;
    use candle_core::quantized::{gguf_file, QTensor};
    use candle_core::{Device, Tensor};

    /// A GGUF with the given metadata and two small tensors: `norm.weight`,
    /// 64 f32 weights, and `blk.0.weight`, `q8_rows` x 32 weights in Q8_0.
    pub fn write(path: &Path, metadata: &[(&str, Value)], q8_rows: usize) {
        let dev = Device::Cpu;
        let norm = QTensor::quantize(
            &Tensor::ones(64, candle_core::DType::F32, &dev).unwrap(),
            GgmlDType::F32,
        )
        .unwrap();
        let weight_data = Tensor::arange(0f32, (q8_rows * 32) as f32, &dev)
            .unwrap()
            .reshape((q8_rows, 32))
            .unwrap();
        let weight = QTensor::quantize(&weight_data, GgmlDType::Q8_0).unwrap();
        let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let mut file = File::create(path).unwrap();
        gguf_file::write(
            &mut file,
            &meta,
            &[("norm.weight", &norm), ("blk.0.weight", &weight)],
        )
        .unwrap();
    }

    pub fn llama_meta(name: &str) -> Vec<(&'static str, Value)> {
        vec![
            ("general.architecture", Value::String("llama".into())),
            ("general.name", Value::String(name.into())),
            ("llama.context_length", Value::U32(8192)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::*;
    use super::*;

    #[test]
    fn reads_architecture_name_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write(&path, &llama_meta("Tiny Llama"), 4);
        let s = read_summary(&path).unwrap();
        assert_eq!(s.architecture.as_deref(), Some("llama"));
        assert_eq!(s.general_name.as_deref(), Some("Tiny Llama"));
        assert_eq!(s.context_length, Some(8192));
        assert_eq!(s.tensor_count, 2);
        assert_eq!(s.parameter_count, 64 + 4 * 32);
        // 128 Q8_0 weights outnumber the 64 f32 ones.
        assert_eq!(s.main_weight_type.as_deref(), Some("Q8_0"));
    }

    #[test]
    fn missing_metadata_is_none_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bare.gguf");
        write(&path, &[], 1);
        let s = read_summary(&path).unwrap();
        assert_eq!(s.architecture, None);
        assert_eq!(s.general_name, None);
        assert_eq!(s.context_length, None);
        assert_eq!(s.main_weight_type.as_deref(), Some("F32"));
    }

    #[test]
    fn text_file_is_not_gguf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.gguf");
        std::fs::write(&path, "hello, these are my notes").unwrap();
        let err = read_summary(&path).unwrap_err();
        assert!(matches!(err, GgufError::NotGguf { .. }), "{err:?}");
        assert!(err.to_string().contains("not a GGUF model file"));
    }

    #[test]
    fn empty_file_is_not_gguf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.gguf");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(
            read_summary(&path),
            Err(GgufError::NotGguf { .. })
        ));
    }

    #[test]
    fn truncated_header_is_reported_as_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.gguf");
        write(&full, &llama_meta("Cut"), 2);
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.path().join("cut.gguf");
        std::fs::write(&cut, &bytes[..40]).unwrap();
        let err = read_summary(&cut).unwrap_err();
        assert!(matches!(err, GgufError::Damaged { .. }), "{err:?}");
        assert!(err.to_string().contains("downloading it again"));
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let err = read_summary(Path::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(matches!(err, GgufError::Open { .. }));
    }

    #[test]
    fn smollm2_fixture_header() {
        let path = match fixtures::try_path(fixtures::Fixture::SmolLm2) {
            Ok(p) => p,
            Err(msg) => panic!("{msg}"),
        };
        let s = read_summary(&path).unwrap();
        assert_eq!(s.architecture.as_deref(), Some("llama"));
        assert_eq!(s.tensor_count, 272);
        assert_eq!(s.main_weight_type.as_deref(), Some("Q4_1"));
        // 135M parameters (the tied output shares the embedding tensor).
        assert!(
            (130_000_000..140_000_000).contains(&s.parameter_count),
            "{}",
            s.parameter_count
        );
    }
}
