//! Errors a person can act on. Every variant names the file and says what is wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: no such file or folder")]
    NotFound { path: PathBuf },

    #[error("{path}: this is not a model: {why}")]
    NotAModel { path: PathBuf, why: String },

    #[error(
        "{path}: this is a PyTorch pickle checkpoint, which can run arbitrary code when loaded, so Residency never opens it. \
         Use the model's .safetensors or .gguf version instead (most models on Hugging Face ship one, and Ollama or LM Studio use GGUF)"
    )]
    Pickle { path: PathBuf },

    #[error("{path}: the model file is damaged or incomplete: {why}. Download it again")]
    Corrupt { path: PathBuf, why: String },

    #[error(
        "{path}: model architecture `{arch}` is not supported yet (supported: llama, qwen2, qwen3, gemma3)"
    )]
    UnsupportedArch { path: PathBuf, arch: String },

    #[error("{path}: the model is missing weight `{name}`: the file is incomplete or of another architecture")]
    MissingTensor { path: PathBuf, name: String },

    #[error("{path}: {why}")]
    BadConfig { path: PathBuf, why: String },

    #[error("{path}: could not read the tokenizer: {source}")]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: vocab::VocabError,
    },

    #[error("{path}: could not read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the prompt is {got} tokens, more than this model's context of {max} tokens: shorten it")]
    ContextFull { got: usize, max: usize },

    #[error("internal computation error: {}", first_line(.0))]
    Compute(#[from] candle_core::Error),

    #[error("not supported: {0}")]
    Unsupported(String),

    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            EngineError::NotFound { path }
        } else {
            EngineError::Io { path, source }
        }
    }
}

/// The first line of an error's message: candle appends a backtrace to its
/// errors when RUST_BACKTRACE is set, which is no use to a person.
pub(crate) fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").trim().to_string()
}
