//! Byte-level entry points for the fuzz targets in `fuzz/` (and for tests): each runs one reader
//! over in-memory input and returns how many records it produced. None may panic.

use crate::options::{CharEstimate, Options};
use crate::readers::{self, Ctx, Lines};

fn with_ctx(f: impl FnOnce(&mut Ctx)) -> usize {
    let opts = Options { max_item: 1 << 20, ..Options::default() };
    let mut n = 0usize;
    let mut sink = |_r: crate::record::Record| n += 1;
    let mut ctx = Ctx::new("fuzz".into(), &opts, &CharEstimate, Some("CREATE TABLE t (id INTEGER);".into()), &mut sink);
    f(&mut ctx);
    drop(ctx);
    n
}

/// JSON Lines, then the same bytes as one JSON document shape.
pub fn jsonl(data: &[u8]) -> usize {
    with_ctx(|ctx| {
        let _ = readers::json::read_jsonl_lines(Lines::new(data, 1 << 20), ctx);
    })
}

/// CSV with each delimiter the sniffer can pick.
pub fn csv(data: &[u8]) -> usize {
    let mut n = 0;
    for d in [b',', b'\t', b';'] {
        n += with_ctx(|ctx| {
            let _ = readers::csv::read_from(data, d, ctx);
        });
    }
    n
}

/// One email (MIME parsing, charsets, HTML, reply cleaning) and the mbox splitter.
pub fn email(data: &[u8]) -> usize {
    let text = readers::email::message_text(data).unwrap_or_default();
    let cleaned = readers::email::clean_reply(&text);
    let mut idx = readers::email::MailIndex::default();
    let _ = idx.add_mbox_lines(std::path::Path::new("fuzz.mbox"), "fuzz.mbox", &Options::default(), Lines::new(data, 1 << 16));
    cleaned.len() + idx.msgs.len()
}

/// Chat YAML.
pub fn yaml(data: &[u8]) -> usize {
    let text = crate::text::decode(data).text;
    match readers::yaml::parse_chatterbot(&text) {
        Ok(c) => c.len(),
        Err(_) => 0,
    }
}

/// Format sniffing and text decoding.
pub fn sniff(data: &[u8]) -> usize {
    let f = crate::detect::sniff(std::path::Path::new("fuzz.txt"), data);
    let d = crate::text::decode(data);
    let _ = crate::text::repair_mojibake(&d.text);
    let _ = crate::pii::redact(&d.text);
    f.name().len() + d.text.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_read_samples() {
        assert_eq!(super::jsonl(b"{\"prompt\":\"a\",\"completion\":\"b\"}\n{bad\n"), 1);
        assert!(super::csv(b"question,answer\nq,a\n") >= 1);
        assert!(super::email(b"From a@b Mon\nFrom: a@b\nSubject: s\n\nhello\n") > 0);
        assert_eq!(super::yaml(b"conversations:\n- - a\n  - b\n"), 1);
        assert!(super::sniff(b"caf\xc3\xa9") > 0);
    }
}
