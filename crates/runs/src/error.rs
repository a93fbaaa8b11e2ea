//! Errors a person can act on.

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("A run is already training ({0}). Pause or cancel it before starting another.")]
    Busy(String),
    #[error("There is no training run with the id {0}; it may have been discarded.")]
    NoSuchRun(String),
    #[error("This run cannot be {action} now: it is {status}.")]
    WrongState { action: &'static str, status: String },
    #[error("Choose a model on the Model screen before training.")]
    NoModel,
    #[error("Add a folder of examples on the Data screen before training.")]
    NoData,
    #[error("This run needs about {need_mib} MiB of memory but {have_mib} MiB are free. Try {advice}.")]
    WillNotFit { need_mib: u64, have_mib: u64, advice: String },
    #[error("{0}")]
    Settings(String),
    #[error("The model cannot be read: {0}")]
    Model(String),
    #[error("Residency could not save the run in {path}: {why}. Check that the disk is not full.")]
    Disk { path: String, why: String },
    #[error("The run record {path} is damaged ({why}).")]
    Damaged { path: String, why: String },
    #[error("This run stopped before its training data was ready, so there is nothing to resume. Discard it and start a new run.")]
    NothingToResume,
}

pub type Result<T> = std::result::Result<T, RunError>;
