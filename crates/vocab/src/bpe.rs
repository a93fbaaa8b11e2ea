//! Byte-level BPE (GGUF `tokenizer.ggml.model = "gpt2"`), built as a `tokenizers::Tokenizer`.
//!
//! llama.cpp splits text with a list of regexes chosen by `tokenizer.ggml.pre`, applied one
//! after the other (each regex splits the pieces of the previous one; text between matches
//! stays a piece of its own), maps every byte to the GPT-2 "byte-level" alphabet and then
//! runs rank-ordered BPE merges. The same pipeline in `tokenizers` terms is a `Sequence` of
//! `Split(regex, Isolated)` pre-tokenizers, then `ByteLevel` without prefix space and without
//! its own regex, then a `BPE` model. The regexes below are llama.cpp's (`llama-vocab.cpp`),
//! which are the Hugging Face ones with `(?i:...)` spelled out as character classes.

use std::collections::HashMap;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Result, VocabError};

/// GPT-2's regex (llama.cpp has a hand-written splitter for exactly this string).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's regex, case-insensitive contractions spelled out.
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's regex: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer of a byte-level BPE vocabulary (GGUF `tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pre {
    /// llama.cpp's fallback when the name is `default` or missing.
    Default,
    /// GPT-2 (`gpt-2`, `phi-2`, `mpt`, `olmo`, ...).
    Gpt2,
    /// Llama 3 (`llama-bpe`, `llama3`, `llama-v3`, `falcon3`, ...): ignores merges for whole-word hits.
    Llama3,
    /// Qwen2 / Qwen2.5 (`qwen2`, `deepseek-r1-qwen`, `stablelm2`, `megrez`).
    Qwen2,
    /// SmolLM / StarCoder (`smollm`, `starcoder`, `refact`, `command-r`, ...): every digit alone, then GPT-2.
    Smollm,
}

/// Names accepted in `tokenizer.ggml.pre`, for error messages.
pub(crate) const SUPPORTED_PRE: &str =
    "default, gpt-2, llama-bpe/llama3, qwen2, smollm/starcoder and their llama.cpp aliases";

impl Pre {
    /// Maps a GGUF `tokenizer.ggml.pre` value to a pre-tokenizer, the way llama.cpp groups them.
    pub fn from_gguf_name(name: &str) -> Option<Pre> {
        Some(match name {
            "default" | "" => Pre::Default,
            "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
            | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" | "exaone4" => Pre::Gpt2,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
            | "dbrx" | "smaug-bpe" => Pre::Llama3,
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" | "hunyuan"
            | "solar-open" => Pre::Qwen2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b"
            | "mellum2" => Pre::Smollm,
            _ => return None,
        })
    }

    /// The regexes llama.cpp applies, in order.
    pub fn regexes(self) -> &'static [&'static str] {
        match self {
            Pre::Default => &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
            Pre::Gpt2 => &[GPT2],
            Pre::Llama3 => &[LLAMA3],
            Pre::Qwen2 => &[QWEN2],
            Pre::Smollm => &[r"\p{N}", GPT2],
        }
    }

    /// llama.cpp's `ignore_merges`: a pre-tokenized word that is itself a token is kept whole.
    pub fn ignore_merges(self) -> bool {
        matches!(self, Pre::Llama3)
    }

    /// Whether llama.cpp adds BOS for this pre-tokenizer when the GGUF does not say.
    pub fn default_add_bos(self) -> bool {
        matches!(self, Pre::Llama3)
    }
}

/// A token to register as an added token of the built tokenizer.
pub(crate) struct AddedSpec<'a> {
    pub text: &'a str,
    /// Control/unknown tokens are `special` (only parsed when asked); user-defined ones are not.
    pub special: bool,
}

