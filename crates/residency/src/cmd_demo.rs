//! `residency demo`: the headless tour on the default model. It loads SmolLM2,
//! shows what it is, and answers held-out customer questions of the demo coffee
//! roaster, the way the app's Chat screen does with the persona as a system prompt.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use engine::{generate, GenerateOptions, SamplingParams};
use vocab::Message;

use crate::cmd_chat::prompt_ids;
use crate::common::{cancel_on_ctrl_c, load_model, model_path};

#[derive(clap::Args)]
pub struct Args {
    /// The model (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The demo persona folder.
    #[arg(long, default_value = "demo/coffee-roaster")]
    persona_dir: PathBuf,
    /// Held-out customer questions, one per line (never in the training folder).
    #[arg(long, default_value = "demo/coffee-roaster-eval/heldout-prompts.txt")]
    questions_file: PathBuf,
    /// How many held-out questions to ask.
    #[arg(long, default_value_t = 3)]
    questions: usize,
    #[arg(long, default_value_t = 96)]
    max_tokens: usize,
}

/// A system prompt from a persona card (`persona.toml`).
pub fn persona_prompt(card: &toml::Value) -> String {
    let s = |k: &str| card.get(k).and_then(|v| v.as_str()).unwrap_or("").trim().to_string();
    let list = |k: &str| -> Vec<String> {
        card.get(k)
            .or_else(|| card.get("rules").and_then(|r| r.get(k)))
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut p = format!("You are {}. {}", s("name"), s("description"));
    if !s("voice").is_empty() {
        p.push_str(&format!("\nVoice: {}", s("voice")));
    }
    for (title, key) in [("Style", "style"), ("Always", "do"), ("Never", "dont")] {
        let items = list(key);
        if !items.is_empty() {
            p.push_str(&format!("\n{title}:\n- {}", items.join("\n- ")));
        }
    }
    p
}

pub fn run(a: Args) -> Result<()> {
    let path = model_path(a.model.as_deref())?;
    eprintln!("Loading {} ...", path.display());
    let model = load_model(&path)?;
    eprintln!("Model: {} ({}, {} layers, context {})", model.info.name, model.info.arch.name(), model.config().layers, model.config().context_length);

    let card_path = a.persona_dir.join("persona.toml");
    let card: toml::Value = toml::from_str(&std::fs::read_to_string(&card_path).with_context(|| format!("reading {}", card_path.display()))?)
        .with_context(|| format!("{} is not a valid persona card", card_path.display()))?;
    let system = persona_prompt(&card);
    let questions_path = a.questions_file.clone();
    let questions = std::fs::read_to_string(&questions_path).with_context(|| format!("reading {}", questions_path.display()))?;

    eprintln!("\nPersona (as a system prompt):\n{system}\n");
    let opts = GenerateOptions { max_tokens: a.max_tokens, sampling: SamplingParams { seed: 1, ..SamplingParams::default() }, stop: vec![], stop_at_eos: true };
    let mut out = std::io::stdout().lock();
    for q in questions.lines().map(str::trim).filter(|l| !l.is_empty()).take(a.questions) {
        let msgs = vec![Message::new("system", &system), Message::new("user", q)];
        let ids = prompt_ids(&model, &msgs)?;
        writeln!(out, "\ncustomer> {q}")?;
        write!(out, "model> ")?;
        let mut cache = model.new_cache();
        let g = generate(&model, &mut cache, &ids, &opts, cancel_on_ctrl_c(), |p| {
            let _ = write!(out, "{p}");
            let _ = out.flush();
        })?;
        writeln!(out, "\n   [{} prompt tokens, {} generated, {:.1} tok/s]", g.prompt_tokens, g.tokens.len(), g.tokens.len() as f64 / g.decode_secs.max(1e-9))?;
    }
    Ok(())
}
