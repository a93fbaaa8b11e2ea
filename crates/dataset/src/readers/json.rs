//! JSON Lines and JSON documents in the common fine-tuning shapes: OpenAI `messages`, ShareGPT
//! (`from`/`value`), Alpaca (`instruction`/`input`/`output`), `prompt`/`completion`, `text`, and
//! text-to-SQL `question`/`sql`.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Ctx, Line, Lines};
use crate::finding::Finding;
use crate::record::{Kind, Message, Record, Role};

/// Streams a JSON Lines file: a bad line is reported with its number and the rest is kept.
pub fn read_jsonl(path: &Path, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let lines = Lines::open(path, ctx.opts.max_item)?;
    read_jsonl_lines(lines, ctx)
}

/// The JSON Lines reader over any buffered input.
pub fn read_jsonl_lines<R: std::io::BufRead>(mut lines: Lines<R>, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let mut bad_utf8 = Vec::new();
    let mut blank = 0usize;
    while let Some(line) = lines.next_line()? {
        let (n, bytes) = match line {
            Line::Text(n, b) => (n, b),
            Line::TooLong(n, len) => {
                ctx.finding(
                    Finding::error("line-too-long", format!("line {n} is {len} bytes long, over the {} byte limit for one record; it was skipped", ctx.opts.max_item))
                        .at_line(Some(n))
                        .fix("split this record, or check that the file really is JSON Lines"),
                );
                continue;
            }
        };
        let (text, ok) = crate::text::decode_line(&bytes, encoding_rs::WINDOWS_1252);
        if !ok {
            bad_utf8.push(n);
        }
        let t = text.trim().trim_start_matches('\u{FEFF}');
        if t.is_empty() {
            blank += 1;
            continue;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(v) => take_value(&v, Some(n), None, ctx),
            Err(e) => {
                let fix = json_fix_hint(t);
                ctx.finding(
                    Finding::error("invalid-json-line", format!("line {n} is not valid JSON ({e}); the line was skipped, the rest of the file was read"))
                        .at_line(Some(n))
                        .fix(fix),
                );
            }
        }
    }
    report_bad_utf8(ctx, &bad_utf8);
    if blank > 0 {
        ctx.finding(Finding::info("blank-lines", format!("{blank} blank line(s) ignored")));
    }
    Ok(())
}

pub(crate) fn report_bad_utf8(ctx: &mut Ctx, lines: &[u64]) {
    if lines.is_empty() {
        return;
    }
    let shown: Vec<String> = lines.iter().take(10).map(|n| n.to_string()).collect();
    ctx.finding(
        Finding::warning(
            "invalid-utf8",
            format!(
                "{} line(s) are not valid UTF-8 (mixed encodings; lines {}{}); they were read as Windows-1252",
                lines.len(),
                shown.join(", "),
                if lines.len() > 10 { ", …" } else { "" }
            ),
        )
        .at_line(lines.first().copied())
        .fix("save the file as UTF-8 and check the accented characters on those lines"),
    );
}

/// Reads a file holding one JSON document: an array of records, or an object with such an array.
pub fn read_json_document(path: &Path, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let bytes = super::read_whole(path, ctx.opts.max_whole_file, "convert it to JSON Lines (one record a line), which is read as a stream")?;
    let decoded = crate::text::decode(&bytes);
    if decoded.encoding != "UTF-8" {
        ctx.finding(Finding::info("not-utf8", format!("the file is in {}; converted to UTF-8", decoded.encoding)));
    }
    let text = decoded.text.trim_start_matches('\u{FEFF}');
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("trailing characters") => {
            // Several objects one after another: it is JSON Lines with a .json name.
            drop(bytes);
            ctx.finding(Finding::info("json-lines-in-json", "the file holds one JSON object per line; read as JSON Lines"));
            return read_jsonl(path, ctx);
        }
        Err(e) => {
            ctx.finding(
                Finding::error("invalid-json", format!("the file is not valid JSON: {e}; nothing could be read from it"))
                    .at_line(Some(e.line() as u64))
                    .fix(json_fix_hint(text)),
            );
            return Ok(());
        }
    };
    match &v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                take_value(item, None, Some(i), ctx);
            }
        }
        Value::Object(map) => {
            if shape_of(map).is_some() {
                take_value(&v, Some(1), None, ctx);
            } else if let Some((key, items)) = map.iter().find_map(|(k, v)| match v {
                Value::Array(a) if a.iter().any(|x| x.is_object()) => Some((k, a)),
                _ => None,
            }) {
                ctx.finding(Finding::info("records-under-key", format!("records read from the `{key}` array")));
                for (i, item) in items.iter().enumerate() {
                    take_value(item, None, Some(i), ctx);
                }
            } else {
                take_value(&v, Some(1), None, ctx);
            }
        }
        other => ctx.finding(
            Finding::error("unknown-record-shape", format!("the file holds a single JSON {}, not records", type_name(other)))
                .fix("use JSON Lines with one object per record, e.g. {\"messages\": [...]}"),
        ),
    }
    Ok(())
}

