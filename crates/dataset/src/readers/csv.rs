//! CSV/TSV: column roles guessed from the header (question/answer, prompt/response, input/output,
//! user/assistant…, or one row per turn with role and text columns), overridable with a [`ColumnMap`].

use std::io::Read;
use std::path::Path;

use super::Ctx;
use crate::finding::Finding;
use crate::options::ColumnMap;
use crate::record::{Kind, Message, Record, Role};

/// How a table's columns map to records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One exchange a row.
    Pairs { user: Vec<usize>, answer: usize, system: Option<usize>, group: Option<usize>, sql: bool, schema: Option<usize> },
    /// One turn a row: who speaks and what they say; rows of one conversation are consecutive.
    Turns { role: usize, content: usize, group: Option<usize> },
    /// One writing sample a row.
    Text { col: usize },
}

fn norm(h: &str) -> String {
    h.trim().trim_start_matches('\u{FEFF}').to_lowercase().chars().map(|c| if c.is_alphanumeric() { c } else { '_' }).collect()
}

fn find(headers: &[String], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| headers.iter().position(|h| h == n))
}

/// Guesses the layout from the (normalised) header names.
pub fn guess_layout(raw: &[String], over: Option<&ColumnMap>) -> Result<Layout, String> {
    let h: Vec<String> = raw.iter().map(|s| norm(s)).collect();
    let col = |name: &str| -> Result<usize, String> {
        let n = norm(name);
        h.iter().position(|x| *x == n).ok_or_else(|| format!("the column `{name}` is not in the header ({})", raw.join(", ")))
    };
    let group_names = ["thread", "thread_id", "conversation", "conversation_id", "session", "session_id", "ticket", "ticket_id", "dialog_id", "chat_id"];
    if let Some(m) = over {
        let user = col(m.user.as_deref().unwrap_or_default())?;
        let (answer, sql) = match (&m.sql, &m.assistant) {
            (Some(s), _) => (col(s)?, true),
            (None, Some(a)) => (col(a)?, false),
            (None, None) => return Err("the column override names no answer column".into()),
        };
        let system = m.system.as_deref().map(col).transpose()?;
        let group = m.group.as_deref().map(col).transpose()?;
        return Ok(Layout::Pairs { user: vec![user], answer, system, group, sql, schema: None });
    }
    let group = find(&h, &group_names);
    let system = find(&h, &["system", "system_prompt"]);
    // Text-to-SQL first: a question and a SQL column.
    if let (Some(q), Some(s)) = (find(&h, &["question", "nl", "utterance", "prompt", "request"]), find(&h, &["sql", "sql_query", "query", "gold_sql", "answer_sql"])) {
        if h[s] != "query" || find(&h, &["answer", "response"]).is_none() {
            let schema = find(&h, &["schema", "context", "ddl", "create_table"]);
            return Ok(Layout::Pairs { user: vec![q], answer: s, system, group, sql: true, schema });
        }
    }
    if let (Some(i), Some(o)) = (find(&h, &["instruction"]), find(&h, &["output", "response", "answer"])) {
        let mut user = vec![i];
        if let Some(inp) = find(&h, &["input", "context"]) {
            user.push(inp);
        }
        return Ok(Layout::Pairs { user, answer: o, system, group, sql: false, schema: None });
    }
    let user = find(&h, &["question", "prompt", "input", "user", "user_message", "customer", "customer_message", "human", "query", "request", "message", "q", "inquiry", "customer_question"]);
    let answer = find(&h, &["answer", "response", "output", "completion", "assistant", "assistant_message", "reply", "our_reply", "bot", "agent", "agent_reply", "a", "best_answer", "staff_reply"]);
    if let (Some(u), Some(a)) = (user, answer) {
        if u != a {
            return Ok(Layout::Pairs { user: vec![u], answer: a, system, group, sql: false, schema: None });
        }
    }
    let role = find(&h, &["role", "speaker", "from", "author", "sender", "who"]);
    let content = find(&h, &["content", "message", "text", "body", "utterance", "value", "msg"]);
    if let (Some(r), Some(c)) = (role, content) {
        return Ok(Layout::Turns { role: r, content: c, group });
    }
    if h.len() == 1 || (content.is_some() && user.is_none()) {
        return Ok(Layout::Text { col: content.unwrap_or(0) });
    }
    Err(format!(
        "could not tell which columns hold the question and the answer (header: {}); say it with --columns user=COLUMN,assistant=COLUMN",
        raw.join(", ")
    ))
}

