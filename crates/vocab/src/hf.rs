//! Loading a Hugging Face model folder: `tokenizer.json` plus the BOS/EOS facts spread over
//! `tokenizer_config.json`, `generation_config.json` and `config.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::error::{Result, VocabError};
use crate::{attr, bpe, mark_named_tokens, parse_byte_token, Engine, Parts, VocabKind};

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub(crate) fn read_json(path: &Path) -> Result<Option<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(VocabError::Io { path: path.to_path_buf(), source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| VocabError::BadJson { path: path.to_path_buf(), message: e.to_string() })
}

/// A token named in `tokenizer_config.json`: a string or `{"content": "..."}`.
pub(crate) fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(|s| s.to_string()),
        _ => None,
    }
}

/// Integer ids under `key` (a number or a list of numbers).
fn ids(v: Option<&Value>, key: &str) -> Vec<u32> {
    match v.and_then(|v| v.get(key)) {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).filter_map(|n| u32::try_from(n).ok()).collect(),
        _ => Vec::new(),
    }
}

/// How a `tokenizer.json` turns token texts back into bytes.
enum PieceRule {
    /// GPT-2 byte alphabet.
    ByteLevel,
    /// SentencePiece style: "▁" is a space, `<0xNN>` is a byte.
    Metaspace,
    /// Neither: ask the tokenizer's decoder token by token.
    Decoder,
}

fn piece_rule(tok: &Tokenizer) -> PieceRule {
    let Some(decoder) = tok.get_decoder() else { return PieceRule::Decoder };
    let json = serde_json::to_string(decoder).unwrap_or_default();
    if json.contains("\"ByteLevel\"") {
        PieceRule::ByteLevel
    } else if json.contains("\"ByteFallback\"") || json.contains("\"Metaspace\"") || json.contains("\u{2581}") {
        PieceRule::Metaspace
    } else {
        PieceRule::Decoder
    }
}

pub(crate) fn load(dir: &Path) -> Result<Parts> {
    let tok_path: PathBuf = dir.join("tokenizer.json");
    if !tok_path.is_file() {
        return Err(VocabError::MissingTokenizerJson { dir: dir.to_path_buf() });
    }
    let tok = Tokenizer::from_file(&tok_path)
        .map_err(|e| VocabError::Tokenizer(format!("{} could not be loaded: {e}", tok_path.display())))?;
    let config = read_json(&dir.join("tokenizer_config.json"))?;
    let generation = read_json(&dir.join("generation_config.json"))?;
    let model_config = read_json(&dir.join("config.json"))?;

    let n = tok.get_vocab_size(true);
    let added = tok.get_added_tokens_decoder();
    let mut texts = Vec::with_capacity(n);
    let mut attrs = Vec::with_capacity(n);
    for id in 0..n as u32 {
        match tok.id_to_token(id) {
            Some(t) => {
                attrs.push(match added.get(&id) {
                    Some(a) if a.special => attr::CONTROL,
                    Some(_) => attr::USER_DEFINED,
                    None => attr::NORMAL,
                });
                texts.push(t);
            }
            None => {
                // A hole in the id range: a token that stands for nothing.
                texts.push(format!("[MISSING_{id}]"));
                attrs.push(attr::UNUSED);
            }
        }
    }
    let eog_named = mark_named_tokens(&texts, &mut attrs);
    let strip: HashMap<u32, (bool, bool)> = added.iter().map(|(id, a)| (*id, (a.lstrip, a.rstrip))).collect();

    let rule = piece_rule(&tok);
    let byte_map = bpe::char_to_byte_map();
    let mut pieces = Vec::with_capacity(n);
    for (id, (t, a)) in texts.iter().zip(&attrs).enumerate() {
        let piece = if a & (attr::CONTROL | attr::USER_DEFINED) != 0 {
            t.as_bytes().to_vec()
        } else if a & attr::UNUSED != 0 {
            Vec::new()
        } else {
            match rule {
                PieceRule::ByteLevel => bpe::byte_decode(t, &byte_map),
                PieceRule::Metaspace => match parse_byte_token(t) {
                    Some(b) => vec![b],
                    None => t.replace('\u{2581}', " ").into_bytes(),
                },
                PieceRule::Decoder => tok.decode(&[id as u32], false).map_err(VocabError::tokenizer)?.into_bytes(),
            }
        };
        pieces.push(piece);
    }

    let id_of = |name: &str| -> Option<u32> { token_text(config.as_ref().and_then(|c| c.get(name))).and_then(|t| tok.token_to_id(&t)) };
    let bos = id_of("bos_token")
        .or_else(|| ids(generation.as_ref(), "bos_token_id").first().copied())
        .or_else(|| ids(model_config.as_ref(), "bos_token_id").first().copied())
        .filter(|&i| (i as usize) < n);
    let eos_main = id_of("eos_token")
        .or_else(|| ids(generation.as_ref(), "eos_token_id").first().copied())
        .or_else(|| ids(model_config.as_ref(), "eos_token_id").first().copied())
        .filter(|&i| (i as usize) < n);
    let pad = id_of("pad_token")
        .or_else(|| ids(generation.as_ref(), "pad_token_id").first().copied())
        .filter(|&i| (i as usize) < n);
    let unk = id_of("unk_token");

    let mut eog: BTreeSet<u32> = eog_named;
    eog.extend(ids(generation.as_ref(), "eos_token_id"));
    eog.extend(ids(model_config.as_ref(), "eos_token_id"));
    eog.retain(|&i| (i as usize) < n);
    let mut eos: Vec<u32> = eos_main.into_iter().collect();
    eos.extend(eog.iter().copied().filter(|id| Some(*id) != eos_main));

    // `add_bos_token` when the config says; otherwise whether the tokenizer's own
    // post-processor puts BOS in front.
    let add_bos = match config.as_ref().and_then(|c| c.get("add_bos_token")).and_then(|v| v.as_bool()) {
        Some(b) => b,
        None => match bos {
            Some(b) => tok.encode("", true).map(|e| e.get_ids().first() == Some(&b)).unwrap_or(false),
            None => false,
        },
    };
    if add_bos && bos.is_none() {
        return Err(VocabError::BadJson {
            path: dir.join("tokenizer_config.json"),
            message: "add_bos_token is true but no bos_token is named".into(),
        });
    }

    // SentencePiece-style tokenizer.json files that put "▁" before the text (Llama 2's
    // `Prepend` normalizer, a Metaspace pre-tokenizer that prepends): decoding drops that space.
    let normalizer = serde_json::to_string(&tok.get_normalizer()).unwrap_or_default();
    let pre_tokenizer = serde_json::to_string(&tok.get_pre_tokenizer()).unwrap_or_default();
    let strip_leading_space = normalizer.contains("\"Prepend\"")
        || (pre_tokenizer.contains("\"Metaspace\"")
            && (pre_tokenizer.contains("\"prepend_scheme\":\"always\"")
                || pre_tokenizer.contains("\"prepend_scheme\":\"first\"")
                || pre_tokenizer.contains("\"add_prefix_space\":true")));

    Ok(Parts {
        kind: VocabKind::TokenizerJson,
        engine: Engine::hf(tok),
        texts,
        attrs,
        pieces,
        strip,
        bos,
        eos,
        add_bos,
        pad,
        unk,
        strip_leading_space,
    })
}
