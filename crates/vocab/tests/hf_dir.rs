//! Hugging Face folders (`tokenizer.json` + `tokenizer_config.json`), and a cross-check of the
//! GGUF byte-level BPE path against Hugging Face's own tokenizer for the same vocabulary.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use fixtures::Fixture;
use vocab::{Pre, Vocab, VocabError, VocabKind};

/// Hugging Face's NFC normalization (Qwen's tokenizer.json applies it; llama.cpp does not).
fn nfc(text: &str) -> String {
    use tokenizers::{NormalizedString, Normalizer};
    let mut n = NormalizedString::from(text);
    tokenizers::normalizers::unicode::NFC.normalize(&mut n).unwrap();
    n.get().to_string()
}

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures::test_data("tokenizer-corpus.json")).expect("corpus");
    serde_json::from_str(&text).expect("corpus JSON")
}

#[test]
fn llama3_folder_loads_with_bos_and_eos() {
    let v = Vocab::from_hf_dir(&fixtures::path(Fixture::Llama3Tokenizer)).unwrap();
    assert_eq!(v.kind(), VocabKind::TokenizerJson);
    assert_eq!(v.bos(), Some(128000));
    assert_eq!(v.eos()[0], 128001, "<|end_of_text|>");
    assert!(v.is_eos(128009), "<|eot_id|> ends a turn");
    assert_eq!(v.encode("<|start_header_id|>", false, true).unwrap(), vec![128006]);
    assert!(!v.encode("<|start_header_id|>", false, false).unwrap().contains(&128006));
    let ids = v.encode("Hello world", true, true).unwrap();
    assert_eq!(ids[0], 128000);
    assert_eq!(v.decode(&ids).unwrap(), "Hello world");
}

#[test]
fn qwen3_folder_loads() {
    let v = Vocab::from_hf_dir(&fixtures::path(Fixture::Qwen3Tokenizer)).unwrap();
    assert_eq!(v.bos(), None, "Qwen3 has no BOS token");
    assert!(!v.add_bos());
    assert_eq!(v.eos()[0], 151645, "<|im_end|>");
    assert_eq!(v.encode("<|im_start|>user", false, true).unwrap()[0], 151644);
    assert!(matches!(v.encode("x", true, true), Err(VocabError::NoBosToken)));
    for text in corpus() {
        let ids = v.encode(&text, false, false).unwrap();
        // tokenizer.json normalizes to NFC first, so decomposed accents come back composed.
        assert_eq!(v.decode(&ids).unwrap(), nfc(&text));
    }
}