/// Streams a delimited file into records.
pub fn read_csv(path: &Path, delimiter: u8, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let mut head = [0u8; 4096];
    let n = {
        let mut f = std::fs::File::open(path)?;
        read_up_to(&mut f, &mut head)?
    };
    // UTF-16 (Excel's "Unicode text") is transcoded whole; everything else streams.
    if crate::text::looks_utf16(&head[..n]) {
        let bytes = super::read_whole(path, ctx.opts.max_whole_file, "save it as UTF-8 CSV, which is read as a stream")?;
        let d = crate::text::decode_utf16_guess(&bytes);
        ctx.finding(Finding::info("not-utf8", format!("the file is in {}; converted to UTF-8", d.encoding)));
        let text = d.text.trim_start_matches('\u{FEFF}').to_string();
        return read_from(std::io::Cursor::new(text.into_bytes()), delimiter, ctx);
    }
    let f = std::fs::File::open(path)?;
    read_from(std::io::BufReader::with_capacity(64 << 10, f), delimiter, ctx)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// The CSV reader over any input (UTF-8 or a legacy charset, line by line).
pub fn read_from<R: Read>(r: R, delimiter: u8, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let mut rdr = ::csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(r);
    let mut bad_utf8 = Vec::new();
    let fallback = encoding_rs::WINDOWS_1252;
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => h.iter().map(|f| crate::text::decode_line(f, fallback).0).collect(),
        Err(e) => {
            ctx.finding(Finding::error("invalid-csv", format!("the header row could not be read: {e}")).at_line(Some(1)));
            return Ok(());
        }
    };
    let layout = match guess_layout(&headers, ctx.opts.columns.as_ref()) {
        Ok(l) => l,
        Err(why) => {
            ctx.finding(Finding::error("unknown-columns", why.clone()).at_line(Some(1)).fix("pass --columns user=COLUMN,assistant=COLUMN"));
            return Ok(());
        }
    };
    ctx.finding(Finding::info("columns", describe_layout(&layout, &headers)).at_line(Some(1)));
    let width = headers.len();
    let mut ragged = Vec::new();
    let mut conv: Option<Conversation> = None;
    let mut rec = ::csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line());
                ctx.finding(Finding::error("invalid-csv", format!("a row could not be read ({e}); reading stopped there, rows before it were kept")).at_line(line));
                break;
            }
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if rec.len() != width {
            ragged.push((line, rec.len()));
        }
        let field = |i: usize, bad: &mut Vec<u64>| -> Option<String> {
            rec.get(i).map(|b| {
                let (s, ok) = crate::text::decode_line(b, fallback);
                if !ok {
                    bad.push(line);
                }
                s.replace("\r\n", "\n")
            })
        };
        match &layout {
            Layout::Pairs { user, answer, system, group, sql, schema } => {
                let u: Vec<String> = user.iter().filter_map(|&i| field(i, &mut bad_utf8)).filter(|s| !s.trim().is_empty()).collect();
                let Some(a) = field(*answer, &mut bad_utf8) else {
                    ctx.finding(Finding::error("row-missing-fields", format!("line {line} has {} fields, the answer column `{}` is missing; the row was not used", rec.len(), headers[*answer])).at_line(Some(line)).fix("check the quoting on this row or the one before it"));
                    continue;
                };
                let mut messages = Vec::new();
                let sys = system.and_then(|i| field(i, &mut bad_utf8)).filter(|s| !s.trim().is_empty());
                let row_schema = schema.and_then(|i| field(i, &mut bad_utf8)).filter(|s| !s.trim().is_empty());
                if *sql {
                    match row_schema.or_else(|| ctx.schema.clone()) {
                        Some(s) => messages.push(Message::system(super::json::sql_system_prompt(&s))),
                        None => ctx.finding(Finding::warning("no-schema", format!("line {line}: no schema for this question/SQL pair")).at_line(Some(line)).fix("put the database (.sqlite) or its CREATE TABLE statements (.sql) in the same folder")),
                    }
                } else if let Some(s) = sys {
                    messages.push(Message::system(s));
                }
                messages.push(Message::user(u.join("\n\n")));
                messages.push(Message::assistant(a));
                let group = group.and_then(|i| field(i, &mut bad_utf8)).filter(|g| !g.trim().is_empty()).map(|g| format!("{}#{g}", ctx.file)).unwrap_or_else(|| format!("{}#{line}", ctx.file));
                let kind = if *sql { Kind::Sql } else { Kind::Chat };
                let r = Record { messages, source: ctx.source(Some(line)), group, kind };
                ctx.record(r);
            }
            Layout::Turns { role, content, group } => {
                let (Some(who), Some(text)) = (field(*role, &mut bad_utf8), field(*content, &mut bad_utf8)) else {
                    ctx.finding(Finding::error("row-missing-fields", format!("line {line} has {} fields, the role or text column is missing; the row was not used", rec.len())).at_line(Some(line)));
                    continue;
                };
                let g = group.and_then(|i| field(i, &mut bad_utf8)).unwrap_or_default();
                if conv.as_ref().is_some_and(|c| c.group != g) {
                    let done = conv.take().expect("checked");
                    done.flush(ctx);
                }
                conv.get_or_insert_with(|| Conversation { group: g, line, turns: Vec::new() }).turns.push((who, text));
            }
            Layout::Text { col } => {
                if let Some(t) = field(*col, &mut bad_utf8).filter(|t| !t.trim().is_empty()) {
                    let r = Record { messages: vec![Message::assistant(t)], source: ctx.source(Some(line)), group: format!("{}#{line}", ctx.file), kind: Kind::Style };
                    ctx.record(r);
                }
            }
        }
    }
    if let Some(c) = conv.take() {
        c.flush(ctx);
    }
    if !ragged.is_empty() {
        let shown: Vec<String> = ragged.iter().take(10).map(|(l, n)| format!("line {l}: {n} fields")).collect();
        ctx.finding(
            Finding::warning("ragged-rows", format!("{} row(s) do not have the header's {width} fields ({}{}); the named columns were read where present", ragged.len(), shown.join("; "), if ragged.len() > 10 { "; …" } else { "" }))
                .at_line(Some(ragged[0].0))
                .fix("a field with a comma or line break needs double quotes around it"),
        );
    }
    super::json::report_bad_utf8(ctx, &bad_utf8);
    Ok(())
}

