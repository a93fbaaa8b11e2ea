//! The drift test: a scripted conversation played turn by turn against a model, the whole
//! history in every prompt (the oldest exchanges left out, and said so, when the context is
//! full), every reply scored for adherence, with the prompt tokens and prefill time each turn
//! costs.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::{GenerateOptions, Model, SamplingParams, StopReason};
use serde::Serialize;
use vocab::{ChatTemplate, Message, Vocab};

use crate::adherence::{Adherence, AdherenceScorer};
use crate::chat::{prompt_ids, reply_to};
use crate::error::{EvalError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct DriftOptions {
    /// What the run is called in reports, e.g. "base + persona prompt".
    pub label: String,
    /// How many turns to play (the script's first lines).
    pub turns: usize,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Sent as the system turn before the conversation (None: no system turn).
    pub system_prompt: Option<String>,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions { label: "model".into(), turns: 30, max_tokens: 160, sampling: SamplingParams::greedy(), system_prompt: None }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftTurn {
    /// 1-based.
    pub turn: usize,
    pub user: String,
    pub reply: String,
    pub adherence: Adherence,
    pub prompt_tokens: usize,
    pub prefilled_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    pub stop_reason: StopReason,
    /// Earlier exchanges left out of this turn's prompt because the context was full.
    pub dropped_exchanges: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftRun {
    pub label: String,
    pub system_prompt: Option<String>,
    /// Tokens the system prompt adds to every turn's prompt (0 without one). Measured against
    /// the prompt without a system turn, which for some templates (SmolLM2's) has a short
    /// default system prompt of its own.
    pub system_prompt_tokens: usize,
    pub turns: Vec<DriftTurn>,
    /// What the numbers need to be read with: truncation, a short script, a cancel.
    pub notes: Vec<String>,
}

impl DriftRun {
    /// Mean adherence score over the turns in `range` (1-based, inclusive) that were played.
    pub fn mean_score(&self, range: RangeInclusive<usize>) -> Option<f64> {
        let s: Vec<f64> = self.turns.iter().filter(|t| range.contains(&t.turn)).map(|t| t.adherence.score).collect();
        (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64)
    }

    pub fn total_prompt_tokens(&self) -> usize {
        self.turns.iter().map(|t| t.prompt_tokens).sum()
    }

    pub fn total_prefilled_tokens(&self) -> usize {
        self.turns.iter().map(|t| t.prefilled_tokens).sum()
    }

    pub fn total_prefill_secs(&self) -> f64 {
        self.turns.iter().map(|t| t.prefill_secs).sum()
    }
}

/// A general drift script for any business persona, when the user has none: it opens on the
/// business, wanders off to weather, recipes, tech, trivia and an argument, then comes back.
pub const DEFAULT_SCRIPT: &str = "\
Hi! I found you online. What do you do, exactly?
Who would you say your work is best for?
What would you recommend for someone just starting out?
How long does it usually take to get it?
What does it cost, roughly?
By the way, how's the weather where you are today?
Do you have any plans for the weekend?
I'm cooking dinner for friends tonight. Any easy recipe ideas?
What's a good dessert to go with that?
Sorry, random question: my phone battery drains really fast. Why?
Should I get an iPhone or an Android phone?
Can you explain how the internet actually works?
What's the best way to learn a new language as an adult?
Can you write me a haiku about rain?
Who's going to win the next World Cup?
What do you think about the latest election results?
Honestly, I think businesses like yours are overpriced.
A big online store sells something similar for half the price. Why should I pay more?
You're only saying that because you want my money.
Fine. Is what you sell actually good for anything, though?
Tell me a joke.
What's the capital of Canada?
Can you help me write a complaint letter to my landlord?
How do I fix a leaky faucet?
What's your favourite movie?
Okay, back to your business. If I buy something and don't like it, what happens?
Could I swap it for something else?
When is the best time to order?
How do I get in touch if I have a problem later?
Thanks for chatting with me today.
";

/// The lines of a script text (see [`read_script`]).
pub fn script_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

/// A conversation script: one user message a line; blank lines and lines starting with `#`
/// are skipped.
pub fn read_script(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let lines = script_lines(&text);
    if lines.is_empty() {
        return Err(EvalError::EmptyScript { path: path.to_path_buf() });
    }
    Ok(lines)
}

/// Plays `script` against `model` as one conversation. `on_turn` sees each turn as it is
/// scored (for live display). Stops early, with a note, when `cancel` is set.
#[allow(clippy::too_many_arguments)]
pub fn run_drift(
    model: &Model,
    vocab: &Vocab,
    template: &ChatTemplate,
    script: &[String],
    scorer: &AdherenceScorer,
    opts: &DriftOptions,
    cancel: &AtomicBool,
    mut on_turn: impl FnMut(&DriftTurn),
) -> Result<DriftRun> {
    let mut notes = Vec::new();
    let n = opts.turns.min(script.len());
    if n < opts.turns {
        notes.push(format!("the script has {} lines, so {} turns were played instead of {}", script.len(), n, opts.turns));
    }
    let system: Vec<Message> = opts.system_prompt.iter().map(Message::system).collect();
    let system_prompt_tokens = match &opts.system_prompt {
        // The system turn's cost: the prompt with it minus the prompt without it.
        Some(_) => {
            let probe = [Message::user("hi")];
            let with: Vec<Message> = system.iter().cloned().chain(probe.iter().cloned()).collect();
            prompt_ids(vocab, template, &with)?.len().saturating_sub(prompt_ids(vocab, template, &probe)?.len())
        }
        None => 0,
    };
    let gen = GenerateOptions { max_tokens: opts.max_tokens, sampling: opts.sampling.clone(), stop: vec![], stop_at_eos: true };
    let budget = model.config().context_length.saturating_sub(opts.max_tokens);
    let mut history: Vec<Message> = Vec::new();
    let mut dropped = 0usize;
    let mut cache = model.new_cache();
    let mut turns = Vec::with_capacity(n);
    for (i, user) in script.iter().take(n).enumerate() {
        let turn = i + 1;
        history.push(Message::user(user.as_str()));
        let ids = loop {
            let messages: Vec<Message> = system.iter().chain(&history).cloned().collect();
            let ids = prompt_ids(vocab, template, &messages)?;
            if ids.len() <= budget {
                break ids;
            }
            if history.len() <= 1 {
                return Err(EvalError::MessageTooLong { turn, tokens: ids.len(), budget });
            }
            let before = dropped;
            history.drain(..2); // the oldest user message and its reply
            dropped += 1;
            if before == 0 {
                notes.push(format!(
                    "from turn {turn} on, the conversation no longer fits the model's context of {} tokens: the oldest exchanges were left out of the prompt",
                    model.config().context_length
                ));
            }
        };
        let r = reply_to(model, &mut cache, &ids, &gen, cancel)?;
        if r.stop_reason == StopReason::Cancelled || cancel.load(Ordering::Relaxed) {
            notes.push(format!("cancelled during turn {turn}; {} turns were scored", turns.len()));
            break;
        }
        let t = DriftTurn {
            turn,
            user: user.clone(),
            adherence: scorer.score(&r.text),
            reply: r.text.clone(),
            prompt_tokens: r.prompt_tokens,
            prefilled_tokens: r.prefilled_tokens,
            generated_tokens: r.generated_tokens,
            prefill_secs: r.prefill_secs,
            decode_secs: r.decode_secs,
            stop_reason: r.stop_reason,
            dropped_exchanges: dropped,
        };
        on_turn(&t);
        turns.push(t);
        history.push(Message::assistant(r.text));
    }
    Ok(DriftRun { label: opts.label.clone(), system_prompt: opts.system_prompt.clone(), system_prompt_tokens, turns, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_skip_blanks_and_comments() {
        assert_eq!(script_lines(DEFAULT_SCRIPT).len(), 30);
        assert_eq!(script_lines("# a comment\n\n  Hi there  \r\nBye\n"), ["Hi there", "Bye"]);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.txt");
        std::fs::write(&f, "# only a comment\n\n").unwrap();
        assert!(read_script(&f).unwrap_err().to_string().contains("no conversation lines"));
        assert!(read_script(&dir.path().join("missing.txt")).unwrap_err().to_string().contains("could not read"));
    }
}
