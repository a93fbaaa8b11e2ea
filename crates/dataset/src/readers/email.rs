//! Email: `.eml` files and `.mbox` mailboxes (MIME, quoted-printable, base64, charsets, HTML).
//!
//! Two passes keep memory bounded however large a mailbox is: the first streams every file and
//! keeps only an index (ids, parents, senders, byte ranges); the second re-reads one message (and
//! its parent) at a time. A reply by the mailbox owner becomes an assistant turn with the message
//! it answers as the user turn; the owner's emails that answer nothing become writing samples.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, PartType};

use super::{Line, Lines};
use crate::finding::Finding;
use crate::options::Options;
use crate::record::{Kind, Message, Record, Source};

/// Where one message lives and the headers that thread it, compact (a mailbox can hold millions):
/// message ids are kept as 64-bit hashes, senders as indexes into [`MailIndex::senders`].
#[derive(Debug, Clone)]
pub struct MailRef {
    pub file: u32,
    pub offset: u64,
    pub len: u64,
    /// 1-based line of the message's first line in its file.
    pub line: u64,
    /// Hash of the Message-ID (0: none).
    pub id: u64,
    /// Hash of the Message-ID it answers (0: none).
    pub parent: u64,
    pub from: u32,
    pub too_large: bool,
    pub mbox: bool,
}

/// Every email of the inspected inputs, indexed without their bodies.
#[derive(Debug, Default)]
pub struct MailIndex {
    pub files: Vec<(PathBuf, String)>,
    pub msgs: Vec<MailRef>,
    pub findings: Vec<Finding>,
    /// Sender addresses (lower case); `MailRef::from` indexes this.
    pub senders: Vec<String>,
    sender_ids: HashMap<String, u32>,
}

fn id_hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.trim().trim_matches(|c| c == '<' || c == '>').as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

const MAX_HEADER: usize = 256 << 10;

impl MailIndex {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Indexes one `.eml` file.
    pub fn add_eml(&mut self, path: &Path, display: &str, opts: &Options) -> std::io::Result<()> {
        let file = self.files.len();
        self.files.push((path.to_path_buf(), display.to_string()));
        let f = File::open(path)?;
        let size = f.metadata()?.len();
        let mut head = Vec::new();
        f.take(MAX_HEADER as u64).read_to_end(&mut head)?;
        let end = header_end(&head).unwrap_or(head.len());
        let (mut r, from) = headers_ref(&head[..end], file as u32, 0, size, 1, false);
        r.from = self.sender(from);
        r.too_large = size > opts.max_item as u64;
        self.msgs.push(r);
        Ok(())
    }

    /// Indexes a mailbox, streaming it line by line.
    pub fn add_mbox(&mut self, path: &Path, display: &str, opts: &Options) -> std::io::Result<()> {
        let lines = Lines::open(path, MAX_HEADER)?;
        self.add_mbox_lines(path, display, opts, lines)
    }

    /// Indexes a mailbox from any buffered input (`path` is where the second pass re-reads it).
    pub fn add_mbox_lines<R: std::io::BufRead>(&mut self, path: &Path, display: &str, opts: &Options, mut lines: Lines<R>) -> std::io::Result<()> {
        let file = self.files.len();
        self.files.push((path.to_path_buf(), display.to_string()));
        let mut cur: Option<(u64, u64, Vec<u8>, bool)> = None; // offset, line, headers, headers done
        let mut prev_blank = true;
        let mut before_first = 0u64;
        loop {
            let at = lines.offset();
            let Some(l) = lines.next_line()? else {
                if let Some((off, line, head, _)) = cur.take() {
                    self.push_mbox(file, off, at - off, line, &head, opts);
                }
                break;
            };
            let (n, bytes) = match l {
                Line::Text(n, b) => (n, b),
                Line::TooLong(_, _) => {
                    prev_blank = false;
                    continue;
                }
            };
            if prev_blank && bytes.starts_with(b"From ") {
                if let Some((off, line, head, _)) = cur.take() {
                    self.push_mbox(file, off, at - off, line, &head, opts);
                }
                cur = Some((lines.offset(), n + 1, Vec::new(), false));
                prev_blank = false;
                continue;
            }
            prev_blank = bytes.is_empty();
            match cur.as_mut() {
                Some((_, _, head, done)) if !*done => {
                    if bytes.is_empty() {
                        *done = true;
                    } else if head.len() + bytes.len() < MAX_HEADER {
                        head.extend_from_slice(&bytes);
                        head.push(b'\n');
                    }
                }
                Some(_) => {}
                None => {
                    if !bytes.is_empty() {
                        before_first += 1;
                    }
                }
            }
        }
        if before_first > 0 {
            self.findings.push(
                Finding::warning("mbox-preamble", format!("{before_first} line(s) before the first `From ` separator are not part of any email and were ignored"))
                    .in_file(display)
                    .at_line(Some(1)),
            );
        }
        if self.msgs.last().is_none_or(|m| m.file as usize != file) {
            self.findings.push(
                Finding::error("no-emails", "no email found: a mailbox starts each email with a `From ` line")
                    .in_file(display)
                    .fix("export the mailbox again as .mbox, or save the emails as .eml files"),
            );
        }
        Ok(())
    }

