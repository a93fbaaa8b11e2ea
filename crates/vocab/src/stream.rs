//! Incremental detokenization of generated tokens.

use crate::error::Result;
use crate::Vocab;

/// Turns generated token ids into text piece by piece.
///
/// A token can end in the middle of a UTF-8 character (byte-level BPE and `<0xNN>` byte
/// tokens do this for emoji and most non-Latin scripts): those bytes are held back until the
/// character is complete, so every piece returned is whole text. Control tokens produce no
/// text. Bytes that can never become a character are returned as U+FFFD, never dropped.
/// Spaces are kept as the tokens have them (a reply's first word keeps its leading space,
/// since it continues the prompt); trim the finished reply if that is wanted.
#[derive(Debug)]
pub struct StreamDecoder<'v> {
    vocab: &'v Vocab,
    pending: Vec<u8>,
}

impl<'v> StreamDecoder<'v> {
    pub fn new(vocab: &'v Vocab) -> StreamDecoder<'v> {
        StreamDecoder { vocab, pending: Vec::new() }
    }

    /// Adds one generated token; returns the text it completes, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        let piece = self.vocab.piece_bytes(id, false)?;
        self.pending.extend_from_slice(piece);
        Ok(self.take_complete())
    }

    /// Returns whatever is still held back (an unfinished character becomes U+FFFD).
    pub fn flush(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(s)
    }

    fn take_complete(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&rest[..valid]).expect("checked by valid_up_to"));
                    match e.error_len() {
                        // Invalid bytes: they will never form a character.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &rest[valid + bad..];
                        }
                        // An unfinished character at the end: wait for more bytes.
                        None => {
                            rest = &rest[valid..];
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let start = self.pending.len() - keep;
        self.pending.drain(..start);
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }
}
