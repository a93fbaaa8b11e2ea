//! Errors of this crate: values with messages a person can act on.

use std::path::PathBuf;

/// Everything that can go wrong while building a tokenizer, tokenizing, or rendering
/// a chat template.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// The GGUF file carries no tokenizer (no `tokenizer.ggml.*` keys).
    #[error(
        "This model file has no tokenizer inside: the GGUF metadata lacks `{key}`. \
         Use a GGUF exported with its tokenizer (llama.cpp's convert_hf_to_gguf.py writes one), \
         or point to the model's Hugging Face folder with tokenizer.json."
    )]
    MissingTokenizer { key: String },

    /// A tokenizer key is present but has the wrong type or an impossible value.
    #[error("This model file's tokenizer is damaged: {what}. Re-download or re-export the model.")]
    BadTokenizerMetadata { what: String },

    /// The tokenizer model named in the file is one this crate does not implement.
    #[error(
        "This model uses a tokenizer this app does not support yet: {what}. \
         Supported: byte-level BPE (\"gpt2\" with pre-tokenizers {supported_pre}) and SentencePiece (\"llama\")."
    )]
    UnsupportedTokenizer { what: String, supported_pre: &'static str },

    /// The model folder has no `tokenizer.json`.
    #[error(
        "The model folder {dir} has no tokenizer.json. Copy the model's tokenizer.json \
         (and tokenizer_config.json) from where the model was downloaded into this folder."
    )]
    MissingTokenizerJson { dir: PathBuf },

    /// A file could not be read.
    #[error("Could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (tokenizer_config.json, generation_config.json ...) is not valid.
    #[error("The file {path} is not valid JSON: {message}")]
    BadJson { path: PathBuf, message: String },

    /// The GGUF file could not be parsed at all.
    #[error("This file is not a readable GGUF model: {path}: {message}")]
    NotGguf { path: PathBuf, message: String },

    /// The `tokenizers` library refused the vocabulary or failed on a text.
    #[error("The tokenizer failed: {0}")]
    Tokenizer(String),

    /// A token id outside the vocabulary was given to decode.
    #[error("Token id {id} is outside this model's vocabulary of {vocab_size} tokens.")]
    UnknownTokenId { id: u32, vocab_size: usize },

    /// The caller asked for a BOS token but the model has none.
    #[error("This model has no beginning-of-text (BOS) token, so none can be added; encode without BOS.")]
    NoBosToken,

    /// A text contains a character with no token and no byte-fallback token to spell it.
    #[error("The tokenizer cannot spell the byte 0x{byte:02X}: the vocabulary has no token for it.")]
    NoByteToken { byte: u8 },

    /// A chat template failed to compile or render.
    #[error("The chat template `{name}` failed: {message}")]
    Template { name: String, message: String },

    /// The caller asked for a fallback chat template that does not exist.
    #[error("There is no built-in chat template called `{name}`; the built-in ones are: {known}.")]
    UnknownFallback { name: String, known: String },
}

/// Short for `std::result::Result<T, VocabError>`.
pub type Result<T> = std::result::Result<T, VocabError>;

impl VocabError {
    pub(crate) fn tokenizer(e: impl std::fmt::Display) -> Self {
        VocabError::Tokenizer(e.to_string())
    }

    pub(crate) fn bad_meta(what: impl Into<String>) -> Self {
        VocabError::BadTokenizerMetadata { what: what.into() }
    }
}
