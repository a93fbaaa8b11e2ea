//! `residency train`: QLoRA fine-tuning of a model on chat records, with a
//! progress bar, checkpoints, `--resume`, and a PEFT adapter at the end.

use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use trainer::{Event, Length, Status, TrainConfig, Trainer};

use crate::common::model_path;

#[derive(clap::Args)]
pub struct Args {
    /// The base model: a .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training records: JSON Lines of {"messages": [{"role": ..., "content": ...}]}
    /// (what `residency data build` writes).
    #[arg(long)]
    data: PathBuf,
    /// Held-out records for evaluation (default: NAME.holdout.jsonl beside the data, if present).
    #[arg(long)]
    holdout: Option<PathBuf>,
    /// Output folder: the PEFT adapter, run.json and checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps to take.
    #[arg(long, conflicts_with = "epochs")]
    steps: Option<usize>,
    /// Passes over the data (default 3).
    #[arg(long)]
    epochs: Option<f64>,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Linear warmup steps before the cosine decay.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// LoRA rank.
    #[arg(long, default_value_t = 16)]
    rank: usize,
    /// LoRA alpha (the update is scaled by alpha / rank).
    #[arg(long, default_value_t = 32.0)]
    alpha: f64,
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Scale by alpha / sqrt(rank) (rsLoRA).
    #[arg(long)]
    rslora: bool,
    /// Layers to adapt, comma-separated (default: every attention and MLP projection).
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<String>>,
    /// Tokens per record; longer records are cut (and counted).
    #[arg(long, default_value_t = 512)]
    seq_len: usize,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 8)]
    grad_accum: usize,
    /// How the frozen base is stored: nf4 (QLoRA), q8, gguf (the file's own), none (f32).
    #[arg(long, default_value = "nf4")]
    quant: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Clip the gradient norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Keep every layer's activations instead of recomputing them (faster, more memory).
    #[arg(long)]
    no_gradient_checkpointing: bool,
    /// Save a checkpoint every N steps.
    #[arg(long, default_value_t = 50)]
    checkpoint_every: usize,
    /// Evaluate on the holdout every N steps.
    #[arg(long, default_value_t = 50)]
    eval_every: usize,
    /// Stop when the holdout loss has not improved for this many evaluations.
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Continue the run in --out from its latest checkpoint, with its saved settings.
    #[arg(long)]
    resume: bool,
    /// Print one JSON event per line instead of the progress bar.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let model = model_path(a.model.as_deref())?;
    let quant = engine::BaseQuant::parse(&a.quant)
        .with_context(|| format!("--quant `{}`: choose nf4, q8, gguf or none", a.quant))?;
    let mut cfg = TrainConfig::new(model, a.data.clone(), a.out.clone());
    cfg.holdout = a.holdout.clone();
    cfg.length = match (a.steps, a.epochs) {
        (Some(s), _) => Length::Steps(s),
        (None, Some(e)) => Length::Epochs(e),
        (None, None) => Length::Epochs(3.0),
    };
    cfg.lr = a.lr;
    cfg.warmup_steps = a.warmup;
    cfg.rank = a.rank;
    cfg.alpha = a.alpha;
    cfg.dropout = a.dropout;
    cfg.rslora = a.rslora;
    if let Some(t) = &a.targets {
        cfg.targets = t.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    cfg.seq_len = a.seq_len;
    cfg.batch = a.batch;
    cfg.grad_accum = a.grad_accum;
    cfg.quant = quant;
    cfg.seed = a.seed;
    cfg.adamw.weight_decay = a.weight_decay;
    cfg.max_grad_norm = (a.max_grad_norm > 0.0).then_some(a.max_grad_norm);
    cfg.gradient_checkpointing = !a.no_gradient_checkpointing;
    cfg.checkpoint_every = a.checkpoint_every;
    cfg.eval_every = a.eval_every;
    cfg.early_stopping_patience = a.early_stopping;

    let mut trainer = Trainer::new(cfg, a.resume)?;
    let cancel = crate::common::cancel_on_ctrl_c();
    let json = a.json;
    let bar = ProgressBar::hidden();
    if !json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} step {pos}/{len}  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    let mut on_event = |e: &Event| {
        if json {
            println!("{}", serde_json::to_string(e).expect("event serialises"));
            return;
        }
        match e {
            Event::Started { total_steps, trainable_params, examples, holdout_examples, resumed_from, data, holdout, memory_estimate } => {
                bar.set_length(*total_steps as u64);
                eprintln!("{}", data.summary());
                if let Some(h) = holdout {
                    eprintln!("holdout {}", h.summary());
                }
                eprintln!(
                    "training {trainable_params} adapter parameters on {examples} records ({holdout_examples} held out), {total_steps} steps; expected peak memory {} MiB",
                    memory_estimate.total >> 20
                );
                if let Some(s) = resumed_from {
                    eprintln!("resuming after step {s}");
                    bar.set_position(*s as u64);
                }
            }
            Event::Step(m) => {
                bar.set_position(m.step as u64);
                let mem = m.rss_bytes.map(|b| format!("  {} MiB", b >> 20)).unwrap_or_default();
                bar.set_message(format!(
                    "loss {:.3}  lr {:.2e}  {:.0} tok/s  eta {:.0}s{mem}",
                    m.loss, m.lr, m.tokens_per_s, m.eta_s
                ));
                bar.println(format!("step {:>4}  epoch {:.2}  loss {:.4}  grad norm {:.3}", m.step, m.epoch, m.loss, m.grad_norm));
            }
            Event::Eval(e) => bar.println(format!("step {:>4}  holdout loss {:.4}{}", e.step, e.holdout_loss, if e.best { "  (best)" } else { "" })),
            Event::Checkpoint { path, .. } => bar.println(format!("checkpoint: {}", path.display())),
            Event::Samples(set) => {
                for x in &set.samples {
                    bar.println(format!("step {:>4}  sample  {} -> {}", set.step, x.prompt, x.reply.replace('\n', " / ")));
                }
            }
            Event::Finished { .. } => bar.finish_and_clear(),
        }
    };
    let outcome = trainer.run(&mut on_event, cancel)?;
    if !json {
        match outcome.status {
            Status::Cancelled => eprintln!(
                "stopped at step {}; the checkpoint is saved: run the same command with --resume to continue",
                outcome.steps
            ),
            _ => {
                eprintln!("adapter written to {} ({} steps)", outcome.adapter.display(), outcome.steps);
                if let Some(h) = outcome.holdout_loss {
                    eprintln!("holdout loss {h:.4}");
                }
            }
        }
    }
    Ok(())
}
