//! What a run reports while it works: one event stream that the CLI (progress
//! bar and log) and the app (live charts) both consume.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::DataReport;
use crate::memory::MemoryEstimate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        total_steps: usize,
        trainable_params: usize,
        examples: usize,
        holdout_examples: usize,
        resumed_from: Option<usize>,
        data: DataReport,
        holdout: Option<DataReport>,
        memory_estimate: MemoryEstimate,
    },
    Step(StepMetrics),
    Eval(EvalRecord),
    Checkpoint { step: usize, path: PathBuf },
    /// Greedy replies to the held-out sample prompts (see `TrainConfig::sample_prompts`).
    Samples(SampleSet),
    Finished { status: Status, adapter: PathBuf },
}

/// One optimizer step, as recorded in `run.json` and sent to the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: usize,
    pub total_steps: usize,
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens in this step's batches (with the padding of batches of several rows).
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub eta_s: f64,
    /// Resident memory of the process now, and its peak so far.
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    /// GPU memory in use (None on the CPU).
    pub gpu_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: usize,
    pub holdout_loss: f64,
    pub best: bool,
}

/// The sample replies at one step, as recorded in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    pub step: usize,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The user's message.
    pub prompt: String,
    pub reply: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Finished,
    /// Stopped early: the holdout loss stopped improving.
    EarlyStopped,
    Cancelled,
    Diverged,
}

/// `(current, peak)` resident memory of this process, in bytes (Linux; None elsewhere).
pub fn process_memory() -> (Option<u64>, Option<u64>) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else { return (None, None) };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
