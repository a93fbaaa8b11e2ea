//! Personal data in text: email addresses, phone numbers, card numbers (Luhn-checked) and IBANs
//! (mod-97-checked), found and redacted.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PiiKind {
    Email,
    Phone,
    Card,
    Iban,
}

impl PiiKind {
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "email address",
            PiiKind::Phone => "phone number",
            PiiKind::Card => "card number",
            PiiKind::Iban => "IBAN",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            PiiKind::Email => "email addresses",
            PiiKind::Phone => "phone numbers",
            PiiKind::Card => "card numbers",
            PiiKind::Iban => "IBANs",
        }
    }
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Card => "[CARD]",
            PiiKind::Iban => "[IBAN]",
        }
    }
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("the PII patterns are valid"))
}

static EMAIL: OnceLock<Regex> = OnceLock::new();
static CARDISH: OnceLock<Regex> = OnceLock::new();
static IBANISH: OnceLock<Regex> = OnceLock::new();
static PHONEISH: OnceLock<Regex> = OnceLock::new();

/// Byte ranges of personal data in `text`, not overlapping, in order.
pub fn find(text: &str) -> Vec<(std::ops::Range<usize>, PiiKind)> {
    let mut out: Vec<(std::ops::Range<usize>, PiiKind)> = Vec::new();
    let free = |out: &Vec<(std::ops::Range<usize>, PiiKind)>, r: &std::ops::Range<usize>| out.iter().all(|(o, _)| o.end <= r.start || r.end <= o.start);
    for m in re(&EMAIL, r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").find_iter(text) {
        out.push((m.range(), PiiKind::Email));
    }
    for m in re(&IBANISH, r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b").find_iter(text) {
        if iban_valid(m.as_str()) && free(&out, &m.range()) {
            out.push((m.range(), PiiKind::Iban));
        }
    }
    for m in re(&CARDISH, r"\b\d(?:[ -]?\d){12,18}\b").find_iter(text) {
        let digits: Vec<u8> = m.as_str().bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        if (13..=19).contains(&digits.len()) && luhn(&digits) && free(&out, &m.range()) {
            out.push((m.range(), PiiKind::Card));
        }
    }
    for m in re(&PHONEISH, r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}").find_iter(text) {
        let s = m.as_str();
        let digits = s.bytes().filter(u8::is_ascii_digit).count();
        let looks_date = has_iso_date(s) || text[m.end()..].starts_with(':');
        let plausible = (7..=15).contains(&digits) && !looks_date && (digits >= 9 || s.contains('-') || s.starts_with('+') || s.contains('('));
        // A bare run like "12 500 1000" inside a sentence about amounts is not a phone number:
        // demand a phone-like separator pattern (no more than 4 groups) and no decimal point.
        if plausible && !s.contains(". ") && free(&out, &m.range()) && !before_is_digitish(text, m.start()) {
            out.push((m.range(), PiiKind::Phone));
        }
    }
    out.sort_by_key(|(r, _)| r.start);
    out
}

/// `YYYY-MM-DD` anywhere in the candidate (dates and timestamps are not phone numbers).
fn has_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(10).any(|w| w[..4].iter().all(u8::is_ascii_digit) && w[4] == b'-' && w[5..7].iter().all(u8::is_ascii_digit) && w[7] == b'-' && w[8..].iter().all(u8::is_ascii_digit))
}

fn before_is_digitish(text: &str, start: usize) -> bool {
    text[..start].chars().next_back().is_some_and(|c| c.is_ascii_digit() || c == '.' || c == ',' || c == '$' || c == '€' || c == '£')
}

/// The Luhn checksum used by payment card numbers.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = d as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10) && digits.iter().any(|&d| d != 0)
}

/// The ISO 13616 mod-97 check of an IBAN.
pub fn iban_valid(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() < 15 || s.len() > 34 {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// Replaces personal data with placeholders (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`).
pub fn redact(text: &str) -> (String, usize) {
    let found = find(text);
    if found.is_empty() {
        return (text.to_string(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, k) in &found {
        out.push_str(&text[at..r.start]);
        out.push_str(k.placeholder());
        at = r.end;
    }
    out.push_str(&text[at..]);
    (out, found.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<PiiKind> {
        find(t).into_iter().map(|x| x.1).collect()
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(kinds("write to ana.lopez@example.com today"), [PiiKind::Email]);
        assert_eq!(kinds("call +1 (555) 010-2345 or 020 7946 0958"), [PiiKind::Phone, PiiKind::Phone]);
        assert_eq!(kinds("card 4111 1111 1111 1111 exp 12/27"), [PiiKind::Card]);
        assert_eq!(kinds("IBAN GB82 WEST 1234 5698 7654 32 please"), [PiiKind::Iban]);
        assert_eq!(kinds("DE89370400440532013000"), [PiiKind::Iban]);
    }

    #[test]
    fn ignores_lookalikes() {
        assert!(kinds("card 4111 1111 1111 1112").iter().all(|k| *k != PiiKind::Card), "fails Luhn");
        assert!(kinds("GB82 WEST 1234 5698 7654 33").iter().all(|k| *k != PiiKind::Iban), "fails mod 97");
        assert!(kinds("roasted on 2024-06-03, 250 g for $12.50").is_empty(), "{:?}", find("roasted on 2024-06-03, 250 g for $12.50"));
        assert!(kinds("order 4417").is_empty());
        assert!(kinds("ts BETWEEN '2025-04-01' AND '2026-03-31 23:59:59'").is_empty());
    }

    #[test]
    fn redacts() {
        let (t, n) = redact("Mail ana@x.org or call 555-010-2345.");
        assert_eq!(t, "Mail [EMAIL] or call [PHONE].");
        assert_eq!(n, 2);
    }
}
