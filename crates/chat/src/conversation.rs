//! A conversation as it is saved: the user's messages and, for each, the reply of each side
//! that answered, with what the reply cost and how well it kept the persona's voice.

use serde::{Deserialize, Serialize};
use vocab::Message;

use crate::error::{ChatError, Result};

/// Who answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The model with the trained adapter, no system prompt: the persona lives in the weights.
    Adapter,
    /// The base model with the persona card as its system prompt.
    Prompted,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Adapter => "Your model (adapter)",
            Side::Prompted => "Base model + persona prompt",
        }
    }
}

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Ending {
    /// The model finished its turn.
    Finished,
    /// The reply reached the length limit.
    Length,
    /// The person pressed Stop: the reply is partial.
    Stopped,
    /// The conversation filled the model's context.
    ContextFull,
}

impl From<&engine::StopReason> for Ending {
    fn from(r: &engine::StopReason) -> Self {
        match r {
            engine::StopReason::Eos | engine::StopReason::StopString => Ending::Finished,
            engine::StopReason::MaxTokens => Ending::Length,
            engine::StopReason::Cancelled => Ending::Stopped,
            engine::StopReason::ContextFull => Ending::ContextFull,
        }
    }
}

/// How well a reply keeps the persona: the calibrated voice score and the persona's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// 0–100.
    pub score: f64,
    /// Persona rules the reply passed (greeting, sign-off, markers, no forbidden phrase)…
    pub rules_passed: usize,
    /// …out of this many checked (0 without a persona card).
    pub rules_checked: usize,
}

/// One side's reply to one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SideReply {
    pub side: Side,
    /// The reply exactly as it streamed (a stopped reply holds what arrived before Stop).
    pub text: String,
    pub ending: Ending,
    /// Tokens in the whole prompt (system prompt and history included).
    pub prompt_tokens: usize,
    /// Prompt tokens computed for this reply; the rest came from the cache of the previous one.
    pub prefilled_tokens: usize,
    pub prefill_secs: f64,
    pub generated_tokens: usize,
    pub decode_secs: f64,
    /// Generated tokens per second of decoding (0 when nothing was generated).
    pub tokens_per_sec: f64,
    /// None when the persona's voice could not be learned (see the session's scoring note).
    pub adherence: Option<Score>,
    /// Earlier exchanges left out of this prompt because the context was full.
    pub dropped_exchanges: usize,
    /// The adapter folder used (Adapter side only).
    pub adapter: Option<String>,
}

impl SideReply {
    /// The reply as it goes back into the history: trimmed.
    pub fn history_text(&self) -> &str {
        self.text.trim()
    }
}

/// One message from the person and the replies to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub user: String,
    /// Seconds since 1970, UTC.
    pub at: u64,
    pub replies: Vec<SideReply>,
    /// Why the reply failed, when it did (the message is kept).
    pub error: Option<String>,
}

impl Turn {
    pub fn reply(&self, side: Side) -> Option<&SideReply> {
        self.replies.iter().find(|r| r.side == side)
    }
}

/// Sampling as the Chat screen sets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// 0 is greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: usize,
    pub seed: u64,
    /// Both sides answer every message.
    pub side_by_side: bool,
}

/// The longest reply the settings accept, in tokens.
pub const MAX_REPLY_TOKENS: usize = 4096;

impl Default for Settings {
    fn default() -> Self {
        Settings { temperature: 0.7, top_p: 0.95, max_tokens: 256, seed: 42, side_by_side: false }
    }
}

