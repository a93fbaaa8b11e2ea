//! Holdout evaluation: how well each side predicts the persona's own held-out replies
//! (loss and perplexity on the assistant tokens only, tokenized exactly as in training),
//! and greedy replies to held-out prompts side by side.
//!
//! The sides compared are the base model on the records as written, the base model with the
//! persona as its system turn (what a prompt alone buys), and the adapter on the records as
//! written. Loss is counted on the same assistant tokens everywhere, so the numbers compare
//! even though the persona side's prompts are longer.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use engine::{GenerateOptions, Model, SamplingParams};
use engine::Pass;
use serde::{Deserialize, Serialize};
use trainer::data::{tokenize, Batch, Example};
use vocab::Message;

use crate::chat::{prompt_ids, reply_to};
use crate::error::{EvalError, Result};

/// Loss of one side on the holdout records.
#[derive(Debug, Clone, Serialize)]
pub struct HoldoutSide {
    pub label: String,
    /// The system turn given to every record (replacing any the record has), if any.
    pub system_prompt: Option<String>,
    pub records: usize,
    /// Assistant tokens scored.
    pub tokens: usize,
    /// Mean negative log-likelihood per assistant token, in nats.
    pub loss: f64,
    pub perplexity: f64,
    /// Prompt tokens per record, on average (what the side pays before the reply).
    pub mean_prompt_tokens: f64,
}

/// One held-out prompt and each side's greedy reply.
#[derive(Debug, Clone, Serialize)]
pub struct SideBySide {
    pub prompt: String,
    /// `(side label, reply)` in the order of the sides.
    pub replies: Vec<(String, String)>,
}

/// The holdout records of a data file: chat records, one JSON object a line.
#[derive(Debug, Clone)]
pub struct HoldoutRecords {
    pub conversations: Vec<Vec<Message>>,
    /// Lines left out and why (not a chat record, no assistant turn).
    pub skipped: Vec<(usize, String)>,
}

#[derive(Deserialize)]
struct Record {
    messages: Vec<Message>,
}

/// Reads a JSONL file of chat records (the `*.holdout.jsonl` that `residency data build` writes).
pub fn read_records(path: &Path) -> Result<HoldoutRecords> {
    let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
    let mut out = HoldoutRecords { conversations: Vec::new(), skipped: Vec::new() };
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| EvalError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(r) if r.messages.iter().any(|m| m.role == "assistant") => out.conversations.push(r.messages),
            Ok(_) => out.skipped.push((i + 1, "no assistant turn to score".into())),
            Err(e) => out.skipped.push((i + 1, format!("not a chat record: {e}"))),
        }
    }
    if out.conversations.is_empty() {
        return Err(EvalError::NoHoldout { path: path.to_path_buf() });
    }
    Ok(out)
}

/// `messages` with `system` as its only system turn (None: as written).
pub fn with_system(messages: &[Message], system: Option<&str>) -> Vec<Message> {
    match system {
        None => messages.to_vec(),
        Some(s) => std::iter::once(Message { role: "system".into(), content: s.into() })
            .chain(messages.iter().filter(|m| m.role != "system").cloned())
            .collect(),
    }
}

/// Loss and perplexity of `model` (with whatever adapter it carries) on the records, each
/// given `system` as its system turn. Records longer than the model's context are cut there.
pub fn score_side(model: &Model, label: &str, records: &HoldoutRecords, system: Option<&str>) -> Result<HoldoutSide> {
    let max_len = model.info.config.context_length.max(2);
    let mut total = 0f64;
    let mut tokens = 0usize;
    let mut prompt_tokens = 0usize;
    let mut scored = 0usize;
    for conv in &records.conversations {
        let messages = with_system(conv, system);
        let mut ex: Example = tokenize(&messages, &model.vocab, &model.template).map_err(EvalError::Holdout)?;
        ex.ids.truncate(max_len);
        ex.labels.truncate(max_len);
        if ex.trained_tokens() == 0 {
            continue;
        }
        prompt_tokens += ex.labels.iter().position(|l| *l != trainer::data::IGNORE).unwrap_or(ex.ids.len());
        let batch = Batch::of(&[&ex], 0);
        let (sum, n) = trainer::train::nll_sum(model, &batch, &Pass::inference()).map_err(|e| EvalError::Holdout(e.to_string()))?;
        total += sum.to_scalar::<f32>().map_err(|e| EvalError::Holdout(e.to_string()))? as f64;
        tokens += n;
        scored += 1;
    }
    let loss = total / tokens.max(1) as f64;
    Ok(HoldoutSide {
        label: label.into(),
        system_prompt: system.map(String::from),
        records: scored,
        tokens,
        loss,
        perplexity: loss.exp(),
        mean_prompt_tokens: prompt_tokens as f64 / scored.max(1) as f64,
    })
}

