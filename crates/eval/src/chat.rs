//! One assistant turn through the engine: render the conversation with the chat template,
//! generate, and keep the numbers the token tax is made of.

use std::sync::atomic::AtomicBool;

use engine::{generate, GenerateOptions, KvCache, Model, StopReason};
use serde::Serialize;
use vocab::{ChatTemplate, Message, Vocab};

use crate::error::Result;

/// A generated reply and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    /// The reply, trimmed.
    pub text: String,
    /// Tokens in the whole prompt (system prompt and history included).
    pub prompt_tokens: usize,
    /// Prompt tokens actually computed; the rest was reused from the previous turn's cache.
    pub prefilled_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    pub stop_reason: StopReason,
}

/// The token ids of `messages` with the assistant's turn opened.
pub fn prompt_ids(vocab: &Vocab, template: &ChatTemplate, messages: &[Message]) -> Result<Vec<u32>> {
    Ok(template.render_for_model(vocab, messages, true)?.encode(vocab)?)
}

/// Generates the assistant's reply to `messages` (`ids` are their prompt ids). `cache` may
/// hold an earlier turn of the same conversation: its common prefix is reused.
pub fn reply_to(model: &Model, cache: &mut KvCache, ids: &[u32], opts: &GenerateOptions, cancel: &AtomicBool) -> Result<Reply> {
    let g = generate(model, cache, ids, opts, cancel, |_| {})?;
    Ok(Reply {
        text: g.text.trim().to_string(),
        prompt_tokens: g.prompt_tokens,
        prefilled_tokens: g.prefilled_tokens,
        generated_tokens: g.tokens.len(),
        prefill_secs: g.prefill_secs,
        decode_secs: g.decode_secs,
        stop_reason: g.stop_reason,
    })
}