#[test]
fn folder_without_tokenizer_json_says_what_to_do() {
    let dir = std::env::temp_dir().join(format!("vocab-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Vocab::from_hf_dir(&dir).unwrap_err();
    assert!(matches!(err, VocabError::MissingTokenizerJson { .. }));
    assert!(err.to_string().contains("has no tokenizer.json"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A GGUF-style `Content` holding the vocabulary of a `tokenizer.json` (tokens by id, merges,
/// added special tokens as control tokens), as llama.cpp's converter would write it.
fn gguf_from_tokenizer_json(dir: &Path, pre: &str) -> Content {
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
    let mut by_id: Vec<(u64, String, i32)> = j["model"]["vocab"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, id)| (id.as_u64().unwrap(), t.clone(), 1))
        .collect();
    for a in j["added_tokens"].as_array().unwrap() {
        let id = a["id"].as_u64().unwrap();
        let ty = if a["special"].as_bool().unwrap() { 3 } else { 4 };
        match by_id.iter_mut().find(|e| e.0 == id) {
            Some(e) => e.2 = ty,
            None => by_id.push((id, a["content"].as_str().unwrap().to_string(), ty)),
        }
    }
    by_id.sort();
    for (i, e) in by_id.iter().enumerate() {
        assert_eq!(e.0, i as u64, "ids are dense");
    }
    let merges: Vec<Value> = j["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(p) => Value::String(format!("{} {}", p[0].as_str().unwrap(), p[1].as_str().unwrap())),
            other => panic!("merge {other}"),
        })
        .collect();
    let mut m = HashMap::new();
    m.insert("tokenizer.ggml.model".to_string(), Value::String("gpt2".into()));
    m.insert("tokenizer.ggml.pre".to_string(), Value::String(pre.into()));
    m.insert("tokenizer.ggml.tokens".to_string(), Value::Array(by_id.iter().map(|e| Value::String(e.1.clone())).collect()));
    m.insert("tokenizer.ggml.token_type".to_string(), Value::Array(by_id.iter().map(|e| Value::I32(e.2)).collect()));
    m.insert("tokenizer.ggml.merges".to_string(), Value::Array(merges));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap()).unwrap();
    for (key, gguf_key) in [("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id")] {
        if let Some(text) = config[key].as_str() {
            let id = by_id.iter().position(|e| e.1 == text).unwrap();
            m.insert(gguf_key.to_string(), Value::U32(id as u32));
        }
    }
    Content { magic: VersionedMagic::GgufV3, metadata: m, tensor_infos: HashMap::new(), tensor_data_offset: 0 }
}

/// Encodes the corpus with the GGUF-built vocabulary and with Hugging Face's tokenizer.json;
/// returns the entries that differ. The GGUF path gets the text after tokenizer.json's own
/// normalizer (NFC for Qwen), which GGUF files do not carry.
fn cross_check(fixture: Fixture, pre: &str, want_pre: Pre, normalize: fn(&str) -> String) -> Vec<String> {
    let dir = fixtures::path(fixture);
    let from_gguf = Vocab::from_gguf(&gguf_from_tokenizer_json(&dir, pre)).unwrap();
    assert_eq!(from_gguf.kind(), VocabKind::ByteLevelBpe { pre: want_pre });
    let hf = Vocab::from_hf_dir(&dir).unwrap();
    let mut diffs = Vec::new();
    for text in corpus() {
        for parse_special in [false, true] {
            let a = from_gguf.encode(&normalize(&text), false, parse_special).unwrap();
            let b = hf.encode(&text, false, parse_special).unwrap();
            if a != b {
                diffs.push(format!("{text:?} (parse_special={parse_special})\n    gguf path: {a:?}\n    tokenizer.json: {b:?}"));
            }
        }
    }
    diffs
}

#[test]
fn llama3_gguf_path_matches_hugging_face() {
    let diffs = cross_check(Fixture::Llama3Tokenizer, "llama-bpe", Pre::Llama3, |t| t.to_string());
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

#[test]
fn qwen3_gguf_path_matches_hugging_face() {
    let diffs = cross_check(Fixture::Qwen3Tokenizer, "qwen2", Pre::Qwen2, nfc);
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// A SentencePiece-style tokenizer.json (Llama 2 shape: `Prepend("▁")` normalizer, BPE with
/// byte fallback, `<0xNN>` byte tokens).
const SPM_TOKENIZER_JSON: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
  ]},
  "pre_tokenizer": null, "post_processor": null,
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}
  ]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "▁": 5, "h": 6, "i": 7, "▁h": 8, "▁hi": 9},
    "merges": ["▁ h", "▁h i"]}
}"#;

#[test]
fn spm_style_tokenizer_json_decodes_bytes_and_drops_prefix_space() {
    let dir = std::env::temp_dir().join(format!("vocab-spm-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokenizer.json"), SPM_TOKENIZER_JSON).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true}"#)
        .unwrap();
    let v = Vocab::from_hf_dir(&dir).unwrap();
    assert_eq!(v.bos(), Some(1));
    assert!(v.add_bos());
    assert_eq!(v.eos(), &[2]);
    let ids = v.encode("hi é", true, true).unwrap();
    assert_eq!(ids, vec![1, 9, 5, 3, 4], "BOS, ▁hi, ▁, then é as two byte tokens");
    assert_eq!(v.decode(&ids).unwrap(), "hi é");
    // Streaming holds the first byte of "é" back.
    let mut dec = vocab::StreamDecoder::new(&v);
    let outs: Vec<Option<String>> = ids.iter().map(|&i| dec.push(i).unwrap()).collect();
    assert_eq!(outs, vec![None, Some(" hi".into()), Some(" ".into()), None, Some("é".into())]);
    std::fs::remove_dir_all(&dir).ok();
}
