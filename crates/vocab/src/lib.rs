//! Tokenizers built from a model's own files, and its chat template.
//!
//! [`Vocab`] turns text into token ids and back, with the same ids llama.cpp gives:
//! - from a GGUF file's `tokenizer.ggml.*` metadata ([`Vocab::from_gguf`], [`Vocab::from_gguf_path`]):
//!   byte-level BPE (`"gpt2"`, with llama.cpp's pre-tokenizer regexes for `smollm`, `qwen2`,
//!   `llama-bpe`, `gpt-2`, `default`) built as a `tokenizers::Tokenizer`, or SentencePiece
//!   (`"llama"`: Gemma, Llama 2) run by llama.cpp's score-ordered merge;
//! - from a Hugging Face folder ([`Vocab::from_hf_dir`]): its `tokenizer.json`, with BOS/EOS from
//!   `tokenizer_config.json`, `generation_config.json` and `config.json`.
//!
//! [`StreamDecoder`] turns generated ids into text as they come, never cutting a UTF-8
//! character in half. [`ChatTemplate`] renders the model's Jinja chat template (or a named
//! fallback when the model has none) with minijinja.
//!
//! Layout:
//! - `lib.rs`: [`Vocab`] (encode, decode, special ids) and [`VocabKind`];
//! - `gguf.rs`: reading the GGUF tokenizer keys; `hf.rs`: reading a Hugging Face folder;
//! - `bpe.rs`: byte-level BPE and its pre-tokenizers ([`Pre`]); `spm.rs`: SentencePiece merges;
//! - `special.rs`: cutting special tokens out of a text (llama.cpp's `parse_special`);
//! - `stream.rs`: [`StreamDecoder`]; `template.rs`: [`ChatTemplate`], [`Message`];
//! - `error.rs`: [`VocabError`].
//!
//! Typical use (the engine's chat turn):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::path::Path::new("model.gguf");
//! use vocab::{ChatTemplate, Message, StreamDecoder, Vocab};
//! let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
//! let content = candle_core::quantized::gguf_file::Content::read(&mut file)?;
//! let vocab = Vocab::from_gguf(&content)?;
//! let template = ChatTemplate::from_gguf(&content)?;
//! if let Some(notice) = template.fallback_notice() {
//!     eprintln!("{notice}"); // "This model has no chat template; using ChatML."
//! }
//! let prompt = template.render_for_model(&vocab, &[Message::user("Hi!")], true)?;
//! let ids = prompt.encode(&vocab)?; // BOS added only if the model wants it and the template did not write it
//! # let generated: Vec<u32> = ids.clone();
//! let mut stream = StreamDecoder::new(&vocab);
//! for id in generated {
//!     if vocab.is_eos(id) {
//!         break;
//!     }
//!     if let Some(text) = stream.push(id)? {
//!         print!("{text}");
//!     }
//! }
//! if let Some(rest) = stream.flush() {
//!     print!("{rest}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Where this crate knowingly differs from llama.cpp (token ids never do):
//! - `</s>` is a control token (as in llama.cpp) but does not end generation;
//! - a byte-level BPE GGUF without `bos_token_id` has no BOS (llama.cpp would pick id 11);
//! - `decode` drops a SentencePiece prefix space before the first word even after BOS, and
//!   does not apply llama.cpp's `clean_spaces` (which only the `gpt-2`/`llama-bpe`-family
//!   vocabularies turn on), so decoding is lossless.

mod bpe;
mod error;
mod gguf;
mod hf;
mod special;
mod spm;
mod stream;
mod template;

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;

pub use bpe::Pre;
pub use error::{Result, VocabError};
pub use stream::StreamDecoder;
pub use template::{ChatTemplate, Message, Prompt, FALLBACK_NAMES};

use gguf::{token_type, GgufTokenizer};
use special::{Fragment, Special, Specials};

/// Which tokenizer algorithm a [`Vocab`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// GGUF `"gpt2"`: byte-level BPE with the named pre-tokenizer.
    ByteLevelBpe { pre: Pre },
    /// GGUF `"llama"`: SentencePiece BPE with scores and `<0xNN>` byte fallback.
    SentencePiece,
    /// A Hugging Face `tokenizer.json`, run as it describes itself.
    TokenizerJson,
}

