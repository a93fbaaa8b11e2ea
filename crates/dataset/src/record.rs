//! Training records: what every reader produces and what `build` writes, one JSON object a line.

use serde::{Deserialize, Serialize};

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// Reads the role names found in the wild (`human`, `gpt`, `bot`, `model`…).
    pub fn parse(name: &str) -> Option<Role> {
        match name.trim().to_ascii_lowercase().as_str() {
            "system" | "developer" => Some(Role::System),
            "user" | "human" | "customer" | "client" | "question" | "prompt" | "input" => Some(Role::User),
            "assistant" | "gpt" | "bot" | "model" | "ai" | "chatgpt" | "agent" | "answer" | "response"
            | "output" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message { role, content: content.into() }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// What a record teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A conversation or an instruction with its answer.
    Chat,
    /// A sample of the owner's writing with no question (a document, an email that answers nothing).
    Style,
    /// A question answered with SQL, the schema in the system turn.
    Sql,
    /// General conversation mixed in against forgetting.
    Replay,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Style => "style",
            Kind::Sql => "sql",
            Kind::Replay => "replay",
        }
    }
}

/// Where a record came from: the file and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u64>,
}

/// One training example, in the shape `residency train` reads (it reads `messages`, ignores the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub messages: Vec<Message>,
    pub source: Source,
    /// Records of one group (a thread, a file) always land on the same side of the holdout split.
    pub group: String,
    pub kind: Kind,
}

impl Record {
    /// The assistant turns joined, the text the model learns to write.
    pub fn replies(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.role == Role::Assistant)
    }

    /// All text of the record, turns separated by blank lines.
    pub fn all_text(&self) -> String {
        let mut s = String::new();
        for m in &self.messages {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(&m.content);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_common_names() {
        assert_eq!(Role::parse("human"), Some(Role::User));
        assert_eq!(Role::parse(" GPT "), Some(Role::Assistant));
        assert_eq!(Role::parse("system"), Some(Role::System));
        assert_eq!(Role::parse("narrator"), None);
    }

    #[test]
    fn record_serialises_in_the_trainer_shape() {
        let r = Record {
            messages: vec![Message::user("Hi"), Message::assistant("Hello!")],
            source: Source { file: "a.jsonl".into(), line: Some(3) },
            group: "a.jsonl".into(),
            kind: Kind::Chat,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}],"source":{"file":"a.jsonl","line":3},"group":"a.jsonl","kind":"chat"}"#
        );
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }
}
