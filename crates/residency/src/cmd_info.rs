//! `residency info`: what a model file is.

use std::path::PathBuf;

use anyhow::Result;

use crate::common::{load_model, model_path};

#[derive(clap::Args)]
pub struct Args {
    /// A .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let path = model_path(a.model.as_deref())?;
    let model = load_model(&path)?;
    let i = &model.info;
    if a.json {
        println!("{}", serde_json::to_string_pretty(i)?);
        return Ok(());
    }
    let c = &i.config;
    println!("{}  ({})", i.name, i.source);
    println!("  architecture   {}", i.arch.name());
    println!("  layers         {} (hidden {}, MLP {}, {} heads / {} key-value heads of {})", c.layers, c.hidden, c.intermediate, c.heads, c.kv_heads, c.head_dim);
    println!("  vocabulary     {} tokens", model.vocab.vocab_size());
    println!("  context        {} tokens", c.context_length);
    println!("  file size      {:.1} MiB", i.file_bytes as f64 / (1024.0 * 1024.0));
    let types: Vec<String> = i.weight_types.iter().map(|(t, n)| format!("{t} x{n}")).collect();
    println!("  weights        {}", types.join(", "));
    println!("  chat template  {}{}", i.chat_template, if i.chat_template_is_fallback { " (fallback: the model has none)" } else { "" });
    Ok(())
}