/// Token attributes, as llama.cpp keeps them.
pub(crate) mod attr {
    pub const NORMAL: u8 = 1;
    pub const UNKNOWN: u8 = 2;
    pub const CONTROL: u8 = 4;
    pub const USER_DEFINED: u8 = 8;
    pub const UNUSED: u8 = 16;
    pub const BYTE: u8 = 32;
}

/// Token texts llama.cpp treats as "end of generation" whatever the file says (its list,
/// less `</s>`, see [`CONTROL_NOT_EOG_NAMES`]).
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// llama.cpp also lists `</s>` as end of generation, which makes it a control token (so it
/// is cut out of text only with `parse_special`, as llama.cpp does). It is not an end of
/// generation here: in Qwen's and Gemma's vocabularies it is an HTML tag piece, and models
/// whose EOS really is `</s>` name it in `eos_token_id`.
const CONTROL_NOT_EOG_NAMES: &[&str] = &["</s>"];

/// Fill-in-the-middle pad/repo/file-separator tokens: llama.cpp also stops on these.
const FIM_EOG_NAMES: &[&str] =
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"];

/// Other fill-in-the-middle tokens llama.cpp forces to be control tokens.
const FIM_CONTROL_NAMES: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];

#[derive(Clone)]
enum Engine {
    /// A `tokenizers` pipeline for plain text (special tokens are cut out before it, so its
    /// own special-token parsing is switched off).
    Hf(Box<tokenizers::Tokenizer>),
    /// SentencePiece merges, with llama.cpp's space handling.
    Spm { spm: Box<spm::Spm>, add_space_prefix: bool },
}

impl Engine {
    /// Wraps a `tokenizers` pipeline that will only ever see plain text: special tokens are
    /// cut out by [`Specials`] first, so its own special-token parsing is switched off.
    fn hf(mut tok: tokenizers::Tokenizer) -> Engine {
        tok.set_encode_special_tokens(true);
        Engine::Hf(Box::new(tok))
    }
}

/// A model's tokenizer: text to ids and back, and its special ids. Cheap to share across
/// threads (`Send + Sync`); cloning copies the vocabulary.
#[derive(Clone)]
pub struct Vocab {
    kind: VocabKind,
    engine: Engine,
    texts: Vec<String>,
    attrs: Vec<u8>,
    /// The bytes each token stands for, back to back; token `i` is `pieces[offsets[i]..offsets[i+1]]`.
    pieces: Vec<u8>,
    offsets: Vec<usize>,
    specials: Specials,
    bos: Option<u32>,
    eos: Vec<u32>,
    add_bos: bool,
    pad: Option<u32>,
    unk: Option<u32>,
    /// Decoding drops one leading space: the one a "space prefix" put before the first word.
    strip_leading_space: bool,
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocab")
            .field("kind", &self.kind)
            .field("vocab_size", &self.texts.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("pad", &self.pad)
            .finish()
    }
}

/// What the loaders hand to [`Vocab::assemble`].
pub(crate) struct Parts {
    pub kind: VocabKind,
    pub engine: Engine,
    pub texts: Vec<String>,
    pub attrs: Vec<u8>,
    /// Per token, the bytes it decodes to.
    pub pieces: Vec<Vec<u8>>,
    /// Extra lstrip/rstrip flags for special tokens (Hugging Face added tokens), by id.
    pub strip: std::collections::HashMap<u32, (bool, bool)>,
    pub bos: Option<u32>,
    pub eos: Vec<u32>,
    pub add_bos: bool,
    pub pad: Option<u32>,
    pub unk: Option<u32>,
    pub strip_leading_space: bool,
}

impl Vocab {
    /// Builds the tokenizer described by a GGUF file's metadata (`tokenizer.ggml.*`).
    pub fn from_gguf(content: &Content) -> Result<Vocab> {
        let g = GgufTokenizer::read(content)?;
        Self::from_gguf_tokenizer(g)
    }

    /// Reads a GGUF file's metadata (not its tensors) and builds its tokenizer.
    pub fn from_gguf_path(path: &Path) -> Result<Vocab> {
        let content = gguf::read_content(path)?;
        Self::from_gguf(&content)
    }

