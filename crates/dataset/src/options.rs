//! Settings for reading and checking data, and the token counter the length checks use.

use crate::record::Message;

/// How to read and judge input.
#[derive(Debug, Clone)]
pub struct Options {
    /// The training sequence length in tokens: longer records are reported, documents are cut to it.
    pub seq_len: usize,
    /// Overrides the CSV column roles guessed from the header.
    pub columns: Option<ColumnMap>,
    /// The mailbox owner's addresses: their replies become assistant turns. Guessed when empty.
    pub owner_addresses: Vec<String>,
    /// Files read whole (JSON documents, YAML, HTML, single emails) larger than this are skipped with a finding.
    pub max_whole_file: u64,
    /// A single line (JSONL) or email larger than this is skipped with a finding.
    pub max_item: usize,
    /// MinHash similarity at or above which two records are near duplicates.
    pub near_duplicate_threshold: f64,
    /// Replies shorter than this many characters are flagged.
    pub min_reply_chars: usize,
    /// Stop walking after this many files (reported as a finding).
    pub max_files: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seq_len: 2048,
            columns: None,
            owner_addresses: Vec::new(),
            max_whole_file: 256 << 20,
            max_item: 32 << 20,
            near_duplicate_threshold: 0.8,
            min_reply_chars: 4,
            max_files: 1_000_000,
        }
    }
}

/// Which CSV columns hold which role, e.g. parsed from `user=question,assistant=answer,group=thread`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnMap {
    pub user: Option<String>,
    pub assistant: Option<String>,
    pub system: Option<String>,
    pub group: Option<String>,
    /// For text-to-SQL: the column holding the SQL (the answer).
    pub sql: Option<String>,
}

impl std::str::FromStr for ColumnMap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = ColumnMap::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((role, col)) = part.split_once('=') else {
                return Err(format!("`{part}` should look like role=column, e.g. user=question"));
            };
            let col = Some(col.trim().to_string());
            match role.trim().to_ascii_lowercase().as_str() {
                "user" | "question" | "prompt" => m.user = col,
                "assistant" | "answer" | "response" => m.assistant = col,
                "system" => m.system = col,
                "group" | "thread" => m.group = col,
                "sql" => m.sql = col,
                other => {
                    return Err(format!("unknown role `{other}`: use user, assistant, system, group or sql"))
                }
            }
        }
        if m.user.is_none() {
            return Err("say which column holds the user's side, e.g. user=question".into());
        }
        if m.assistant.is_none() && m.sql.is_none() {
            return Err("say which column holds the answer, e.g. assistant=answer (or sql=query)".into());
        }
        Ok(m)
    }
}

/// Counts the tokens a record takes once rendered for training.
pub trait TokenCounter: Send + Sync {
    fn count(&self, messages: &[Message]) -> usize;
    /// What is counting, for the report ("SmolLM2 tokenizer + ChatML template").
    fn describe(&self) -> String;
    /// True when the count is an approximation rather than the real tokenizer.
    fn is_estimate(&self) -> bool;
}

/// Roughly four characters a token plus a few tokens of template per turn: an estimate, labelled so.
#[derive(Debug, Clone, Copy, Default)]
pub struct CharEstimate;

impl TokenCounter for CharEstimate {
    fn count(&self, messages: &[Message]) -> usize {
        messages.iter().map(|m| m.content.chars().count().div_ceil(4) + 4).sum()
    }
    fn describe(&self) -> String {
        "estimate: 4 characters a token + 4 per turn (no tokenizer given)".into()
    }
    fn is_estimate(&self) -> bool {
        true
    }
}

/// A counter from a closure, e.g. a real tokenizer and chat template built by the caller.
pub struct FnCounter<F: Fn(&[Message]) -> usize + Send + Sync> {
    pub f: F,
    pub name: String,
}

impl<F: Fn(&[Message]) -> usize + Send + Sync> TokenCounter for FnCounter<F> {
    fn count(&self, messages: &[Message]) -> usize {
        (self.f)(messages)
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn is_estimate(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_map_parses_and_explains() {
        let m: ColumnMap = "user=Q, assistant=A ,group=thread".parse().unwrap();
        assert_eq!(m.user.as_deref(), Some("Q"));
        assert_eq!(m.assistant.as_deref(), Some("A"));
        assert_eq!(m.group.as_deref(), Some("thread"));
        assert!("assistant=A".parse::<ColumnMap>().unwrap_err().contains("user"));
        assert!("user=Q,boss=B".parse::<ColumnMap>().unwrap_err().contains("boss"));
    }

    #[test]
    fn estimate_counts_chars() {
        let n = CharEstimate.count(&[Message::user("12345678"), Message::assistant("")]);
        assert_eq!(n, 2 + 4 + 4);
    }
}
