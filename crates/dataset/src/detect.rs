//! Choosing a reader from a file's first bytes (its content), with the extension as a hint only.

use std::path::Path;

use serde::Serialize;

/// What a file was recognised as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "format")]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// A single JSON document (an array of records, or an object holding one).
    Json,
    /// Delimited text with a header row.
    Csv { delimiter: u8 },
    /// One email (RFC 5322).
    Eml,
    /// A mailbox: emails one after another, each starting with a `From ` line.
    Mbox,
    /// Plain text or Markdown.
    Document,
    Html,
    /// Conversations in the chatterbot YAML shape.
    Yaml,
    /// SQL DDL (`CREATE TABLE…`): a schema for text-to-SQL pairs.
    SqlSchema,
    /// A SQLite database: its schema is read, its rows are not.
    Sqlite,
    /// A persona file (TOML).
    Persona,
    /// Not something this app reads; the reason says why.
    Skipped { reason: String },
}

impl Format {
    pub fn name(&self) -> &'static str {
        match self {
            Format::JsonLines => "json-lines",
            Format::Json => "json",
            Format::Csv { delimiter: b'\t' } => "tsv",
            Format::Csv { .. } => "csv",
            Format::Eml => "email",
            Format::Mbox => "mbox",
            Format::Document => "document",
            Format::Html => "html",
            Format::Yaml => "chat-yaml",
            Format::SqlSchema => "sql-schema",
            Format::Sqlite => "sqlite",
            Format::Persona => "persona",
            Format::Skipped { .. } => "skipped",
        }
    }
}

fn ext_of(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG", "a PNG image"),
    (b"\xFF\xD8\xFF", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document (PDF text extraction is not supported; export it as text)"),
    (b"PK\x03\x04", "a ZIP archive or Office document (unpack it, or export the document as text)"),
    (b"\x1F\x8B", "a gzip archive (unpack it first)"),
    (b"BZh", "a bzip2 archive (unpack it first)"),
    (b"\xFD7zXZ", "an xz archive (unpack it first)"),
    (b"7z\xBC\xAF", "a 7-Zip archive (unpack it first)"),
    (b"Rar!", "a RAR archive (unpack it first)"),
    (b"\x7FELF", "a program (binary)"),
    (b"MZ", "a Windows program (binary)"),
    (b"GGUF", "a model file (GGUF), not training data"),
    (b"RIFF", "an audio or video file"),
    (b"ID3", "an audio file"),
    (b"OggS", "an audio file"),
    (b"\x1A\x45\xDF\xA3", "a video file"),
    (b"\xD0\xCF\x11\xE0", "an old Office document (save it as text or CSV)"),
];

/// Decides how to read a file from its path and its first bytes (up to a few KiB).
pub fn sniff(path: &Path, head: &[u8]) -> Format {
    let ext = ext_of(path);
    if head.is_empty() {
        return Format::Skipped { reason: "the file is empty".into() };
    }
    if head.starts_with(b"SQLite format 3\0") {
        return Format::Sqlite;
    }
    for (magic, what) in MAGIC {
        if head.starts_with(magic) {
            return Format::Skipped { reason: format!("it is {what}") };
        }
    }
    if head.len() > 8 && &head[4..8] == b"ftyp" {
        return Format::Skipped { reason: "it is a video or image file".into() };
    }
    if crate::text::looks_binary(head) {
        return Format::Skipped { reason: "it is a binary file, not text".into() };
    }
    // From here on the file is text; look at it as text (lossy is fine for sniffing).
    let text: String = if crate::text::looks_utf16(head) {
        crate::text::decode_utf16_guess(head).text
    } else {
        String::from_utf8_lossy(head).into_owned()
    };
    let text = text.trim_start_matches('\u{FEFF}');
    let trimmed = text.trim_start();
    if ext == "toml" {
        return if looks_persona(text) {
            Format::Persona
        } else {
            Format::Skipped { reason: "a TOML file that is not a persona (no `name` and `description`)".into() }
        };
    }
    if text.starts_with("From ") && looks_headers(text.split_once('\n').map(|x| x.1).unwrap_or("")) {
        return Format::Mbox;
    }
    if ext == "mbox" || ext == "mbx" {
        return Format::Mbox;
    }
    if ext == "eml" || looks_headers(text) {
        return Format::Eml;
    }
    if trimmed.starts_with('{') {
        return if ext == "json" && !first_line_is_complete_json(trimmed) { Format::Json } else { Format::JsonLines };
    }
    if trimmed.starts_with('[') && !matches!(ext.as_str(), "md" | "txt" | "markdown") {
        return Format::Json;
    }
    if ext == "jsonl" || ext == "ndjson" || ext == "json" {
        // Says JSON but does not start like it: the JSON reader reports what is wrong line by line.
        return Format::JsonLines;
    }
    let lower_head: String = trimmed.chars().take(512).collect::<String>().to_ascii_lowercase();
    if lower_head.starts_with("<!doctype html") || lower_head.starts_with("<html") || ext == "html" || ext == "htm" {
        return Format::Html;
    }
    if ext == "yml" || ext == "yaml" || text.lines().any(|l| l.starts_with("conversations:")) {
        return Format::Yaml;
    }
    if ext == "sql" || looks_ddl(&lower_head) {
        return Format::SqlSchema;
    }
    if let Some(d) = csv_delimiter(&ext, text) {
        return Format::Csv { delimiter: d };
    }
    match ext.as_str() {
        "" | "txt" | "text" | "md" | "markdown" | "rst" | "org" => Format::Document,
        "csv" | "tsv" => Format::Csv { delimiter: if ext == "tsv" { b'\t' } else { b',' } },
        _ => Format::Skipped {
            reason: format!(
                "a text file of a kind not used for training (.{ext}); if it is a writing sample, rename it to .txt"
            ),
        },
    }
}

fn first_line_is_complete_json(s: &str) -> bool {
    let line = s.lines().next().unwrap_or("");
    serde_json::from_str::<serde_json::Value>(line).is_ok()
}

fn looks_persona(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("name")) && text.contains("description")
}

