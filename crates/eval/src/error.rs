//! Errors of the evaluations, each saying what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("too few examples to learn the persona's voice from: {positives} replies in the persona's voice and {negatives} generic replies; at least {min} of each are needed (add more example conversations)")]
    TooFewExamples { positives: usize, negatives: usize, min: usize },
    #[error("could not read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} has no conversation lines to play (one user message a line)")]
    EmptyScript { path: PathBuf },
    #[error("line {line} of {path} is not a question/SQL pair: {why} (expected {{\"question\": \"...\", \"sql\": \"...\"}})")]
    BadPair { path: PathBuf, line: usize, why: String },
    #[error("the database {path} could not be opened read-only: {why}")]
    Database { path: PathBuf, why: String },
    #[error("turn {turn}: the message alone takes {tokens} tokens, more than the {budget} the model's context leaves for a prompt; shorten it or lower the reply length")]
    MessageTooLong { turn: usize, tokens: usize, budget: usize },
    #[error("{path} has no chat record with an assistant reply to score; point --data at the *.holdout.jsonl that `residency data build --holdout` writes")]
    NoHoldout { path: PathBuf },
    #[error("the holdout evaluation failed: {0}")]
    Holdout(String),
    #[error("the model failed: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("the chat template or tokenizer failed: {0}")]
    Vocab(#[from] vocab::VocabError),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

impl EvalError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> EvalError {
        EvalError::Io { path: path.into(), source }
    }
}
