//! Everything that defines a run. Saved in every checkpoint and in `run.json`,
//! so that a resumed run continues with exactly the settings it started with.

use std::path::PathBuf;

use engine::BaseQuant;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::AdamWConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: PathBuf,
    pub data: PathBuf,
    /// Held-out records for evaluation (`NAME.holdout.jsonl` beside the data by default).
    pub holdout: Option<PathBuf>,
    pub out: PathBuf,
    /// Length of training: optimizer steps, or epochs over the data.
    pub length: Length,
    pub lr: f64,
    /// Warmup steps (linear), before the cosine decay.
    pub warmup_steps: usize,
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f32,
    pub rslora: bool,
    /// Short names of the layers to adapt (`q_proj`, ..., `down_proj`).
    pub targets: Vec<String>,
    pub seq_len: usize,
    pub batch: usize,
    pub grad_accum: usize,
    pub quant: BaseQuant,
    pub seed: u64,
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this (None: no clipping).
    pub max_grad_norm: Option<f64>,
    /// Recompute each decoder layer in the backward pass (less memory, ~30% more time).
    pub gradient_checkpointing: bool,
    /// Save a checkpoint every N optimizer steps (0: only at the end and on cancel).
    pub checkpoint_every: usize,
    /// Evaluate on the holdout every N optimizer steps (0: only at the end).
    pub eval_every: usize,
    /// Stop when the holdout loss has not improved for this many evaluations.
    pub early_stopping_patience: Option<usize>,
    /// Checkpoints kept on disk (the newest ones).
    pub keep_checkpoints: usize,
    /// Held-out prompts answered greedily at every evaluation and at the end, so a
    /// person can read how the replies change (empty: none). Generating them does
    /// not touch the training state: a run with samples trains exactly as one without.
    #[serde(default)]
    pub sample_prompts: Vec<SamplePrompt>,
    /// The longest sample reply, in tokens.
    #[serde(default = "default_sample_tokens")]
    pub sample_max_tokens: usize,
}

/// A prompt for the sample replies: the conversation up to the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplePrompt {
    /// The system turn (the persona, when the data carries it as the system prompt).
    pub system: Option<String>,
    pub user: String,
}

fn default_sample_tokens() -> usize {
    48
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Length {
    Steps(usize),
    Epochs(f64),
}

impl TrainConfig {
    /// Defaults for a model, data file and output folder: r = 16, alpha = 32, every
    /// linear layer of attention and MLP, NF4 base, lr 2e-4, 3 epochs.
    pub fn new(model: PathBuf, data: PathBuf, out: PathBuf) -> TrainConfig {
        TrainConfig {
            model,
            data,
            holdout: None,
            out,
            length: Length::Epochs(3.0),
            lr: 2e-4,
            warmup_steps: 10,
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            rslora: false,
            targets: engine::adapter::ALL_LINEAR.iter().map(|s| s.to_string()).collect(),
            seq_len: 512,
            batch: 1,
            grad_accum: 8,
            quant: BaseQuant::Nf4,
            seed: 42,
            adamw: AdamWConfig::default(),
            max_grad_norm: Some(1.0),
            gradient_checkpointing: true,
            checkpoint_every: 50,
            eval_every: 50,
            early_stopping_patience: None,
            keep_checkpoints: 2,
            sample_prompts: Vec::new(),
            sample_max_tokens: default_sample_tokens(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(TrainError::Config(s));
        if self.lr.is_nan() || self.lr <= 0.0 || self.lr >= 1.0 {
            return bad(format!("the learning rate must be between 0 and 1, got {}", self.lr));
        }
        if self.rank == 0 || self.rank > 1024 {
            return bad(format!("the rank must be between 1 and 1024, got {}", self.rank));
        }
        if self.alpha.is_nan() || self.alpha <= 0.0 {
            return bad(format!("alpha must be positive, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.seq_len < 16 {
            return bad(format!("the sequence length must be at least 16 tokens, got {}", self.seq_len));
        }
        if self.batch == 0 || self.grad_accum == 0 {
            return bad("batch and gradient accumulation must be at least 1".into());
        }
        match self.length {
            Length::Steps(0) => return bad("--steps must be at least 1".into()),
            Length::Epochs(e) if e.is_nan() || e <= 0.0 => return bad(format!("--epochs must be positive, got {e}")),
            _ => {}
        }
        if !self.sample_prompts.is_empty() && self.sample_max_tokens == 0 {
            return bad("sample replies need at least 1 token (sample_max_tokens)".into());
        }
        if self.targets.is_empty() {
            return bad("no target modules: name at least one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj".into());
        }
        Ok(())
    }

    pub fn lora_config(&self) -> qlora::LoraConfig {
        qlora::LoraConfig { rank: self.rank, alpha: self.alpha, dropout: self.dropout, rslora: self.rslora }
    }

    /// Optimizer steps for `examples` training records.
    pub fn total_steps(&self, examples: usize) -> usize {
        match self.length {
            Length::Steps(n) => n,
            Length::Epochs(e) => {
                let per_epoch = examples.div_ceil(self.batch) as f64 / self.grad_accum as f64;
                ((per_epoch * e).ceil() as usize).max(1)
            }
        }
    }

    /// The holdout file: given, or `NAME.holdout.jsonl` beside `NAME.jsonl` (what
    /// `residency data build` writes) when it exists.
    pub fn holdout_path(&self) -> Option<PathBuf> {
        if let Some(h) = &self.holdout {
            return Some(h.clone());
        }
        let stem = self.data.file_stem()?.to_string_lossy().into_owned();
        let p = self.data.with_file_name(format!("{stem}.holdout.jsonl"));
        p.is_file().then_some(p)
    }
}
