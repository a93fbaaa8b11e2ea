//! Token ids must equal llama.cpp's for every entry of `tests/data/tokenizer-corpus.json`,
//! with and without special-token parsing, for the three GGUF fixtures. The references are
//! `tests/data/llamacpp/<key>/tokens.json`, written by `scripts/reference/make_llamacpp_refs.mjs`
//! from llama.cpp itself (`common_tokenize(vocab, text, add_special=false, parse_special)`).
//! Decoding the plain ids must also give llama.cpp's text back.

use fixtures::Fixture;
use serde_json::Value;
use vocab::Vocab;

fn check(fixture: Fixture) {
    let refs_path = fixtures::test_data(&format!("llamacpp/{}/tokens.json", fixture.key()));
    let text = std::fs::read_to_string(&refs_path)
        .unwrap_or_else(|e| panic!("llama.cpp reference {} is missing ({e})", refs_path.display()));
    let refs: Value = serde_json::from_str(&text).expect("reference JSON");
    let entries = refs["entries"].as_array().expect("entries");
    assert!(entries.len() >= 40, "the corpus shrank to {} entries", entries.len());

    let vocab = Vocab::from_gguf_path(&fixtures::path(fixture)).expect("tokenizer from GGUF");
    let tok = &refs["tokenizer"];
    assert_eq!(vocab.bos().map(u64::from), tok["bos_id"].as_u64(), "BOS id");
    assert_eq!(vocab.eos().first().map(|e| u64::from(*e)), tok["eos_id"].as_u64(), "EOS id");
    assert_eq!(Some(vocab.add_bos()), tok["add_bos"].as_bool(), "add_bos");

    let ids = |v: &Value| -> Vec<u32> { v.as_array().expect("ids").iter().map(|x| x.as_u64().unwrap() as u32).collect() };
    let mut mismatches = Vec::new();
    for e in entries {
        let text = e["text"].as_str().expect("text");
        let idx = e["index"].as_u64().unwrap_or(0);
        for (field, parse_special) in [("ids_plain", false), ("ids_special", true)] {
            let want = ids(&e[field]);
            let got = vocab.encode(text, false, parse_special).expect("encode");
            if got != want {
                mismatches.push(format!("#{idx} {field} {text:?}\n    llama.cpp: {want:?}\n    ours:      {got:?}"));
            }
        }
        if let Some(want) = e["decoded_plain"].as_str() {
            let got = vocab.decode(&ids(&e["ids_plain"])).expect("decode");
            if got != want {
                mismatches.push(format!("#{idx} decode {text:?}\n    llama.cpp: {want:?}\n    ours:      {got:?}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}: {} mismatches against llama.cpp:\n{}",
        fixture.key(),
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    check(Fixture::SmolLm2);
}

#[test]
fn qwen_coder_matches_llama_cpp() {
    check(Fixture::QwenCoder);
}

#[test]
fn gemma3_matches_llama_cpp() {
    check(Fixture::Gemma3);
}