    /// Loads a Hugging Face model folder's `tokenizer.json` (plus `tokenizer_config.json`,
    /// `generation_config.json` and `config.json` for BOS/EOS when present).
    pub fn from_hf_dir(dir: &Path) -> Result<Vocab> {
        hf::load(dir).map(Self::assemble)
    }

    fn from_gguf_tokenizer(g: GgufTokenizer) -> Result<Vocab> {
        let n = g.tokens.len();
        let mut attrs: Vec<u8> = g
            .types
            .iter()
            .map(|t| match *t {
                token_type::NORMAL => attr::NORMAL,
                token_type::UNKNOWN => attr::UNKNOWN,
                token_type::CONTROL => attr::CONTROL,
                token_type::USER_DEFINED => attr::USER_DEFINED,
                token_type::UNUSED => attr::UNUSED,
                token_type::BYTE => attr::BYTE,
                _ => 0,
            })
            .collect();
        let eog_named = mark_named_tokens(&g.tokens, &mut attrs);

        let spm_like = match g.model.as_str() {
            "gpt2" => false,
            "llama" => true,
            other => {
                return Err(VocabError::UnsupportedTokenizer {
                    what: format!("tokenizer.ggml.model = \"{other}\""),
                    supported_pre: bpe::SUPPORTED_PRE,
                })
            }
        };

        let (kind, default_add_bos, default_bos, default_eos, default_unk) = if spm_like {
            (VocabKind::SentencePiece, true, Some(1), Some(2), Some(0))
        } else {
            let name = g.pre.clone().unwrap_or_else(|| "default".to_string());
            let pre = Pre::from_gguf_name(&name).ok_or_else(|| VocabError::UnsupportedTokenizer {
                what: format!("byte-level BPE with pre-tokenizer \"{name}\""),
                supported_pre: bpe::SUPPORTED_PRE,
            })?;
            (VocabKind::ByteLevelBpe { pre }, pre.default_add_bos(), None, None, None)
        };
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let bos = g.bos.or(in_range(default_bos));
        let eos_main = g.eos.or(in_range(default_eos));
        let unk = g.unk.or(in_range(default_unk));
        let add_bos = g.add_bos.unwrap_or(default_add_bos);
        if add_bos && bos.is_none() {
            return Err(VocabError::bad_meta("it asks for a BOS token (`tokenizer.ggml.add_bos_token`) but names none"));
        }

        let mut eog: BTreeSet<u32> = eog_named;
        eog.extend([eos_main, g.eot, g.eom].into_iter().flatten());
        let mut eos: Vec<u32> = eos_main.into_iter().collect();
        eos.extend(eog.iter().copied().filter(|id| Some(*id) != eos_main));

        // llama.cpp: SentencePiece adds a space prefix unless the file says otherwise.
        let add_space_prefix = spm_like && g.add_space_prefix.unwrap_or(true);
        let pieces;
        let engine = match kind {
            VocabKind::ByteLevelBpe { pre } => {
                if g.merges.is_empty() {
                    return Err(VocabError::MissingTokenizer { key: "tokenizer.ggml.merges".into() });
                }
                let added: Vec<bpe::AddedSpec<'_>> = g
                    .tokens
                    .iter()
                    .zip(&attrs)
                    .filter(|(_, a)| **a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
                    .map(|(t, a)| bpe::AddedSpec { text: t, special: a & (attr::CONTROL | attr::UNKNOWN) != 0 })
                    .collect();
                let tok = bpe::build_tokenizer(&g.tokens, &g.merges, pre, &added)?;
                let map = bpe::char_to_byte_map();
                pieces = g
                    .tokens
                    .iter()
                    .zip(&attrs)
                    .map(|(t, a)| piece_for(t, *a, |t| bpe::byte_decode(t, &map)))
                    .collect();
                Engine::hf(tok)
            }
            _ => {
                let scores = g.scores.clone().unwrap_or_else(|| vec![0.0; n]);
                pieces = g
                    .tokens
                    .iter()
                    .zip(&attrs)
                    .map(|(t, a)| piece_for(t, *a, |t| t.replace('▁', " ").into_bytes()))
                    .collect();
                Engine::Spm { spm: Box::new(spm::Spm::new(&g.tokens, scores)), add_space_prefix }
            }
        };

        Ok(Self::assemble(Parts {
            kind,
            engine,
            texts: g.tokens,
            attrs,
            pieces,
            strip: Default::default(),
            bos,
            eos,
            add_bos,
            pad: g.pad,
            unk,
            strip_leading_space: add_space_prefix,
        }))
    }

    pub(crate) fn assemble(p: Parts) -> Vocab {
        let mut specials = Vec::new();
        for (id, (t, a)) in p.texts.iter().zip(&p.attrs).enumerate() {
            if a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0 {
                let (lstrip, rstrip) = p.strip.get(&(id as u32)).copied().unwrap_or((false, false));
                specials.push(Special {
                    text: t.clone(),
                    id: id as u32,
                    control: a & (attr::CONTROL | attr::UNKNOWN) != 0,
                    lstrip,
                    rstrip,
                });
            }
        }
        let mut pieces = Vec::new();
        let mut offsets = Vec::with_capacity(p.pieces.len() + 1);
        offsets.push(0);
        for piece in &p.pieces {
            pieces.extend_from_slice(piece);
            offsets.push(pieces.len());
        }
        Vocab {
            kind: p.kind,
            engine: p.engine,
            texts: p.texts,
            attrs: p.attrs,
            pieces,
            offsets,
            specials: Specials::new(specials),
            bos: p.bos,
            eos: p.eos,
            add_bos: p.add_bos,
            pad: p.pad,
            unk: p.unk,
            strip_leading_space: p.strip_leading_space,
        }
    }

    /// Turns text into token ids.
    ///
    /// - `add_bos`: put the BOS token first (pass [`Vocab::add_bos`] to do what the model
    ///   expects; an error if the model has no BOS token).
    /// - `parse_special`: special tokens written in the text (`<|im_start|>`, `<start_of_turn>`)
    ///   become their ids; with `false` they are tokenized as the plain characters they are
    ///   made of. User-defined tokens are always cut out, as llama.cpp does.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            out.push(self.bos.ok_or(VocabError::NoBosToken)?);
        }
        // llama.cpp: a SentencePiece text fragment gets a leading space when it opens the text
        // or follows a special token (if the model asks for a space prefix).
        let mut after_special = true;
        for frag in self.specials.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    self.encode_plain(t, after_special, &mut out)?;
                    after_special = false;
                }
            }
        }
        Ok(out)
    }

    fn encode_plain(&self, text: &str, after_special: bool, out: &mut Vec<u32>) -> Result<()> {
        match &self.engine {
            Engine::Hf(tok) => {
                let enc = tok.encode_fast(text, false).map_err(VocabError::tokenizer)?;
                out.extend_from_slice(enc.get_ids());
                Ok(())
            }
            Engine::Spm { spm, add_space_prefix } => {
                let mut escaped = String::with_capacity(text.len() + 8);
                if *add_space_prefix && after_special {
                    escaped.push('▁');
                }
                for c in text.chars() {
                    if c == ' ' {
                        escaped.push('▁');
                    } else {
                        escaped.push(c);
                    }
                }
                spm.tokenize(&escaped, out)
            }
        }
    }

    /// Turns ids back into text. Control tokens (BOS, EOS, `<|im_start|>` ...) are left out;
    /// bytes that do not form valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_inner(ids, false)
    }

    /// Like [`Vocab::decode`], but writes control tokens as their text.
    pub fn decode_with_special(&self, ids: &[u32]) -> Result<String> {
        self.decode_inner(ids, true)
    }

    fn decode_inner(&self, ids: &[u32], special: bool) -> Result<String> {
        let mut bytes = Vec::new();
        let mut first_text = self.strip_leading_space;
        for &id in ids {
            let piece = self.piece_bytes(id, special)?;
            // Drop the space a SentencePiece "add space prefix" put before the first word
            // (llama.cpp only looks at the very first token, even when it is BOS; here the
            // first token that has text counts, as in Hugging Face's decode).
            let strip = first_text && piece.first() == Some(&b' ');
            if !piece.is_empty() {
                first_text = false;
            }
            bytes.extend_from_slice(if strip { &piece[1..] } else { piece });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The bytes token `id` stands for (empty for control tokens unless `special`).
    pub fn piece_bytes(&self, id: u32, special: bool) -> Result<&[u8]> {
        let i = id as usize;
        if i >= self.texts.len() {
            return Err(VocabError::UnknownTokenId { id, vocab_size: self.texts.len() });
        }
        if !special && self.attrs[i] & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return Ok(&[]);
        }
        Ok(&self.pieces[self.offsets[i]..self.offsets[i + 1]])
    }

    /// The token's text as the vocabulary writes it (byte-level or "▁" form), if `id` exists.
    pub fn token_str(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(|s| s.as_str())
    }

    /// The id of a token given its exact vocabulary text (e.g. `"<|im_end|>"`, `"▁hi"`, `"Ġhi"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        match &self.engine {
            Engine::Hf(tok) => tok.token_to_id(text),
            Engine::Spm { spm, .. } => spm.token_id(text),
        }
    }

    /// Number of tokens, special ones included.
    pub fn vocab_size(&self) -> usize {
        self.texts.len()
    }

    /// Which algorithm this vocabulary runs.
    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    /// The beginning-of-text token, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// Every id that ends generation: the EOS token first, then end-of-turn tokens
    /// (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>` ...) — the set llama.cpp stops on.
    pub fn eos(&self) -> &[u32] {
        &self.eos
    }

    /// Whether the model expects a BOS token before a prompt (GGUF `tokenizer.ggml.add_bos_token`,
    /// else llama.cpp's default for the tokenizer type; `tokenizer_config.json`'s
    /// `add_bos_token` for a Hugging Face folder).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The padding token, if the model names one.
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }

    /// The unknown token, if the model names one.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }

    /// Whether generating `id` should end the reply.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos.contains(&id)
    }

    /// Whether `id` is a control token (BOS, EOS, turn markers): it has no text of its own.
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs.get(id as usize).is_some_and(|a| a & (attr::CONTROL | attr::UNKNOWN) != 0)
    }

    /// A standalone `tokenizers::Tokenizer` for this vocabulary, parsing special tokens in
    /// text (no BOS added). `None` for SentencePiece vocabularies, which run llama.cpp's own
    /// algorithm here. Prefer [`Vocab::encode`]: it matches llama.cpp exactly.
    pub fn to_hf_tokenizer(&self) -> Option<tokenizers::Tokenizer> {
        match &self.engine {
            Engine::Hf(tok) => {
                let mut t = (**tok).clone();
                t.set_encode_special_tokens(false);
                Some(t)
            }
            Engine::Spm { .. } => None,
        }
    }
}

