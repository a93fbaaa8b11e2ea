//! Conversations in the chatterbot corpus YAML shape: `conversations:` holding lists of turns,
//! alternating user and assistant.

use std::path::Path;

use serde_norway::Value;

use super::Ctx;
use crate::finding::Finding;
use crate::record::{Kind, Message, Record, Role};

/// One conversation: its line (when known) and its turns, or why it could not be read.
pub type Conversation = (Option<u64>, Result<Vec<String>, String>);

/// Parses chatterbot YAML text into conversations (each a list of turns) with their line numbers.
/// The error carries the line (when known) and the reason.
pub fn parse_chatterbot(text: &str) -> Result<Vec<Conversation>, (Option<u64>, String)> {
    let v: Value = serde_norway::from_str(text).map_err(|e| (e.location().map(|l| l.line() as u64), e.to_string()))?;
    let convs = match &v {
        Value::Mapping(m) => match m.get("conversations") {
            Some(Value::Sequence(s)) => s,
            Some(_) => return Err((None, "`conversations` is not a list".into())),
            None => return Err((None, "no `conversations:` list (the chatterbot shape)".into())),
        },
        _ => return Err((None, "the file is not a YAML mapping with a `conversations:` list".into())),
    };
    let lines = conversation_lines(text);
    let lines_ok = lines.len() == convs.len();
    Ok(convs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let line = if lines_ok { Some(lines[i]) } else { None };
            let turns = match c {
                Value::Sequence(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>(),
                other => Err(format!("conversation {} is a {}, not a list of turns", i + 1, kind(other))),
            };
            (line, turns)
        })
        .collect())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Mapping(_) => "mapping",
        Value::Sequence(_) => "list",
        Value::Null => "empty value",
        _ => "single value",
    }
}

fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("a turn is a {}, not text", kind(other))),
    }
}

/// Lines where each conversation starts (`- - ` entries below `conversations:`).
fn conversation_lines(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut inside = false;
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("conversations:") {
            inside = true;
            continue;
        }
        if inside {
            if !l.starts_with(' ') && !l.starts_with('-') && !l.trim().is_empty() && !l.starts_with('#') {
                inside = false;
                continue;
            }
            let t = l.trim_start();
            if t.starts_with("- -") || (t == "-" && l.starts_with('-')) || t.starts_with("- [") {
                out.push(i as u64 + 1);
            }
        }
    }
    out
}

/// Turns alternate, the first being the user's.
pub fn turns_to_messages(turns: Vec<String>) -> Vec<Message> {
    turns
        .into_iter()
        .enumerate()
        .map(|(i, t)| Message::new(if i % 2 == 0 { Role::User } else { Role::Assistant }, t))
        .collect()
}

pub fn read_yaml(path: &Path, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let bytes = super::read_whole(path, ctx.opts.max_whole_file, "split it into smaller files")?;
    let d = crate::text::decode(&bytes);
    match parse_chatterbot(&d.text) {
        Err((line, why)) => ctx.finding(
            Finding::error("invalid-yaml", format!("the file could not be read as chat YAML: {why}"))
                .at_line(line)
                .fix("the expected shape is `conversations:` followed by lists like `- - Hello` / `  - Hi there`"),
        ),
        Ok(convs) => {
            for (i, (line, turns)) in convs.into_iter().enumerate() {
                match turns {
                    Err(why) => ctx.finding(Finding::error("invalid-conversation", format!("{why}; it was not used")).at_line(line)),
                    Ok(t) if t.len() < 2 => ctx.finding(Finding::warning("single-turn", format!("conversation {} has only one turn, nothing answers it; it was not used", i + 1)).at_line(line).fix("add the reply below it")),
                    Ok(t) => {
                        let group = format!("{}#{}", ctx.file, i + 1);
                        let r = Record { messages: turns_to_messages(t), source: ctx.source(line), group, kind: Kind::Chat };
                        ctx.record(r);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatterbot_shape_with_lines() {
        let y = "categories:\n- greetings\nconversations:\n- - Hello\n  - Hi\n- - How are you?\n  - Good.\n  - Glad to hear.\n";
        let c = parse_chatterbot(y).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0, Some(4));
        assert_eq!(c[1].0, Some(6));
        assert_eq!(c[1].1.as_ref().unwrap().len(), 3);
        let m = turns_to_messages(c[1].1.clone().unwrap());
        assert_eq!(m[2].role, Role::User);
    }

    #[test]
    fn bad_yaml_reports_line() {
        let e = parse_chatterbot("conversations:\n- - a\n  - [unclosed\n").unwrap_err();
        assert!(e.0.is_some());
        assert!(parse_chatterbot("just: text\n").unwrap_err().1.contains("conversations"));
    }
}