/// Builds the `tokenizers::Tokenizer` for a GGUF byte-level BPE vocabulary.
///
/// `tokens[i]` is the text of token `i` (in the byte-level alphabet); `merges` are
/// `"left right"` strings in rank order.
pub(crate) fn build_tokenizer(
    tokens: &[String],
    merges: &[String],
    pre: Pre,
    added: &[AddedSpec<'_>],
) -> Result<Tokenizer> {
    let mut vocab: ahash::AHashMap<String, u32> = ahash::AHashMap::with_capacity(tokens.len());
    for (id, text) in tokens.iter().enumerate() {
        // The first id wins for a duplicated text, as in a `text -> id` lookup.
        vocab.entry(text.clone()).or_insert(id as u32);
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for (rank, m) in merges.iter().enumerate() {
        // llama.cpp splits at the first space after the first byte (a merge may start with a space).
        let split = m.as_bytes().iter().skip(1).position(|&b| b == b' ').map(|p| p + 1);
        let Some(pos) = split else {
            return Err(VocabError::bad_meta(format!("merge #{rank} `{m}` is not two tokens separated by a space")));
        };
        pairs.push((m[..pos].to_string(), m[pos + 1..].to_string()));
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .ignore_merges(pre.ignore_merges())
        .build()
        .map_err(|e| VocabError::bad_meta(format!("the BPE merges do not fit the vocabulary ({e})")))?;

    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for re in pre.regexes() {
        let split = Split::new(SplitPattern::Regex((*re).to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(VocabError::tokenizer)?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());

    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(Sequence::new(steps)));
    tok.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
    let added: Vec<AddedToken> = added
        .iter()
        .map(|a| AddedToken::from(a.text.to_string(), a.special).normalized(false))
        .collect();
    tok.add_tokens(&added);
    Ok(tok)
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes map to themselves, the others to
/// U+0100 and up, in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).expect("Latin-1 code point")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("code point below U+0200")
        };
    }
    table
}

/// Reverse of [`byte_to_char_table`].
pub(crate) fn char_to_byte_map() -> HashMap<char, u8> {
    byte_to_char_table().iter().enumerate().map(|(b, c)| (*c, b as u8)).collect()
}

/// The bytes a byte-level token stands for. A character outside the byte alphabet (only in
/// malformed vocabularies) is kept as its own UTF-8, so nothing is dropped.
pub(crate) fn byte_decode(text: &str, map: &HashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match map.get(&c) {
            Some(b) => out.push(*b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_with_gpt2_landmarks() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], 'Ā');
        let m = char_to_byte_map();
        assert_eq!(m.len(), 256);
        for b in 0..=255u8 {
            assert_eq!(m[&t[b as usize]], b);
        }
        assert_eq!(byte_decode("ĠhelloĊ", &m), b" hello\n");
    }

    #[test]
    fn pre_names_map_like_llama_cpp() {
        assert_eq!(Pre::from_gguf_name("smollm"), Some(Pre::Smollm));
        assert_eq!(Pre::from_gguf_name("qwen2"), Some(Pre::Qwen2));
        assert_eq!(Pre::from_gguf_name("llama-bpe"), Some(Pre::Llama3));
        assert_eq!(Pre::from_gguf_name("gpt-2"), Some(Pre::Gpt2));
        assert_eq!(Pre::from_gguf_name("default"), Some(Pre::Default));
        assert_eq!(Pre::from_gguf_name("no-such-thing"), None);
        assert!(Pre::Llama3.ignore_merges() && Pre::Llama3.default_add_bos());
        assert!(!Pre::Smollm.default_add_bos());
    }

    /// A tiny vocabulary: every byte, plus merges for "he", "ll", "hell", "hello", "Ġw".
    fn tiny(pre: Pre) -> Tokenizer {
        let table = byte_to_char_table();
        let mut tokens: Vec<String> = table.iter().map(|c| c.to_string()).collect();
        for t in ["he", "ll", "hell", "hello", "Ġw", "12"] {
            tokens.push(t.to_string());
        }
        tokens.push("<|end|>".to_string());
        let merges: Vec<String> = ["h e", "l l", "he ll", "hell o", "Ġ w", "1 2"].iter().map(|s| s.to_string()).collect();
        build_tokenizer(&tokens, &merges, pre, &[AddedSpec { text: "<|end|>", special: true }]).unwrap()
    }

    fn ids(tok: &Tokenizer, text: &str) -> Vec<u32> {
        tok.encode(text, false).unwrap().get_ids().to_vec()
    }

    #[test]
    fn merges_apply_in_rank_order_after_splitting() {
        let tok = tiny(Pre::Gpt2);
        // "hello" = 256+3, " w" = 256+4, "o" = byte 'o', "r"...
        let got = ids(&tok, "hello world");
        assert_eq!(got[0], 259);
        assert_eq!(got[1], 260);
        assert_eq!(got.len(), 6, "{got:?}"); // hello, Ġw, o, r, l, d
    }

    #[test]
    fn smollm_splits_every_digit_but_gpt2_keeps_runs() {
        // Token ids of single bytes equal the byte in the tiny vocabulary.
        assert_eq!(ids(&tiny(Pre::Gpt2), "12"), vec![261]);
        assert_eq!(ids(&tiny(Pre::Smollm), "12"), vec![b'1' as u32, b'2' as u32]);
    }

    #[test]
    fn every_pre_tokenizer_regex_compiles_and_splits() {
        for pre in [Pre::Default, Pre::Gpt2, Pre::Llama3, Pre::Qwen2, Pre::Smollm] {
            let tok = tiny(pre);
            let got = ids(&tok, "hello 1234 <a>");
            assert!(!got.is_empty(), "{pre:?}");
            assert_eq!(tok.decode(&got, false).unwrap(), "hello 1234 <a>", "{pre:?}");
        }
        // Llama 3 groups digits by three, Qwen2 splits them all, GPT-2 keeps the run.
        // ("12" is a token of the tiny vocabulary.)
        assert_eq!(ids(&tiny(Pre::Llama3), "1212"), vec![261, b'1' as u32, b'2' as u32]); // "121" | "2"
        assert_eq!(ids(&tiny(Pre::Qwen2), "1212").len(), 4);
        assert_eq!(ids(&tiny(Pre::Gpt2), "1212"), vec![261, 261]);
    }

    #[test]
    fn added_special_token_is_one_id() {
        assert_eq!(ids(&tiny(Pre::Gpt2), "he<|end|>"), vec![256, 262]);
    }
}