/// llama.cpp's name-based fix-ups: end-of-generation and fill-in-the-middle tokens become
/// control tokens. Returns the ids of the end-of-generation ones.
fn mark_named_tokens(texts: &[String], attrs: &mut [u8]) -> BTreeSet<u32> {
    let mut eog = BTreeSet::new();
    for (id, t) in texts.iter().enumerate() {
        let t = t.as_str();
        let is_eog = EOG_NAMES.contains(&t) || FIM_EOG_NAMES.contains(&t);
        if is_eog || FIM_CONTROL_NAMES.contains(&t) || CONTROL_NOT_EOG_NAMES.contains(&t) {
            attrs[id] |= attr::CONTROL;
        }
        if is_eog {
            eog.insert(id as u32);
        }
    }
    eog
}

/// The bytes a GGUF token decodes to, following llama.cpp's `token_to_piece`.
fn piece_for(text: &str, a: u8, normal: impl Fn(&str) -> Vec<u8>) -> Vec<u8> {
    if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
        text.as_bytes().to_vec()
    } else if a & attr::NORMAL != 0 {
        normal(text)
    } else if a & attr::BYTE != 0 {
        parse_byte_token(text).map(|b| vec![b]).unwrap_or_else(|| text.as_bytes().to_vec())
    } else {
        // Unused or undefined tokens stand for nothing (llama.cpp).
        Vec::new()
    }
}

