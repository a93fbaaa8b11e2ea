//! `residency chat`: a conversation using the model's own chat template.
//! Interactive by default (`/reset` starts over, `/quit` or Ctrl-D leaves);
//! `--message` sends one message and prints the reply, for scripts.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Result;
use engine::{generate, GenerateOptions, Model};
use vocab::Message;

use crate::common::{cancel_on_ctrl_c, load_adapter, load_model, model_path, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    /// A .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A LoRA adapter folder (PEFT format, e.g. what `residency train` wrote) to apply.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// A system prompt (a persona, instructions).
    #[arg(long)]
    system: Option<String>,
    /// Send this one message, print the reply and exit.
    #[arg(long)]
    message: Option<String>,
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// The token ids of a conversation, rendered with the model's template and ready
/// for the assistant's next turn.
pub fn prompt_ids(model: &Model, messages: &[Message]) -> Result<Vec<u32>> {
    let prompt = model.template.render_for_model(&model.vocab, messages, true)?;
    Ok(prompt.encode(&model.vocab)?)
}

pub fn run(a: Args) -> Result<()> {
    let path = model_path(a.model.as_deref())?;
    let mut model = load_model(&path)?;
    if let Some(dir) = &a.adapter {
        load_adapter(&mut model, dir)?;
    }
    if model.template.is_fallback() {
        eprintln!(
            "note: this model has no chat template of its own; using the `{}` template. Replies may be poor: it is probably a base model, not a chat model.",
            model.template.name()
        );
    }
    let opts = GenerateOptions { max_tokens: a.max_tokens, sampling: a.sampling.params()?, stop: vec![], stop_at_eos: true };
    let mut messages: Vec<Message> = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::new("system", s));
    }
    let mut cache = model.new_cache();
    let cancel = cancel_on_ctrl_c();

    if let Some(m) = &a.message {
        messages.push(Message::new("user", m));
        let ids = prompt_ids(&model, &messages)?;
        let mut out = std::io::stdout().lock();
        generate(&model, &mut cache, &ids, &opts, cancel, |p| {
            let _ = write!(out, "{p}");
            let _ = out.flush();
        })?;
        writeln!(out)?;
        return Ok(());
    }

    eprintln!("Chatting with {} ({}). Type a message; /reset starts over, /quit leaves.", model.info.name, model.info.arch.name());
    let stdin = std::io::stdin();
    loop {
        eprint!("\nyou> ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                messages.retain(|m| m.role == "system");
                eprintln!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        messages.push(Message::new("user", line));
        let ids = prompt_ids(&model, &messages)?;
        cancel.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut out = std::io::stdout().lock();
        write!(out, "model> ")?;
        let g = generate(&model, &mut cache, &ids, &opts, cancel, |p| {
            let _ = write!(out, "{p}");
            let _ = out.flush();
        })?;
        writeln!(out)?;
        messages.push(Message::new("assistant", g.text.trim()));
    }
    Ok(())
}
