//! Text decoding (charsets, BOMs, mixed encodings), mojibake detection and repair, HTML to text.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// Bytes turned into text, with what it took.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub text: String,
    /// The charset used (WHATWG name, e.g. `UTF-8`, `windows-1252`, `UTF-16LE`).
    pub encoding: &'static str,
    /// Some bytes were not valid in that charset and became U+FFFD.
    pub had_errors: bool,
}

/// Decodes a whole buffer: a BOM wins, then strict UTF-8, then the charset `chardetng` guesses.
pub fn decode(bytes: &[u8]) -> Decoded {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return Decoded { text: text.into_owned(), encoding: enc.name(), had_errors };
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Decoded { text: s.to_string(), encoding: UTF_8.name(), had_errors: false };
    }
    let enc = guess_legacy(bytes);
    let (text, _, had_errors) = enc.decode(bytes);
    Decoded { text: text.into_owned(), encoding: enc.name(), had_errors }
}

/// The legacy charset a non-UTF-8 sample most likely uses.
pub fn guess_legacy(sample: &[u8]) -> &'static Encoding {
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    det.feed(sample, true);
    let enc = det.guess(None, chardetng::Utf8Detection::Allow);
    if enc == UTF_8 {
        // chardetng says UTF-8 although the bytes are not valid: the usual culprit is Latin-1/Windows-1252.
        WINDOWS_1252
    } else {
        enc
    }
}

/// Decodes one line of a file read as UTF-8: valid lines pass through; an invalid one is decoded
/// with `fallback` and reported by returning `false`.
pub fn decode_line(bytes: &[u8], fallback: &'static Encoding) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), true),
        Err(_) => {
            let (text, _, _) = fallback.decode(bytes);
            (text.into_owned(), false)
        }
    }
}

/// Is this the start of a UTF-16 or UTF-32-looking file (BOM, or NULs between ASCII)?
pub fn looks_utf16(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    if head.len() < 8 {
        return false;
    }
    let n = head.len().min(512) & !1;
    let even_nul = head[..n].iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_nul = head[1..n].iter().step_by(2).filter(|&&b| b == 0).count();
    let half = n / 2;
    (odd_nul * 10 > half * 8 && even_nul * 10 < half) || (even_nul * 10 > half * 8 && odd_nul * 10 < half)
}

/// Decodes UTF-16 without a BOM, guessing the byte order from where the NULs are.
pub fn decode_utf16_guess(bytes: &[u8]) -> Decoded {
    if Encoding::for_bom(bytes).is_some() {
        return decode(bytes);
    }
    let n = bytes.len().min(512) & !1;
    let odd_nul = bytes[1..n.max(1)].iter().step_by(2).filter(|&&b| b == 0).count();
    let even_nul = bytes[..n].iter().step_by(2).filter(|&&b| b == 0).count();
    let enc = if odd_nul >= even_nul { encoding_rs::UTF_16LE } else { encoding_rs::UTF_16BE };
    let (text, had_errors) = enc.decode_without_bom_handling(bytes);
    Decoded { text: text.into_owned(), encoding: enc.name(), had_errors }
}

/// Sequences that appear when UTF-8 text was decoded as Windows-1252 or Latin-1 ("cafÃ©", "itâ€™s").
pub fn has_mojibake(s: &str) -> bool {
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if let Some(p) = prev {
            let cont = matches!(c, '\u{80}'..='\u{BF}') || "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ".contains(c);
            // "Ã" + continuation: é, è, ü…; "â€" + x: ’ “ ” – …; "Â" + NBSP/©/°.
            if (p == 'Ã' && cont && c != '\u{A0}') || (p == 'â' && c == '€') || (p == 'Â' && matches!(c, '\u{A0}'..='\u{BF}'))
            {
                return true;
            }
        }
        prev = Some(c);
    }
    false
}

/// Undoes one round of UTF-8-read-as-Windows-1252, when that gives valid UTF-8 with no mojibake left.
pub fn repair_mojibake(s: &str) -> Option<String> {
    if !has_mojibake(s) {
        return None;
    }
    let (bytes, _, unmappable) = WINDOWS_1252.encode(s);
    if unmappable {
        // Latin-1 control range (U+0080..U+009F) is not in Windows-1252's encoder; map it byte for byte.
        let mut out = Vec::with_capacity(s.len());
        for c in s.chars() {
            let cp = c as u32;
            if cp < 0x100 {
                out.push(cp as u8);
            } else {
                let mut buf = [0u8; 4];
                let (b, _, bad) = WINDOWS_1252.encode(c.encode_utf8(&mut buf));
                if bad || b.len() != 1 {
                    return None;
                }
                out.push(b[0]);
            }
        }
        let fixed = String::from_utf8(out).ok()?;
        return (!has_mojibake(&fixed)).then_some(fixed);
    }
    let fixed = String::from_utf8(bytes.into_owned()).ok()?;
    (!has_mojibake(&fixed)).then_some(fixed)
}

/// HTML to readable plain text (no link footnotes, no wrapping).
pub fn html_to_text(html: &str) -> String {
    let text = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_else(|_| strip_tags(html));
    tidy(&text)
}

/// Last-resort tag stripper used if the HTML converter fails.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Normalises line endings, trims trailing spaces on lines and collapses runs of blank lines.
pub fn tidy(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

/// True when the bytes look binary (NULs or many control bytes) rather than text.
pub fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() || looks_utf16(head) {
        return false;
    }
    if head.contains(&0) {
        return true;
    }
    let ctrl = head.iter().filter(|&&b| b < 0x09 || (b > 0x0D && b < 0x20 && b != 0x1B)).count();
    ctrl * 20 > head.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_latin1_and_utf16() {
        assert_eq!(decode("café".as_bytes()).encoding, "UTF-8");
        let latin = b"Caf\xe9 cr\xe8me, tr\xe8s bon. Le caf\xe9 est pr\xeat.";
        let d = decode(latin);
        assert_eq!(d.text, "Café crème, très bon. Le café est prêt.");
        assert_ne!(d.encoding, "UTF-8");
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "hé".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&utf16).text, "hé");
        let no_bom: Vec<u8> = "question\tanswer\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert!(looks_utf16(&no_bom));
        assert_eq!(decode_utf16_guess(&no_bom).text, "question\tanswer\n");
    }

    #[test]
    fn mixed_line_falls_back() {
        let (s, ok) = decode_line(b"na\xefve", WINDOWS_1252);
        assert!(!ok);
        assert_eq!(s, "naïve");
    }

    #[test]
    fn mojibake_found_and_repaired() {
        assert!(has_mojibake("The cafÃ© is open"));
        assert!(has_mojibake("itâ€™s ready"));
        assert!(!has_mojibake("The café is open, it’s ready. Ã alone is fine"));
        assert_eq!(repair_mojibake("The cafÃ© is open, itâ€™s ready").as_deref(), Some("The café is open, it’s ready"));
        assert_eq!(repair_mojibake("plain"), None);
    }

    #[test]
    fn html_becomes_text() {
        let t = html_to_text("<html><body><p>Hello <b>there</b>,</p><p>See <a href='https://x.y'>our shop</a>.</p></body></html>");
        assert!(t.contains("Hello there,"), "{t}");
        assert!(t.contains("See our shop."), "{t}");
        assert!(!t.contains('<'));
    }

    #[test]
    fn binary_sniffing() {
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!looks_binary(b"hello, world\n"));
    }
}