fn take_value(v: &Value, line: Option<u64>, item: Option<usize>, ctx: &mut Ctx) {
    let at = match (line, item) {
        (Some(n), _) => format!("line {n}"),
        (None, Some(i)) => format!("item {}", i + 1),
        _ => "the record".into(),
    };
    let group_default = match (line, item) {
        (Some(n), _) => format!("{}#{n}", ctx.file),
        (None, Some(i)) => format!("{}#item{}", ctx.file, i + 1),
        _ => ctx.file.clone(),
    };
    match record_from_value(v, &group_default, ctx) {
        Ok((mut r, notes)) => {
            r.source = ctx.source(line);
            for n in notes {
                ctx.finding(Finding::warning("record-note", format!("{at}: {n}")).at_line(line));
            }
            ctx.record(r);
        }
        Err(why) => ctx.finding(
            Finding::error("unknown-record-shape", format!("{at}: {why}; it was not used"))
                .at_line(line)
                .fix("use one of the supported shapes: messages, conversations (ShareGPT), instruction/output, prompt/completion, question/answer, question/sql or text"),
        ),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false value",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A hint for a JSON syntax error: the usual suspects are trailing commas and single quotes.
pub fn json_fix_hint(text: &str) -> String {
    if serde_json::from_str::<Value>(&strip_trailing_commas(text)).is_ok() {
        return "remove the trailing comma before the closing bracket".into();
    }
    if text.contains('\'') && !text.contains('"') {
        return "JSON needs double quotes around strings and keys, not single quotes".into();
    }
    "fix the JSON syntax on that line (a validator such as `jq .` points at the exact spot)".into()
}

/// Removes commas directly before `}` or `]` outside strings (the most common hand-edit slip).
pub fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Turns(&'static str),
    Alpaca,
    PromptCompletion(&'static str),
    Sql(&'static str),
    Pair(&'static str, &'static str),
    Text(&'static str),
}

fn shape_of(m: &Map<String, Value>) -> Option<Shape> {
    for k in ["messages", "conversations", "conversation", "dialog", "dialogue", "turns"] {
        if matches!(m.get(k), Some(Value::Array(_))) {
            return Some(Shape::Turns(k));
        }
    }
    let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
    if has("instruction") && (has("output") || has("response")) {
        return Some(Shape::Alpaca);
    }
    if has("prompt") {
        for k in ["completion", "response", "chosen"] {
            if has(k) {
                return Some(Shape::PromptCompletion(k));
            }
        }
    }
    if has("question") || has("nl") || has("utterance") {
        for k in ["sql", "query", "SQL", "sql_query", "gold_sql"] {
            if has(k) && m.get(k).is_some_and(Value::is_string) {
                return Some(Shape::Sql(k));
            }
        }
    }
    for (u, a) in [("question", "answer"), ("input", "output"), ("user", "assistant"), ("q", "a"), ("query", "response"), ("human", "bot"), ("customer", "reply")] {
        if has(u) && has(a) {
            return Some(Shape::Pair(u, a));
        }
    }
    for k in ["text", "content", "body"] {
        if m.get(k).is_some_and(Value::is_string) {
            return Some(Shape::Text(k));
        }
    }
    None
}

/// A string from a JSON value: strings as they are, content-part arrays joined, others as JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::Object(o) => o.get("text").or_else(|| o.get("content")).map(as_text).unwrap_or_default(),
                other => as_text(other),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| m.get(*k)).filter(|v| !v.is_null())
}

/// Turns one JSON record into a training record. `Err` says why it could not.
/// Returns warnings about parts that were read with a guess.
pub fn record_from_value(v: &Value, group_default: &str, ctx: &Ctx) -> Result<(Record, Vec<String>), String> {
    let Value::Object(m) = v else {
        return Err(format!("a JSON {} where a record object was expected", type_name(v)));
    };
    let shape = shape_of(m).ok_or_else(|| {
        let keys: Vec<&str> = m.keys().map(String::as_str).take(8).collect();
        if keys.is_empty() { "an empty object".to_string() } else { format!("no known record shape (fields: {})", keys.join(", ")) }
    })?;
    let mut notes = Vec::new();
    let mut messages = Vec::new();
    let mut kind = Kind::Chat;
    if let Some(sys) = str_field(m, &["system", "system_prompt"]) {
        let s = as_text(sys);
        if !s.trim().is_empty() {
            messages.push(Message::system(s));
        }
    }
    match shape {
        Shape::Turns(key) => {
            let Some(Value::Array(turns)) = m.get(key) else { unreachable!("shape_of checked the array") };
            if turns.is_empty() {
                return Err(format!("`{key}` is empty"));
            }
            for (i, t) in turns.iter().enumerate() {
                let Value::Object(t) = t else {
                    return Err(format!("turn {} of `{key}` is a {}, not an object", i + 1, type_name(t)));
                };
                let role_v = str_field(t, &["role", "from", "speaker", "author"]);
                let content_v = str_field(t, &["content", "value", "text", "message"]);
                let Some(role_v) = role_v else {
                    return Err(format!("turn {} has no `role` (or ShareGPT `from`)", i + 1));
                };
                let role_name = as_text(role_v);
                let role = match Role::parse(&role_name) {
                    Some(r) => r,
                    None if role_name == "tool" || role_name == "function" || role_name == "ipython" => {
                        notes.push(format!("turn {} is a `{role_name}` turn, kept as a user turn", i + 1));
                        Role::User
                    }
                    None => return Err(format!("turn {} has the unknown role `{role_name}`", i + 1)),
                };
                let content = content_v.map(as_text).unwrap_or_default();
                if content_v.is_none() && t.get("tool_calls").is_some() {
                    messages.push(Message::new(role, serde_json::to_string(&t["tool_calls"]).unwrap_or_default()));
                    continue;
                }
                messages.push(Message::new(role, content));
            }
        }
        Shape::Alpaca => {
            let instr = as_text(&m["instruction"]);
            let input = str_field(m, &["input", "context"]).map(as_text).unwrap_or_default();
            let user = if input.trim().is_empty() { instr } else { format!("{instr}\n\n{input}") };
            messages.push(Message::user(user));
            messages.push(Message::assistant(as_text(str_field(m, &["output", "response"]).unwrap_or(&Value::Null))));
        }
        Shape::PromptCompletion(k) => {
            if k == "chosen" {
                notes.push("preference pair: the `chosen` answer was used, `rejected` ignored".into());
            }
            messages.push(Message::user(as_text(&m["prompt"])));
            messages.push(Message::assistant(as_text(&m[k])));
        }
        Shape::Sql(k) => {
            kind = Kind::Sql;
            let q = as_text(str_field(m, &["question", "nl", "utterance"]).unwrap_or(&Value::Null));
            let schema = str_field(m, &["schema", "context", "create_table", "ddl"]).map(as_text).or_else(|| ctx.schema.clone());
            match schema {
                Some(s) if !s.trim().is_empty() => {
                    if messages.iter().all(|m| m.role != Role::System) {
                        messages.insert(0, Message::system(sql_system_prompt(&s)));
                    }
                }
                _ => notes.push("no schema found for this question/SQL pair (put a .sql file or SQLite database in the same folder)".into()),
            }
            messages.push(Message::user(q));
            messages.push(Message::assistant(as_text(&m[k])));
        }
        Shape::Pair(u, a) => {
            messages.push(Message::user(as_text(&m[u])));
            messages.push(Message::assistant(as_text(&m[a])));
        }
        Shape::Text(k) => {
            kind = Kind::Style;
            messages.push(Message::assistant(as_text(&m[k])));
        }
    }
    for msg in &mut messages {
        if msg.content.contains('\r') {
            msg.content = msg.content.replace("\r\n", "\n");
        }
    }
    let group = str_field(m, &["thread", "thread_id", "conversation_id", "session_id", "group", "dialog_id", "chat_id"])
        .map(|g| format!("{}#{}", ctx.file, as_text(g)))
        .unwrap_or_else(|| group_default.to_string());
    Ok((Record { messages, source: ctx.source(None), group, kind }, notes))
}

/// The system turn of a text-to-SQL record.
pub fn sql_system_prompt(schema: &str) -> String {
    format!("Answer with one SQL query for this database schema:\n\n{}", schema.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{CharEstimate, Options};

    fn one(v: &str) -> Result<Record, String> {
        let opts = Options::default();
        let mut sink = |_r: Record| {};
        let ctx = Ctx::new("f.jsonl".into(), &opts, &CharEstimate, None, &mut sink);
        record_from_value(&serde_json::from_str(v).unwrap(), "g", &ctx).map(|x| x.0)
    }

    #[test]
    fn all_shapes() {
        let r = one(r#"{"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Hello"}]}]}"#).unwrap();
        assert_eq!(r.messages.len(), 3);
        assert_eq!(r.messages[2], Message::assistant("Hello"));
        let r = one(r#"{"conversations":[{"from":"human","value":"Q"},{"from":"gpt","value":"A"}]}"#).unwrap();
        assert_eq!(r.messages, vec![Message::user("Q"), Message::assistant("A")]);
        let r = one(r#"{"instruction":"Translate","input":"chat","output":"cat"}"#).unwrap();
        assert_eq!(r.messages, vec![Message::user("Translate\n\nchat"), Message::assistant("cat")]);
        let r = one(r#"{"prompt":"P","completion":"C"}"#).unwrap();
        assert_eq!(r.messages[1], Message::assistant("C"));
        let r = one(r#"{"text":"Our beans are roasted on Tuesdays."}"#).unwrap();
        assert_eq!(r.kind, Kind::Style);
        let r = one(r#"{"question":"How many orders?","sql":"SELECT count(*) FROM orders","schema":"CREATE TABLE orders(id int)"}"#).unwrap();
        assert_eq!(r.kind, Kind::Sql);
        assert!(r.messages[0].content.contains("CREATE TABLE orders"));
        let r = one(r#"{"question":"Q?","answer":"A.","thread_id":"t7"}"#).unwrap();
        assert_eq!(r.group, "f.jsonl#t7");
    }

    #[test]
    fn unknown_shapes_explain() {
        let e = one(r#"{"foo":1,"bar":2}"#).unwrap_err();
        assert!(e.contains("foo") && e.contains("bar"), "{e}");
        assert!(one(r#"[1,2]"#).unwrap_err().contains("array"));
        assert!(one(r#"{"messages":[{"role":"wizard","content":"x"}]}"#).unwrap_err().contains("wizard"));
        assert!(one(r#"{"messages":[]}"#).unwrap_err().contains("empty"));
    }

    #[test]
    fn trailing_comma_hint() {
        assert_eq!(strip_trailing_commas(r#"{"a":[1,2,],"b":"x,]",}"#), r#"{"a":[1,2],"b":"x,]"}"#);
        assert!(json_fix_hint(r#"{"a":1,}"#).contains("trailing comma"));
    }
}
