//! The generation loop: prefill (reusing the cached prefix), then one token at a
//! time, streamed to a callback, until EOS, a stop string, the token limit, or a
//! cancel flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::layers::KvCache;
use crate::model::Model;
use crate::sampling::{Sampler, SamplingParams};

/// Prompts are fed in chunks of this many tokens to bound memory.
const PREFILL_CHUNK: usize = 512;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Generation stops before any of these strings; they are not returned.
    pub stop: Vec<String>,
    /// Stop at the model's end-of-sequence / end-of-turn tokens.
    pub stop_at_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_tokens: 256, sampling: SamplingParams::default(), stop: Vec::new(), stop_at_eos: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    StopString,
    MaxTokens,
    Cancelled,
    ContextFull,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    /// Prompt tokens actually computed (the rest came from the cache).
    pub prefilled_tokens: usize,
    pub stop_reason: StopReason,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

/// Runs `prompt` through `model` and samples a continuation. `on_text` receives
/// the text as it is produced, in order, never splitting a UTF-8 character and
/// never showing part of a stop string.
pub fn generate(
    model: &Model,
    cache: &mut KvCache,
    prompt: &[u32],
    opts: &GenerateOptions,
    cancel: &AtomicBool,
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    let t0 = Instant::now();
    // Reuse the longest cached prefix; at least one token must run to give logits.
    let common = cache.tokens().iter().zip(prompt).take_while(|(a, b)| a == b).count();
    let keep = common.min(prompt.len().saturating_sub(1));
    cache.truncate(keep)?;
    let mut logits = Vec::new();
    for chunk in prompt[keep..].chunks(PREFILL_CHUNK) {
        if cancel.load(Ordering::Relaxed) {
            return Ok(done(String::new(), vec![], prompt.len(), prompt.len() - keep, StopReason::Cancelled, t0, t0));
        }
        logits = model.next_logits(chunk, cache)?;
    }
    let t1 = Instant::now();

    let mut sampler = Sampler::new(opts.sampling.clone());
    let mut history: Vec<u32> = prompt.to_vec();
    let mut tokens = Vec::new();
    let mut decoder = vocab::StreamDecoder::new(&model.vocab);
    let mut text = String::new();
    let mut emitted = 0usize;
    let max_ctx = model.config().context_length;
    let mut reason = StopReason::MaxTokens;
    while tokens.len() < opts.max_tokens {
        if cancel.load(Ordering::Relaxed) {
            reason = StopReason::Cancelled;
            break;
        }
        let next = sampler.sample(&logits, &history);
        if opts.stop_at_eos && model.vocab.is_eos(next) {
            reason = StopReason::Eos;
            break;
        }
        tokens.push(next);
        history.push(next);
        if let Some(piece) = decoder.push(next).map_err(|e| crate::EngineError::Other(e.to_string()))? {
            text.push_str(&piece);
        }
        if let Some(at) = find_stop(&text, &opts.stop) {
            text.truncate(at);
            reason = StopReason::StopString;
            break;
        }
        let safe = text.len() - held_back(&text, &opts.stop);
        if safe > emitted {
            on_text(&text[emitted..safe]);
            emitted = safe;
        }
        if tokens.len() >= opts.max_tokens {
            break;
        }
        if cache.len() + 1 > max_ctx {
            reason = StopReason::ContextFull;
            break;
        }
        logits = model.next_logits(&[next], cache)?;
    }
    if reason != StopReason::StopString {
        if let Some(rest) = decoder.flush() {
            text.push_str(&rest);
        }
    }
    if text.len() > emitted {
        on_text(&text[emitted..]);
    }
    Ok(done(text, tokens, prompt.len(), prompt.len() - keep, reason, t0, t1))
}

fn done(text: String, tokens: Vec<u32>, prompt_tokens: usize, prefilled: usize, stop_reason: StopReason, t0: Instant, t1: Instant) -> Generation {
    Generation {
        text,
        tokens,
        prompt_tokens,
        prefilled_tokens: prefilled,
        stop_reason,
        prefill_secs: (t1 - t0).as_secs_f64(),
        decode_secs: t1.elapsed().as_secs_f64(),
    }
}

/// Byte offset of the first stop string in `text`.
fn find_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min()
}

/// How many trailing bytes of `text` could be the start of a stop string, so must
/// not be shown yet. Always ends on a character boundary.
fn held_back(text: &str, stops: &[String]) -> usize {
    let mut hold = 0;
    for s in stops.iter().filter(|s| !s.is_empty()) {
        // Proper prefixes only: a whole stop string in `text` is found by `find_stop`.
        for (i, _) in s.char_indices().skip(1) {
            if text.ends_with(&s[..i]) {
                hold = hold.max(i);
            }
        }
    }
    hold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_found_and_held_back() {
        let stops = vec!["\nUser:".to_string(), "###".to_string()];
        assert_eq!(find_stop("hello\nUser: hi", &stops), Some(5));
        assert_eq!(find_stop("a ### b \nUser:", &stops), Some(2));
        assert_eq!(held_back("hello\nUs", &stops), 3);
        assert_eq!(held_back("hello #", &stops), 1);
        assert_eq!(held_back("hello", &stops), 0);
        assert_eq!(held_back("héllo", &["é!".into()]), 0);
        assert_eq!(held_back("hé", &["é!".into()]), "é".len());
    }
}
