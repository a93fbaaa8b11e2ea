//! `residency merge`: a base model with a LoRA adapter folded into its weights
//! (`W + scale * B A`), written as a Hugging Face folder (f32 safetensors,
//! config, tokenizer) that loads here, in transformers, and in llama.cpp's
//! converter.

use std::path::PathBuf;

use anyhow::{Context, Result};
use engine::WeightMode;

use crate::common::{load_adapter, load_model_with, model_path};

#[derive(clap::Args)]
pub struct Args {
    /// The base model the adapter was trained on (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The adapter folder (PEFT format).
    #[arg(long)]
    adapter: PathBuf,
    /// Where to write the merged model (a new or empty folder).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    if a.out.is_dir() && std::fs::read_dir(&a.out)?.next().is_some() {
        anyhow::bail!("{} is not empty; choose a new folder for the merged model", a.out.display());
    }
    let path = model_path(a.model.as_deref())?;
    // f32 weights: the merge is exact, and the folder holds f32 anyway.
    let mut model = load_model_with(&path, WeightMode::F32)?;
    load_adapter(&mut model, &a.adapter)?;
    engine::export::export_hf_folder(&model, &a.out).with_context(|| format!("could not write {}", a.out.display()))?;
    eprintln!("merged model written to {}", a.out.display());
    Ok(())
}
