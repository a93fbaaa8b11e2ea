//! Training runs of a project, as background jobs the app drives. GUI-free: the
//! Tauri commands are thin wrappers, and the tests drive it directly.
//!
//! Read in this order:
//! - `preset.rs`: the presets ("Persona and style", "Domain expert",
//!   "Text-to-SQL") and the advanced [`Settings`] that become a `TrainConfig`.
//! - `record.rs`: the [`RunRecord`] kept in `runs/ID/record.json`, written
//!   atomically, so the list of runs and their state survive restarts.
//! - `jobs.rs`: [`Runs`]: start one run at a time on a background thread,
//!   pause, resume, cancel, discard, list, and the recovery of runs that were
//!   training when the app stopped.
//!
//! A run's folder holds its training set (`data/train.jsonl`, built from the
//! project's inputs with the persona and the accepted fixes), and the trainer's
//! output in `out/`: the PEFT adapter, `run.json` (every step's metrics, the
//! evaluations and the sample replies: what the chart is redrawn from) and
//! `checkpoints/`.

pub mod error;
pub mod jobs;
pub mod preset;
pub mod record;

pub use error::RunError;
pub use jobs::{estimate, Fit, RunDetail, RunSpec, Runs, Sink, Update, UpdateKind};
pub use preset::{Preset, Settings};
pub use record::{RunRecord, RunStatus};
