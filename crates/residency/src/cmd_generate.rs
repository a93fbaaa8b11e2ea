//! `residency generate`: raw continuation of a prompt, streamed to stdout.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use engine::{generate, GenerateOptions};

use crate::common::{cancel_on_ctrl_c, load_adapter, load_model, model_path, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    /// A .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A LoRA adapter folder (PEFT format) to apply.
    #[arg(long)]
    adapter: Option<PathBuf>,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Print the prompt before the continuation.
    #[arg(long)]
    echo: bool,
    /// Print token counts and speed to stderr.
    #[arg(long)]
    stats: bool,
}

pub fn run(a: Args) -> Result<()> {
    let path = model_path(a.model.as_deref())?;
    let mut model = load_model(&path)?;
    if let Some(dir) = &a.adapter {
        load_adapter(&mut model, dir)?;
    }
    let ids = model.vocab.encode(&a.prompt, model.vocab.add_bos(), true)?;
    let opts = GenerateOptions { max_tokens: a.max_tokens, sampling: a.sampling.params()?, stop: vec![], stop_at_eos: true };
    let mut out = std::io::stdout().lock();
    if a.echo {
        write!(out, "{}", a.prompt)?;
    }
    let mut cache = model.new_cache();
    let g = generate(&model, &mut cache, &ids, &opts, cancel_on_ctrl_c(), |piece| {
        let _ = write!(out, "{piece}");
        let _ = out.flush();
    })?;
    writeln!(out)?;
    if a.stats {
        eprintln!(
            "prompt {} tokens in {:.2}s ({:.1} tok/s); generated {} tokens in {:.2}s ({:.1} tok/s); stopped: {:?}",
            g.prompt_tokens,
            g.prefill_secs,
            g.prefilled_tokens as f64 / g.prefill_secs.max(1e-9),
            g.tokens.len(),
            g.decode_secs,
            g.tokens.len() as f64 / g.decode_secs.max(1e-9),
            g.stop_reason
        );
    }
    Ok(())
}