fn looks_ddl(lower: &str) -> bool {
    lower.starts_with("create table") || lower.starts_with("--") && lower.contains("create table")
        || lower.starts_with("pragma") || lower.starts_with("begin transaction")
}

/// RFC 5322 headers: the first lines are `Name: value`, with at least two of the usual ones.
fn looks_headers(text: &str) -> bool {
    let mut known = 0;
    for line in text.lines().take(40) {
        if line.is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let Some((name, _)) = line.split_once(':') else { return false };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return false;
        }
        let n = name.to_ascii_lowercase();
        if matches!(
            n.as_str(),
            "from" | "to" | "subject" | "date" | "message-id" | "in-reply-to" | "references" | "mime-version"
                | "content-type" | "received" | "return-path" | "delivered-to" | "cc" | "reply-to"
        ) {
            known += 1;
        }
    }
    known >= 2
}

/// A delimiter that splits the first lines into the same number (≥ 2) of fields.
fn csv_delimiter(ext: &str, text: &str) -> Option<u8> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(5).collect();
    let header = *lines.first()?;
    let mut best: Option<(u8, usize)> = None;
    for d in [b'\t', b',', b';', b'|'] {
        let n = header.bytes().filter(|&b| b == d).count();
        if n == 0 {
            continue;
        }
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((d, n));
        }
    }
    let (d, n) = best?;
    if ext == "csv" || ext == "tsv" {
        return Some(d);
    }
    // Without the extension, ask for a header of short names.
    let short_header = header.split(d as char).all(|f| f.trim().len() <= 40);
    (short_header && n <= 50 && lines.len() >= 2).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, body: &[u8]) -> Format {
        sniff(Path::new(name), body)
    }

    #[test]
    fn by_content_not_only_extension() {
        assert_eq!(f("chats.txt", b"{\"messages\": []}\n{\"messages\": []}\n"), Format::JsonLines);
        assert_eq!(f("export", b"From: a@b.c\nTo: d@e.f\nSubject: hi\n\nbody"), Format::Eml);
        assert_eq!(f("box", b"From a@b.c Mon Jan  1 00:00:00 2024\nFrom: a@b.c\nSubject: x\n\nhi\n"), Format::Mbox);
        assert_eq!(f("data", b"question,answer\nWhat?,That.\n"), Format::Csv { delimiter: b',' });
        assert_eq!(f("data.tsv", b"q\ta\nx\ty\n"), Format::Csv { delimiter: b'\t' });
        assert_eq!(f("page.txt", b"<!DOCTYPE html><html><body>x</body></html>"), Format::Html);
        assert_eq!(f("notes.md", b"# Roasting notes\n\nWe roast on Tuesdays."), Format::Document);
        assert_eq!(f("x.yml", b"categories:\n- a\nconversations:\n- - hi\n  - hello\n"), Format::Yaml);
        assert_eq!(f("schema.sql", b"CREATE TABLE t (id INTEGER);"), Format::SqlSchema);
        assert_eq!(f("arr.json", b"[{\"text\": \"x\"}]"), Format::Json);
        assert_eq!(f("pretty.json", b"{\n  \"data\": []\n}"), Format::Json);
        assert_eq!(f("db.sqlite", b"SQLite format 3\0rest"), Format::Sqlite);
        assert_eq!(f("persona.toml", b"name = \"Ada\"\ndescription = \"x\""), Format::Persona);
    }

    #[test]
    fn skips_binaries_with_reasons() {
        match f("photo.txt", b"\x89PNG\r\n\x1a\n\0\0") {
            Format::Skipped { reason } => assert!(reason.contains("PNG")),
            other => panic!("{other:?}"),
        }
        match f("empty.jsonl", b"") {
            Format::Skipped { reason } => assert!(reason.contains("empty")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(f("a.bin", b"\0\x01\x02\x03abc"), Format::Skipped { .. }));
        assert!(matches!(f("main.rs", b"fn main() {}\n"), Format::Skipped { .. }));
    }
}
