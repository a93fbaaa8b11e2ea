//! What can go wrong in a chat, each message saying what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("The model could not be loaded: {0}. Choose another model on the Model screen.")]
    Model(#[source] engine::EngineError),
    #[error("The adapter folder {path} cannot be used: {why}. Choose the folder of a finished training run (it holds adapter_config.json and adapter_model.safetensors).")]
    Adapter { path: PathBuf, why: String },
    #[error("The reply failed: {0}. Your message is kept; try sending it again.")]
    Generate(String),
    #[error("Type a message first.")]
    EmptyMessage,
    #[error("Your message alone takes {tokens} tokens, more than the {budget} the model can read with room for the reply. Shorten it, or lower the reply length.")]
    MessageTooLong { tokens: usize, budget: usize },
    #[error("There is no trained adapter to chat with. Train one on the Train screen, or choose an adapter folder.")]
    NoAdapter,
    #[error("Sampling settings not accepted: {0}")]
    Sampling(String),
    #[error("Residency could not save the conversation to {path}: {source}. Check that the disk is not full.")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("Residency could not read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("The conversation file {path} is damaged ({why}); it cannot be opened. Your other conversations are not affected.")]
    Damaged { path: PathBuf, why: String },
    #[error("There is no conversation with the id {0}; it may have been deleted.")]
    NoSuchConversation(String),
}

pub type Result<T, E = ChatError> = std::result::Result<T, E>;