impl Settings {
    /// Checks the settings (the UI's fields are free input).
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 || self.max_tokens > MAX_REPLY_TOKENS {
            return Err(ChatError::Sampling(format!("the reply length must be between 1 and {MAX_REPLY_TOKENS} tokens, got {}", self.max_tokens)));
        }
        if self.temperature > 5.0 {
            return Err(ChatError::Sampling(format!("temperature must be between 0 and 5, got {}", self.temperature)));
        }
        self.generate_options().sampling.validate().map_err(ChatError::Sampling)
    }

    pub fn generate_options(&self) -> engine::GenerateOptions {
        let sampling = engine::SamplingParams { temperature: self.temperature, top_p: self.top_p, seed: self.seed, ..Default::default() };
        engine::GenerateOptions { max_tokens: self.max_tokens, sampling, stop: vec![], stop_at_eos: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    /// The first message, shortened ("New conversation" before one).
    pub title: String,
    pub created: u64,
    pub updated: u64,
    #[serde(default)]
    pub settings: Settings,
    /// The persona prompt the Prompted side was last given.
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub turns: Vec<Turn>,
}

pub const UNTITLED: &str = "New conversation";
const TITLE_CHARS: usize = 60;

impl Conversation {
    pub fn new(id: String, now: u64, settings: Settings) -> Conversation {
        Conversation { id, title: UNTITLED.into(), created: now, updated: now, settings, system_prompt: None, turns: Vec::new() }
    }

    /// The messages `side` has seen so far: each earlier exchange it answered (a reply it gave
    /// nothing to, or that failed, is left out), oldest first.
    pub fn history(&self, side: Side) -> Vec<Message> {
        let mut out = Vec::new();
        for t in &self.turns {
            if let Some(r) = t.reply(side).filter(|r| !r.history_text().is_empty()) {
                out.push(Message::user(t.user.as_str()));
                out.push(Message::assistant(r.history_text()));
            }
        }
        out
    }

    /// Titles the conversation after its first message.
    pub fn title_from(&mut self, message: &str) {
        if self.title != UNTITLED {
            return;
        }
        let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
        self.title = if line.chars().count() > TITLE_CHARS {
            format!("{}…", line.chars().take(TITLE_CHARS - 1).collect::<String>().trim_end())
        } else {
            line
        };
    }

    /// Adherence per turn for `side` (None where it did not answer or was not scored).
    pub fn adherence_series(&self, side: Side) -> Vec<Option<f64>> {
        self.turns.iter().map(|t| t.reply(side).and_then(|r| r.adherence.as_ref()).map(|a| a.score)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(side: Side, text: &str) -> SideReply {
        SideReply {
            side,
            text: text.into(),
            ending: Ending::Finished,
            prompt_tokens: 1,
            prefilled_tokens: 1,
            prefill_secs: 0.0,
            generated_tokens: 1,
            decode_secs: 0.0,
            tokens_per_sec: 0.0,
            adherence: Some(Score { score: 50.0, rules_passed: 0, rules_checked: 0 }),
            dropped_exchanges: 0,
            adapter: None,
        }
    }

    #[test]
    fn each_side_sees_only_the_exchanges_it_answered() {
        let mut c = Conversation::new("x".into(), 0, Settings::default());
        c.turns.push(Turn { user: "one".into(), at: 0, replies: vec![reply(Side::Adapter, " a1 "), reply(Side::Prompted, "p1")], error: None });
        c.turns.push(Turn { user: "two".into(), at: 0, replies: vec![reply(Side::Adapter, "a2")], error: None });
        c.turns.push(Turn { user: "three".into(), at: 0, replies: vec![], error: Some("failed".into()) });
        c.turns.push(Turn { user: "four".into(), at: 0, replies: vec![reply(Side::Prompted, "  ")], error: None });
        let a = c.history(Side::Adapter);
        assert_eq!(a.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["one", "a1", "two", "a2"]);
        let p = c.history(Side::Prompted);
        assert_eq!(p.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["one", "p1"]);
        assert_eq!(c.adherence_series(Side::Prompted), [Some(50.0), None, None, Some(50.0)]);
    }

    #[test]
    fn the_title_is_the_first_message_shortened() {
        let mut c = Conversation::new("x".into(), 0, Settings::default());
        c.title_from("  Hello\nthere  ");
        assert_eq!(c.title, "Hello there");
        c.title_from("a second message does not rename it");
        assert_eq!(c.title, "Hello there");
        let mut c = Conversation::new("y".into(), 0, Settings::default());
        c.title_from(&"word ".repeat(40));
        assert!(c.title.ends_with('…') && c.title.chars().count() <= 60, "{}", c.title);
    }

    #[test]
    fn settings_are_checked() {
        assert!(Settings::default().validate().is_ok());
        let bad = |s: Settings| s.validate().unwrap_err().to_string();
        assert!(bad(Settings { max_tokens: 0, ..Default::default() }).contains("reply length"));
        assert!(bad(Settings { top_p: 0.0, ..Default::default() }).contains("top-p"));
        assert!(bad(Settings { temperature: -1.0, ..Default::default() }).contains("temperature"));
        assert!(bad(Settings { temperature: f32::NAN, ..Default::default() }).contains("temperature"));
        let json = serde_json::to_value(Settings::default()).unwrap();
        assert!(json["maxTokens"].is_u64() && json["sideBySide"].is_boolean());
    }
}