fn describe_layout(l: &Layout, h: &[String]) -> String {
    let names = |v: &[usize]| v.iter().map(|&i| format!("`{}`", h[i])).collect::<Vec<_>>().join(" + ");
    match l {
        Layout::Pairs { user, answer, sql: true, .. } => format!("question column {}, SQL column `{}`", names(user), h[*answer]),
        Layout::Pairs { user, answer, group, .. } => format!(
            "user column {}, assistant column `{}`{}",
            names(user),
            h[*answer],
            group.map(|g| format!(", thread column `{}`", h[g])).unwrap_or_default()
        ),
        Layout::Turns { role, content, group } => format!(
            "one turn a row: speaker column `{}`, text column `{}`{}",
            h[*role],
            h[*content],
            group.map(|g| format!(", conversation column `{}`", h[g])).unwrap_or_else(|| " (no conversation column: the file is one conversation)".into())
        ),
        Layout::Text { col } => format!("one writing sample a row from column `{}`", h[*col]),
    }
}

/// Consecutive rows of one conversation, in the one-turn-a-row layout.
struct Conversation {
    group: String,
    line: u64,
    turns: Vec<(String, String)>,
}

impl Conversation {
    fn flush(self, ctx: &mut Ctx) {
        // Speakers named by role (user/assistant, customer/agent) map directly; other names are
        // assigned in order of appearance: the first to speak is the user.
        let mut names: Vec<String> = Vec::new();
        let mut messages: Vec<Message> = Vec::new();
        for (who, text) in self.turns {
            let role = Role::parse(&who).unwrap_or_else(|| {
                let k = who.trim().to_lowercase();
                if !names.contains(&k) {
                    names.push(k.clone());
                }
                if names.iter().position(|n| *n == k) == Some(0) { Role::User } else { Role::Assistant }
            });
            match messages.last_mut() {
                Some(last) if last.role == role => {
                    last.content.push_str("\n\n");
                    last.content.push_str(&text);
                }
                _ => messages.push(Message::new(role, text)),
            }
        }
        if names.len() > 2 {
            ctx.finding(Finding::warning("many-speakers", format!("conversation starting on line {} has speakers {}; the first is taken as the user, all others as the assistant", self.line, names.join(", "))).at_line(Some(self.line)).fix("name the roles user and assistant in the speaker column"));
        }
        let group = if self.group.is_empty() { ctx.file.clone() } else { format!("{}#{}", ctx.file, self.group) };
        let r = Record { messages, source: ctx.source(Some(self.line)), group, kind: Kind::Chat };
        ctx.record(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn guesses_roles_from_headers() {
        assert!(matches!(guess_layout(&hs("Question,Answer"), None), Ok(Layout::Pairs { answer: 1, sql: false, .. })));
        assert!(matches!(guess_layout(&hs("id,prompt,response"), None), Ok(Layout::Pairs { answer: 2, .. })));
        assert!(matches!(guess_layout(&hs("question,query"), None), Ok(Layout::Pairs { sql: true, .. })));
        assert!(matches!(guess_layout(&hs("instruction,input,output"), None), Ok(Layout::Pairs { ref user, .. }) if user.len() == 2));
        assert!(matches!(guess_layout(&hs("conversation_id,speaker,message"), None), Ok(Layout::Turns { role: 1, content: 2, group: Some(0) })));
        assert!(matches!(guess_layout(&hs("Customer Message,Our Reply,thread"), None), Ok(Layout::Pairs { group: Some(2), .. })));
        assert!(guess_layout(&hs("col1,col2"), None).unwrap_err().contains("--columns"));
        let m: ColumnMap = "user=col1,assistant=col2".parse().unwrap();
        assert!(matches!(guess_layout(&hs("col1,col2"), Some(&m)), Ok(Layout::Pairs { answer: 1, .. })));
        let bad: ColumnMap = "user=nope,assistant=col2".parse().unwrap();
        assert!(guess_layout(&hs("col1,col2"), Some(&bad)).unwrap_err().contains("nope"));
    }
}
