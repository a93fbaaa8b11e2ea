//! SentencePiece-style BPE (GGUF `tokenizer.ggml.model = "llama"`: Llama 2, Gemma), the way
//! llama.cpp runs it.
//!
//! The text (spaces already replaced by "▁") starts as one symbol per UTF-8 character.
//! Every pair of neighbours whose concatenation is a token is a candidate; the candidate
//! whose token has the highest score is merged first (ties: the leftmost), and the new
//! neighbours become candidates. When nothing merges any more, each symbol is its token, or,
//! when it is not a token (a character outside the vocabulary), its bytes as `<0xNN>` tokens.
//!
//! This is a score-ordered merge, not a rank-ordered one: a `tokenizers` BPE can only
//! approximate it (several pairs can form one token with a single score), so it is written
//! out here, exactly as llama.cpp does it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ahash::AHashMap;

use crate::error::{Result, VocabError};

/// The merge table of a SentencePiece vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Spm {
    to_id: AHashMap<String, u32>,
    scores: Vec<f32>,
    byte_ids: [Option<u32>; 256],
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(Debug)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// The max-heap's top is the highest score; among equal scores, the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}

impl Spm {
    /// `tokens[i]` and `scores[i]` describe token `i`. The first id wins for a duplicated text.
    pub(crate) fn new(tokens: &[String], scores: Vec<f32>) -> Spm {
        let mut to_id = AHashMap::with_capacity(tokens.len());
        for (id, t) in tokens.iter().enumerate() {
            to_id.entry(t.clone()).or_insert(id as u32);
        }
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            // llama.cpp: `<0xNN>` (upper-case hex), else the byte itself as a one-character token.
            let hex = format!("<0x{b:02X}>");
            *slot = to_id.get(hex.as_str()).copied().or_else(|| {
                if b < 0x80 {
                    to_id.get((b as u8 as char).to_string().as_str()).copied()
                } else {
                    None
                }
            });
        }
        Spm { to_id, scores, byte_ids }
    }

    /// The id of a token text.
    pub(crate) fn token_id(&self, text: &str) -> Option<u32> {
        self.to_id.get(text).copied()
    }

    /// Tokenizes `text`, which must already have its spaces escaped as "▁", appending to `out`.
    pub(crate) fn tokenize(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol { start, len: c.len_utf8(), prev: i.checked_sub(1), next: Some(i + 1) });
        }
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        }

        let mut queue = BinaryHeap::new();
        for i in 1..symbols.len() {
            self.try_add(text, &symbols, i - 1, i, &mut queue);
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            // Skip pairs that an earlier merge changed.
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            symbols[b.left].len += r.len;
            symbols[b.right].len = 0;
            symbols[b.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(b.left);
            }
            if let Some(p) = symbols[b.left].prev {
                self.try_add(text, &symbols, p, b.left, &mut queue);
            }
            if let Some(n) = symbols[b.left].next {
                self.try_add(text, &symbols, b.left, n, &mut queue);
            }
        }

        let mut i = Some(0);
        while let Some(idx) = i {
            let s = symbols[idx];
            let piece = &text[s.start..s.start + s.len];
            match self.to_id.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for &byte in piece.as_bytes() {
                        out.push(self.byte_ids[byte as usize].ok_or(VocabError::NoByteToken { byte })?);
                    }
                }
            }
            i = s.next;
        }
        Ok(())
    }

    fn try_add(&self, text: &str, symbols: &[Symbol], left: usize, right: usize, queue: &mut BinaryHeap<Bigram>) {
        let (l, r) = (symbols[left], symbols[right]);
        let size = l.len + r.len;
        let merged = &text[l.start..l.start + size];
        if let Some(&id) = self.to_id.get(merged) {
            let score = self.scores.get(id as usize).copied().unwrap_or(0.0);
            queue.push(Bigram { score, left, right, size });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spm(entries: &[(&str, f32)]) -> Spm {
        let tokens: Vec<String> = entries.iter().map(|(t, _)| t.to_string()).collect();
        let scores = entries.iter().map(|(_, s)| *s).collect();
        Spm::new(&tokens, scores)
    }

    fn run(s: &Spm, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        s.tokenize(text, &mut out).unwrap();
        out
    }

    #[test]
    fn highest_score_merges_first() {
        // "abc": "ab" (-1) and "bc" (-0.5) compete; "bc" wins, then "a"+"bc" is no token.
        let s = spm(&[("a", -5.0), ("b", -5.0), ("c", -5.0), ("ab", -1.0), ("bc", -0.5)]);
        assert_eq!(run(&s, "abc"), vec![0, 4]);
        // With "ab" scoring higher it wins instead.
        let s = spm(&[("a", -5.0), ("b", -5.0), ("c", -5.0), ("ab", -0.1), ("bc", -0.5)]);
        assert_eq!(run(&s, "abc"), vec![3, 2]);
    }

    #[test]
    fn equal_scores_merge_leftmost_first() {
        let s = spm(&[("a", -5.0), ("aa", -1.0)]);
        assert_eq!(run(&s, "aaa"), vec![1, 0]);
    }

    #[test]
    fn merges_chain_into_longer_tokens() {
        let s = spm(&[("▁", -9.0), ("h", -9.0), ("i", -9.0), ("▁h", -2.0), ("▁hi", -1.0)]);
        assert_eq!(run(&s, "▁hi"), vec![4]);
    }

    #[test]
    fn unknown_characters_fall_back_to_byte_tokens() {
        let mut entries: Vec<(String, f32)> = (0..=255u32).map(|b| (format!("<0x{b:02X}>"), 0.0)).collect();
        entries.push(("a".into(), -1.0));
        let tokens: Vec<String> = entries.iter().map(|(t, _)| t.clone()).collect();
        let s = Spm::new(&tokens, entries.iter().map(|(_, s)| *s).collect());
        // "é" is C3 A9 in UTF-8.
        assert_eq!(run(&s, "aé"), vec![256, 0xC3, 0xA9]);
    }

    #[test]
    fn missing_byte_token_is_an_error_not_a_panic() {
        let s = spm(&[("a", -1.0)]);
        let mut out = Vec::new();
        let err = s.tokenize("é", &mut out).unwrap_err();
        assert!(matches!(err, VocabError::NoByteToken { byte: 0xC3 }), "{err}");
    }
}