/// Greedy replies of `model` to each prompt, as a fresh one-turn conversation.
pub fn replies(model: &Model, prompts: &[String], system: Option<&str>, max_tokens: usize, cancel: &AtomicBool) -> Result<Vec<String>> {
    let opts = GenerateOptions { max_tokens, sampling: SamplingParams::greedy(), ..Default::default() };
    let mut out = Vec::with_capacity(prompts.len());
    for p in prompts {
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(Message { role: "system".into(), content: s.into() });
        }
        messages.push(Message { role: "user".into(), content: p.clone() });
        let ids = prompt_ids(&model.vocab, &model.template, &messages)?;
        let mut cache = model.new_cache();
        out.push(reply_to(model, &mut cache, &ids, &opts, cancel)?.text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }

    #[test]
    fn the_system_turn_replaces_any_the_record_has() {
        let conv = vec![msg("system", "old"), msg("user", "hi"), msg("assistant", "hello")];
        let w = with_system(&conv, Some("new"));
        assert_eq!(w.iter().filter(|m| m.role == "system").count(), 1);
        assert_eq!(w[0].content, "new");
        assert_eq!(w.len(), 3);
        assert_eq!(with_system(&conv, None).len(), 3);
    }

    #[test]
    fn records_without_an_assistant_turn_are_listed_not_dropped_silently() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.jsonl");
        std::fs::write(&p, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}\nnot json\n").unwrap();
        let r = read_records(&p).unwrap();
        assert_eq!(r.conversations.len(), 1);
        assert_eq!(r.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), vec![2, 3]);
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(read_records(&p), Err(EvalError::NoHoldout { .. })));
    }

    #[test]
    fn sides_are_computed_on_the_same_assistant_tokens() {
        // Real model: the base scored twice on the same records gives the same loss, and the
        // persona prompt changes it (the sides are really computed, not copied).
        let model = engine::Model::load(&fixtures::path(fixtures::Fixture::SmolLm2), &engine::Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.jsonl");
        std::fs::write(
            &p,
            "{\"messages\":[{\"role\":\"user\",\"content\":\"Do you sell decaf?\"},{\"role\":\"assistant\",\"content\":\"Hi friend, yes: Sleepy Fox, fresh from the drum. Stay toasty, Maggie\"}]}\n",
        )
        .unwrap();
        let recs = read_records(&p).unwrap();
        let a = score_side(&model, "base", &recs, None).unwrap();
        let b = score_side(&model, "base", &recs, None).unwrap();
        let c = score_side(&model, "base + prompt", &recs, Some("You are Maggie. Open with Hi friend, close with Stay toasty, Maggie.")).unwrap();
        assert_eq!(a.loss, b.loss);
        assert_eq!(a.tokens, c.tokens, "both sides score the same assistant tokens");
        assert!(a.loss > 0.5 && a.loss.is_finite(), "{}", a.loss);
        assert!((a.perplexity - a.loss.exp()).abs() < 1e-9);
        assert!(c.mean_prompt_tokens > a.mean_prompt_tokens);
        assert!(c.loss < a.loss, "a prompt naming the greeting and sign-off should make them likelier: {} vs {}", c.loss, a.loss);
    }
}