    fn push_mbox(&mut self, file: usize, offset: u64, len: u64, line: u64, head: &[u8], opts: &Options) {
        let (mut r, from) = headers_ref(head, file as u32, offset, len, line, true);
        r.from = self.sender(from);
        r.too_large = len > opts.max_item as u64;
        self.msgs.push(r);
    }

    fn sender(&mut self, from: String) -> u32 {
        if let Some(&i) = self.sender_ids.get(&from) {
            return i;
        }
        let i = self.senders.len() as u32;
        self.senders.push(from.clone());
        self.sender_ids.insert(from, i);
        i
    }

    /// The mailbox owner: given, or the sender of the most replies to messages in the data.
    pub fn owners(&self, opts: &Options) -> Vec<String> {
        if !opts.owner_addresses.is_empty() {
            return opts.owner_addresses.iter().map(|a| a.trim().to_lowercase()).collect();
        }
        let ids = self.by_id();
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for m in &self.msgs {
            if m.parent != 0 && ids.contains_key(&m.parent) && !self.senders[m.from as usize].is_empty() {
                *counts.entry(m.from).or_default() += 1;
            }
        }
        let mut v: Vec<(&str, usize)> = counts.into_iter().map(|(k, n)| (self.senders[k as usize].as_str(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.first().map(|(a, _)| vec![a.to_string()]).unwrap_or_default()
    }

    fn by_id(&self) -> HashMap<u64, u32> {
        let mut ids = HashMap::with_capacity(self.msgs.len());
        for (i, m) in self.msgs.iter().enumerate() {
            if m.id != 0 {
                ids.entry(m.id).or_insert(i as u32);
            }
        }
        ids
    }

    /// Second pass: parses each message (and the one it answers) and emits records.
    /// Returns the number of records per file.
    pub fn emit(&self, opts: &Options, sink: &mut dyn FnMut(Record), findings: &mut Vec<Finding>) -> Vec<usize> {
        let mut per_file = vec![0usize; self.files.len()];
        findings.extend(self.findings.iter().cloned());
        let owners = self.owners(opts);
        if !owners.is_empty() && opts.owner_addresses.is_empty() && !self.msgs.is_empty() {
            findings.push(Finding::info("email-owner", format!("replies from {} are taken as yours (the assistant side)", owners.join(", "))).fix("if that is wrong, name your address with --owner"));
        }
        let ids = self.by_id();
        let owner_ids: Vec<u32> = owners.iter().filter_map(|o| self.sender_ids.get(o).copied()).collect();
        let is_owner_id = |f: u32| owner_ids.contains(&f);
        let replied: std::collections::HashSet<u64> = self.msgs.iter().filter(|m| is_owner_id(m.from) && m.parent != 0).map(|m| m.parent).collect();
        let mut reader = MailReader::default();
        let mut unanswered: HashMap<usize, Vec<u64>> = HashMap::new();
        for (i, m) in self.msgs.iter().enumerate() {
            let (_, display) = &self.files[m.file as usize];
            let at = |f: Finding| f.in_file(display.clone()).at_line(Some(m.line));
            if m.too_large {
                findings.push(at(Finding::error("email-too-large", format!("the email on line {} is {} bytes, over the {} byte limit; it was skipped", m.line, m.len, opts.max_item)).fix("remove large attachments before exporting")));
                continue;
            }
            let is_owner = owners.is_empty() || is_owner_id(m.from);
            if !is_owner {
                if m.id == 0 || !replied.contains(&m.id) {
                    unanswered.entry(m.file as usize).or_default().push(m.line);
                }
                continue;
            }
            let body = match reader.body(self, i) {
                Ok((_, b)) => b,
                Err(why) => {
                    findings.push(at(Finding::error("invalid-email", format!("the email on line {} could not be read: {why}", m.line))));
                    continue;
                }
            };
            if body.trim().is_empty() {
                findings.push(at(Finding::warning("empty-email", format!("the email on line {} has no text once quotes and signature are removed", m.line))));
                continue;
            }
            let parent = (m.parent != 0).then(|| ids.get(&m.parent).map(|&p| p as usize)).flatten().filter(|&p| p != i);
            let group = format!("email:{}", self.root_of(i, &ids));
            let source = Source { file: display.clone(), line: Some(m.line) };
            let parent_body = match parent {
                Some(p) if owners.is_empty() || !is_owner_id(self.msgs[p].from) => match reader.body(self, p) {
                    Ok((subject, b)) if !b.trim().is_empty() => Some(with_subject(&subject, b)),
                    _ => None,
                },
                _ => None,
            };
            let record = match parent_body {
                Some(question) => Record { messages: vec![Message::user(question), Message::assistant(body)], source, group, kind: Kind::Chat },
                None => {
                    if m.parent != 0 && parent.is_none() {
                        findings.push(at(Finding::info("reply-without-parent", format!("the email on line {} answers a message that is not in the data; kept as a writing sample", m.line)).fix("add the customer's email to the folder to make it a question/answer pair")));
                    }
                    Record { messages: vec![Message::assistant(body)], source, group, kind: Kind::Style }
                }
            };
            per_file[m.file as usize] += 1;
            sink(record);
        }
        for (file, lines) in unanswered {
            let shown: Vec<String> = lines.iter().take(8).map(|l| l.to_string()).collect();
            findings.push(
                Finding::info("unanswered-email", format!("{} email(s) from others with no reply from you in the data (lines {}{}); they are not used on their own", lines.len(), shown.join(", "), if lines.len() > 8 { ", …" } else { "" }))
                    .in_file(self.files[file].1.clone())
                    .at_line(lines.first().copied()),
            );
        }
        per_file
    }

    /// The thread a message belongs to: the hash of its oldest known ancestor's id.
    fn root_of(&self, mut i: usize, ids: &HashMap<u64, u32>) -> String {
        for _ in 0..200 {
            match ids.get(&self.msgs[i].parent) {
                Some(&p) if p as usize != i && self.msgs[i].parent != 0 => i = p as usize,
                _ => break,
            }
        }
        let m = &self.msgs[i];
        match (m.id, m.parent) {
            (0, 0) => format!("{}:{}", self.files[m.file as usize].1, m.line),
            (0, p) => format!("{p:016x}"),
            (id, _) => format!("{id:016x}"),
        }
    }
}

fn with_subject(subject: &str, body: String) -> String {
    let s = subject.trim();
    let lower = s.to_lowercase();
    if s.is_empty() || body.contains(s) || lower.starts_with("re:") && s.len() < 5 {
        body
    } else {
        format!("Subject: {s}\n\n{body}")
    }
}

fn header_end(b: &[u8]) -> Option<usize> {
    let a = b.windows(2).position(|w| w == b"\n\n").map(|p| p + 1);
    let c = b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 2);
    match (a, c) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn headers_ref(head: &[u8], file: u32, offset: u64, len: u64, line: u64, mbox: bool) -> (MailRef, String) {
    let mut buf = head.to_vec();
    buf.extend_from_slice(b"\n\n");
    let parser = MessageParser::default();
    let mut r = MailRef { file, offset, len, line, id: 0, parent: 0, from: 0, too_large: false, mbox };
    let mut from = String::new();
    if let Some(msg) = parser.parse_headers(&buf) {
        r.id = msg.message_id().map(id_hash).unwrap_or(0);
        let irt = msg.in_reply_to();
        let parent = irt
            .as_text_list()
            .and_then(|l| l.first().map(|s| s.to_string()))
            .or_else(|| irt.as_text().map(str::to_string))
            .or_else(|| msg.references().as_text_list().and_then(|l| l.last().map(|s| s.to_string())))
            .or_else(|| msg.references().as_text().map(str::to_string));
        r.parent = parent.as_deref().map(id_hash).unwrap_or(0);
        from = msg.from().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("").to_lowercase();
    }
    (r, from)
}

/// Reads message bodies, keeping one open file at a time.
#[derive(Default)]
struct MailReader {
    open: Option<(usize, File)>,
}

impl MailReader {
    /// The subject and the cleaned text of message `i`.
    fn body(&mut self, idx: &MailIndex, i: usize) -> Result<(String, String), String> {
        let m = &idx.msgs[i];
        let file = m.file as usize;
        if self.open.as_ref().is_none_or(|(f, _)| *f != file) {
            let f = File::open(&idx.files[file].0).map_err(|e| e.to_string())?;
            self.open = Some((file, f));
        }
        let (_, f) = self.open.as_mut().expect("opened above");
        f.seek(SeekFrom::Start(m.offset)).map_err(|e| e.to_string())?;
        let mut raw = Vec::with_capacity(m.len as usize);
        f.take(m.len).read_to_end(&mut raw).map_err(|e| e.to_string())?;
        if m.mbox {
            raw = unescape_from(&raw);
        }
        let msg = MessageParser::default().parse(&raw[..]).ok_or("it is not a valid email")?;
        let subject = msg.subject().unwrap_or("").to_string();
        Ok((subject, clean_reply(&text_of(&msg))))
    }
}

/// mboxrd escapes body lines starting with `From ` as `>From `.
fn unescape_from(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at_line_start = true;
    let mut i = 0;
    while i < raw.len() {
        if at_line_start && raw[i] == b'>' {
            let rest = &raw[i..];
            let gt = rest.iter().take_while(|&&b| b == b'>').count();
            if rest[gt..].starts_with(b"From ") {
                i += 1;
                at_line_start = false;
                continue;
            }
        }
        at_line_start = raw[i] == b'\n';
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// The readable text of an email: the plain-text part, or the HTML part turned into text.
pub fn message_text(raw: &[u8]) -> Option<String> {
    let msg = MessageParser::default().parse(raw)?;
    Some(text_of(&msg))
}

fn text_of(msg: &mail_parser::Message) -> String {
    let from_part = |body: &PartType| match body {
        PartType::Text(t) => Some(t.to_string()),
        PartType::Html(h) => Some(crate::text::html_to_text(h)),
        _ => None,
    };
    msg.text_part(0)
        .and_then(|p| from_part(&p.body))
        .or_else(|| msg.html_part(0).and_then(|p| from_part(&p.body)))
        .unwrap_or_default()
}

/// Removes the quoted message a reply carries below it, quoted lines and the signature.
pub fn clean_reply(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        let t = l.trim();
        let next = lines.get(i + 1).map(|s| s.trim()).unwrap_or("");
        if is_quote_header(t) || (t.starts_with("On ") && !t.ends_with(':') && next.ends_with("wrote:") && t.len() + next.len() < 300) {
            break;
        }
        if t.starts_with("From:") && lines[i + 1..].iter().take(4).any(|n| {
            let n = n.trim();
            n.starts_with("Sent:") || n.starts_with("Date:") || n.starts_with("To:") || n.starts_with("Subject:")
        }) {
            break;
        }
        if l == "-- " || l == "--" || t == "—" || is_device_footer(t) {
            break;
        }
        if t.starts_with('>') {
            i += 1;
            continue;
        }
        out.push(l);
        i += 1;
    }
    crate::text::tidy(&out.join("\n"))
}

fn is_quote_header(t: &str) -> bool {
    let lower = t.to_lowercase();
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("le ") && lower.ends_with("a écrit :"))
        || (lower.starts_with("am ") && lower.contains("schrieb"))
        || (lower.starts_with("el ") && lower.ends_with("escribió:"))
        || (lower.starts_with("-----") && lower.contains("original message"))
        || lower.starts_with("-----forwarded message")
        || lower.starts_with("---------- forwarded message")
        || (t.len() >= 10 && t.chars().all(|c| c == '_'))
}

fn is_device_footer(t: &str) -> bool {
    let lower = t.to_lowercase();
    lower.starts_with("sent from my ") || lower.starts_with("get outlook for ") || lower.starts_with("sent from mail for windows")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_quotes_and_signatures() {
        let t = "Hi Ana,\n\nYes, we ship on Mondays.\n\nBest,\nSam\n-- \nSam's Roastery | 555-0100\n\nOn Mon, 3 Jun 2024 at 09:00, Ana <ana@x.com> wrote:\n> When do you ship?\n";
        assert_eq!(clean_reply(t), "Hi Ana,\n\nYes, we ship on Mondays.\n\nBest,\nSam");
        let outlook = "Sure thing.\n\n________________________________\nFrom: Bob\nSent: Monday\nTo: us\n\nold text";
        assert_eq!(clean_reply(outlook), "Sure thing.");
        let split = "Thanks!\nOn Tue, 4 Jun 2024, 10:12 Ana Lopez <ana@example.com>\nwrote:\n> x";
        assert_eq!(clean_reply(split), "Thanks!");
        assert_eq!(clean_reply("Inline:\n> q1\nanswer 1\n> q2\nanswer 2\n\nSent from my iPhone"), "Inline:\nanswer 1\nanswer 2");
    }

    #[test]
    fn reads_mime_encodings() {
        let qp = b"From: a@x.com\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me =\r\nis back.\r\n";
        assert_eq!(message_text(qp).unwrap().trim(), "Café crème is back.");
        let b64 = b"From: a@x.com\nSubject: t\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nSGVsbG8sIHdvcmxkIOKYlQ==\n";
        assert_eq!(message_text(b64).unwrap().trim(), "Hello, world ☕");
        let html = b"From: a@x.com\nSubject: t\nContent-Type: multipart/alternative; boundary=\"b\"\n\n--b\nContent-Type: text/html; charset=utf-8\n\n<p>Hello <b>there</b></p>\n--b--\n";
        assert!(message_text(html).unwrap().contains("Hello there"));
    }

    #[test]
    fn unescapes_mboxrd() {
        assert_eq!(unescape_from(b"a\n>From here\n>>From x\n"), b"a\nFrom here\n>From x\n");
    }
}