/// `<0xNN>` to the byte NN.
pub(crate) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Vocab>();
        assert_send_sync::<ChatTemplate>();
    }

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xff>"), Some(255));
        assert_eq!(parse_byte_token("<0x1>"), None);
        assert_eq!(parse_byte_token("0x41"), None);
    }

    /// A small SentencePiece vocabulary in GGUF form.
    fn spm_vocab(add_space_prefix: bool) -> Vocab {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into(), "<start_of_turn>".into(), "\n".into()];
        let mut types = vec![token_type::UNKNOWN, token_type::CONTROL, token_type::CONTROL, token_type::CONTROL, token_type::USER_DEFINED];
        let mut scores = vec![0.0, 0.0, 0.0, 0.0, 0.0];
        for b in 0..=255u32 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(token_type::BYTE);
            scores.push(0.0);
        }
        for (t, s) in [("▁", -1.0), ("h", -5.0), ("i", -5.0), ("▁h", -3.0), ("▁hi", -2.0), ("hi", -2.5)] {
            tokens.push(t.into());
            types.push(token_type::NORMAL);
            scores.push(s);
        }
        let g = GgufTokenizer {
            model: "llama".into(),
            pre: None,
            tokens,
            types,
            scores: Some(scores),
            merges: vec![],
            bos: Some(1),
            eos: Some(2),
            eot: None,
            eom: None,
            unk: Some(0),
            pad: None,
            add_bos: None,
            add_space_prefix: Some(add_space_prefix),
        };
        Vocab::from_gguf_tokenizer(g).unwrap()
    }

    #[test]
    fn spm_vocab_encodes_like_llama_cpp() {
        let v = spm_vocab(true);
        assert_eq!(v.kind(), VocabKind::SentencePiece);
        assert!(v.add_bos(), "SentencePiece defaults to adding BOS");
        let hi = v.token_id("▁hi").unwrap();
        // Leading space added at the start and after a special token.
        assert_eq!(v.encode("hi", true, true).unwrap(), vec![1, hi]);
        assert_eq!(v.encode("<start_of_turn>hi", false, true).unwrap(), vec![3, hi]);
        // The user-defined "\n" is always cut out, and (as in llama.cpp) counts as a special
        // token for the prefix space of the text after it.
        assert_eq!(v.encode("hi\nhi", false, false).unwrap(), vec![hi, 4, hi]);
        // "é" has no token: UTF-8 bytes C3 A9 via byte tokens (ids 5 + byte).
        assert_eq!(v.encode("é", false, false).unwrap(), vec![v.token_id("▁").unwrap(), 5 + 0xC3, 5 + 0xA9]);
        // Without parse_special the control token is spelled out with byte tokens / pieces.
        let plain = v.encode("<start_of_turn>", false, false).unwrap();
        assert!(!plain.contains(&3), "{plain:?}");
        assert_eq!(v.decode(&plain).unwrap(), "<start_of_turn>");
    }

    #[test]
    fn spm_decode_skips_control_and_strips_prefix_space() {
        let v = spm_vocab(true);
        let ids = v.encode("hi hi", true, false).unwrap();
        assert_eq!(v.decode(&ids).unwrap(), "hi hi");
        // With special tokens shown, the space belongs after "<s>" (as llama.cpp writes it).
        assert_eq!(v.decode_with_special(&ids).unwrap(), "<s> hi hi");
        assert!(v.is_eos(2) && !v.is_eos(1));
        assert!(matches!(v.decode(&[9999]), Err(VocabError::UnknownTokenId { id: 9999, .. })));
    }

    #[test]
    fn without_space_prefix_no_leading_marker() {
        let v = spm_vocab(false);
        let hi_bare = v.token_id("hi").unwrap();
        assert_eq!(v.encode("hi", false, true).unwrap(), vec![hi_bare]);
    }

    #[test]
    fn unsupported_model_is_a_clear_error() {
        let g = GgufTokenizer {
            model: "bert".into(),
            pre: None,
            tokens: vec!["a".into()],
            types: vec![1],
            scores: None,
            merges: vec![],
            bos: None,
            eos: None,
            eot: None,
            eom: None,
            unk: None,
            pad: None,
            add_bos: None,
            add_space_prefix: None,
        };
        let err = Vocab::from_gguf_tokenizer(g).unwrap_err();
        assert!(err.to_string().contains("bert"), "{err}");
    }
}
