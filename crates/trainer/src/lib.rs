//! QLoRA fine-tuning in pure Rust, on the engine's model code.
//!
//! Read in this order:
//! - `config.rs`: what defines a run ([`TrainConfig`]).
//! - `data.rs`: chat records to token ids, with labels on assistant tokens only.
//! - `optim.rs`: AdamW (PyTorch's update), warmup + cosine schedule, clipping.
//! - `train.rs`: the loop ([`Trainer`]): micro-batches, loss, accumulation,
//!   evaluation, early stopping, checkpoints, the PEFT adapter and `run.json`.
//! - `state.rs`: checkpoints written atomically; resuming continues bit for bit.
//! - `progress.rs`: the events the CLI and the app show.
//! - `samples.rs`: greedy replies to held-out prompts at evaluation time.
//! - `memory.rs`: the peak-memory estimate that refuses runs that cannot fit.
//!
//! The frozen base and its backward pass, the adapters and gradient
//! checkpointing are in the qlora crate; the model forward passes in the engine.

pub mod config;
pub mod data;
pub mod error;
pub mod memory;
pub mod optim;
pub mod progress;
pub mod samples;
pub mod state;
pub mod train;

pub use config::{Length, SamplePrompt, TrainConfig};
pub use error::{Result, TrainError};
pub use progress::{Event, Sample, SampleSet, Status, StepMetrics};
pub use train::{Outcome, Trainer};
