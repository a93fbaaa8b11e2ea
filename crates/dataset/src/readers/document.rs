//! Documents (`.txt`, `.md`, `.html`): cut at paragraph boundaries into pieces that fit the
//! sequence length, each a writing sample.

use std::path::Path;

use super::{Ctx, Line, Lines};
use crate::finding::Finding;
use crate::record::{Kind, Message, Record};

/// Streams a text or Markdown document paragraph by paragraph.
pub fn read_text(path: &Path, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let mut head = Vec::new();
    {
        use std::io::Read;
        std::fs::File::open(path)?.take(64 << 10).read_to_end(&mut head)?;
    }
    if crate::text::looks_utf16(&head) {
        let bytes = super::read_whole(path, ctx.opts.max_whole_file, "save it as UTF-8 text")?;
        let d = crate::text::decode_utf16_guess(&bytes);
        ctx.finding(Finding::info("not-utf8", format!("the file is in {}; converted to UTF-8", d.encoding)));
        let mut ch = Chunker::new(ctx);
        for (line, p) in super::paragraphs(&d.text) {
            ch.push(line, p, ctx);
        }
        ch.finish(ctx);
        return Ok(());
    }
    let valid_head = match std::str::from_utf8(&head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(), // cut in the middle of a character at the 64 KiB mark
    };
    let fallback = if valid_head { encoding_rs::WINDOWS_1252 } else { crate::text::guess_legacy(&head) };
    if !valid_head {
        ctx.finding(Finding::info("not-utf8", format!("the file is not UTF-8; read as {}", fallback.name())).fix("save it as UTF-8"));
    }
    let mut lines = Lines::open(path, ctx.opts.max_item)?;
    let mut ch = Chunker::new(ctx);
    let mut para = String::new();
    let mut start = 0u64;
    let mut bad = Vec::new();
    while let Some(l) = lines.next_line()? {
        let (n, bytes) = match l {
            Line::Text(n, b) => (n, b),
            Line::TooLong(n, len) => {
                ctx.finding(Finding::warning("line-too-long", format!("line {n} is {len} bytes without a line break; it was skipped")).at_line(Some(n)));
                continue;
            }
        };
        let (s, ok) = crate::text::decode_line(&bytes, fallback);
        if !ok && valid_head {
            bad.push(n);
        }
        if s.trim().is_empty() {
            if !para.is_empty() {
                ch.push(start, std::mem::take(&mut para), ctx);
            }
            continue;
        }
        if para.is_empty() {
            start = n;
        } else {
            para.push('\n');
        }
        para.push_str(s.trim_end().trim_start_matches('\u{FEFF}'));
    }
    if !para.is_empty() {
        ch.push(start, para, ctx);
    }
    ch.finish(ctx);
    super::json::report_bad_utf8(ctx, &bad);
    Ok(())
}

/// Reads an HTML page as text.
pub fn read_html(path: &Path, ctx: &mut Ctx) -> Result<(), super::ReadError> {
    let bytes = super::read_whole(path, ctx.opts.max_whole_file, "save the page as text")?;
    let d = crate::text::decode(&bytes);
    let text = crate::text::html_to_text(&d.text);
    let mut ch = Chunker::new(ctx);
    for (line, p) in super::paragraphs(&text) {
        ch.push(line, p, ctx);
    }
    ch.finish(ctx);
    Ok(())
}

/// Gathers paragraphs into pieces of at most `seq_len` tokens.
struct Chunker {
    cur: String,
    cur_tokens: usize,
    line: u64,
    limit: usize,
    split_paragraphs: Vec<u64>,
}

impl Chunker {
    fn new(ctx: &Ctx) -> Self {
        // Leave room for the chat template around the text.
        let limit = ctx.opts.seq_len.saturating_sub(16).max(16);
        Chunker { cur: String::new(), cur_tokens: 0, line: 0, limit, split_paragraphs: Vec::new() }
    }

    fn tokens(ctx: &Ctx, s: &str) -> usize {
        ctx.counter.count(&[Message::assistant(s)])
    }

    fn push(&mut self, line: u64, para: String, ctx: &mut Ctx) {
        let t = Self::tokens(ctx, &para);
        if t > self.limit {
            self.split_paragraphs.push(line);
            self.flush(ctx);
            for piece in split_long(&para, t, self.limit) {
                let pt = Self::tokens(ctx, &piece);
                self.add(line, piece, pt, ctx);
            }
            return;
        }
        self.add(line, para, t, ctx);
    }

    fn add(&mut self, line: u64, para: String, t: usize, ctx: &mut Ctx) {
        if !self.cur.is_empty() && self.cur_tokens + t > self.limit {
            self.flush(ctx);
        }
        if self.cur.is_empty() {
            self.line = line;
        } else {
            self.cur.push_str("\n\n");
        }
        self.cur.push_str(&para);
        self.cur_tokens += t;
    }

    fn flush(&mut self, ctx: &mut Ctx) {
        if self.cur.trim().is_empty() {
            self.cur.clear();
            self.cur_tokens = 0;
            return;
        }
        let r = Record {
            messages: vec![Message::assistant(std::mem::take(&mut self.cur))],
            source: ctx.source(Some(self.line)),
            group: ctx.file.clone(),
            kind: Kind::Style,
        };
        self.cur_tokens = 0;
        ctx.record(r);
    }

    fn finish(mut self, ctx: &mut Ctx) {
        self.flush(ctx);
        if !self.split_paragraphs.is_empty() {
            let shown: Vec<String> = self.split_paragraphs.iter().take(8).map(|l| l.to_string()).collect();
            ctx.finding(
                Finding::info("long-paragraph-split", format!("{} paragraph(s) longer than the sequence length were cut at sentence boundaries (lines {})", self.split_paragraphs.len(), shown.join(", ")))
                    .at_line(self.split_paragraphs.first().copied()),
            );
        }
    }
}

/// Cuts an over-long paragraph at sentence ends (or spaces) into pieces of about `limit` tokens.
fn split_long(text: &str, tokens: usize, limit: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let per_piece = (chars.len() * limit / tokens.max(1)).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let hard_end = (start + per_piece).min(chars.len());
        let mut end = hard_end;
        if hard_end < chars.len() {
            let window = &chars[start..hard_end];
            let min = window.len() / 2;
            if let Some(p) = window.iter().rposition(|&c| c == '.' || c == '!' || c == '?' || c == '\n').filter(|&p| p >= min) {
                end = start + p + 1;
            } else if let Some(p) = window.iter().rposition(|c| c.is_whitespace()).filter(|&p| p >= min) {
                end = start + p + 1;
            }
        }
        let piece: String = chars[start..end].iter().collect();
        if !piece.trim().is_empty() {
            out.push(piece.trim().to_string());
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_splits_at_sentences() {
        let text = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let pieces = split_long(text, 40, 20);
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert!(pieces[0].ends_with('.'), "{pieces:?}");
        assert_eq!(pieces.join(" "), text);
    }
}
