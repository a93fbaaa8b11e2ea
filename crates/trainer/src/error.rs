//! Errors a person can act on.

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Model(#[from] engine::EngineError),

    #[error("training data: {0}")]
    Data(String),

    #[error("invalid setting: {0}")]
    Config(String),

    #[error(
        "this run needs about {need_mib} MiB of memory but {have_mib} MiB are free. Try: {advice}"
    )]
    WillNotFit { need_mib: u64, have_mib: u64, advice: String },

    #[error(
        "training diverged at step {step}: {what}. The last good checkpoint is kept ({checkpoint}); \
         lower the learning rate (--lr) and resume, or start again"
    )]
    Diverged { step: usize, what: String, checkpoint: String },

    #[error("could not save the checkpoint in {dir}: {why}. The previous checkpoint is intact; free some disk space and resume")]
    Checkpoint { dir: String, why: String },

    #[error("cannot resume: {0}")]
    Resume(String),

    #[error("computation failed: {0}")]
    Compute(String),

    #[error("{path}: {why}")]
    Io { path: String, why: String },
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        TrainError::Compute(e.to_string().lines().next().unwrap_or("").to_string())
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
