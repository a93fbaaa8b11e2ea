//! Tokenizers built from the real GGUF fixtures: known ids, special-token parsing, lossless
//! round trips, streaming decode, errors.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use fixtures::Fixture;
use vocab::{Pre, StreamDecoder, Vocab, VocabError, VocabKind};

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures::test_data("tokenizer-corpus.json")).expect("corpus");
    serde_json::from_str(&text).expect("corpus JSON")
}

fn load(f: Fixture) -> Vocab {
    Vocab::from_gguf_path(&fixtures::path(f)).expect("tokenizer from GGUF")
}

#[test]
fn smollm2_known_ids() {
    let v = load(Fixture::SmolLm2);
    assert_eq!(v.kind(), VocabKind::ByteLevelBpe { pre: Pre::Smollm });
    assert_eq!(v.vocab_size(), 49_152);
    assert_eq!(v.token_str(1), Some("<|im_start|>"));
    assert_eq!(v.eos()[0], 2, "<|im_end|> is EOS");
    assert!(v.is_eos(2) && v.is_eos(0), "<|im_end|> and <|endoftext|> end generation");
    assert!(!v.add_bos());
    assert_eq!(v.encode("<|im_start|>user\nHi<|im_end|>", false, true).unwrap()[0], 1);
    let plain = v.encode("<|im_start|>", false, false).unwrap();
    assert!(!plain.contains(&1) && plain.len() > 1, "{plain:?}");
    // No prefix space (candle's from_gguf adds one): "Hello" alone is one token, not "ĠHello".
    let hello = v.encode("Hello", false, false).unwrap();
    assert_eq!(hello.len(), 1);
    assert_eq!(v.token_str(hello[0]), Some("Hello"));
    // Digits are split one by one.
    assert_eq!(v.encode("2024", false, false).unwrap().len(), 4);
}

#[test]
fn qwen_known_ids() {
    let v = load(Fixture::QwenCoder);
    assert_eq!(v.kind(), VocabKind::ByteLevelBpe { pre: Pre::Qwen2 });
    assert_eq!(v.encode("<|im_start|>", false, true).unwrap(), vec![151644]);
    assert_eq!(v.eos()[0], 151645);
    // <|im_end|>, <|endoftext|>, and the FIM pad/repo/file tokens llama.cpp also stops on;
    // not the HTML piece "</s>" (128247).
    assert_eq!(v.eos(), &[151645, 151643, 151662, 151663, 151664]);
    assert!(!v.is_eos(128247));
    assert_eq!(v.bos(), Some(151643));
    assert!(!v.add_bos());
    // <tool_call> is user-defined: cut out even without parse_special, like llama.cpp.
    assert_eq!(v.encode("<tool_call>", false, false).unwrap(), vec![151657]);
}

#[test]
fn gemma3_known_ids() {
    let v = load(Fixture::Gemma3);
    assert_eq!(v.kind(), VocabKind::SentencePiece);
    assert_eq!(v.vocab_size(), 262_144);
    assert_eq!(v.bos(), Some(2));
    assert!(v.add_bos());
    assert_eq!(v.eos()[0], 1);
    assert!(v.is_eos(106));
    assert_eq!(v.eos(), &[1, 106], "<eos>, <end_of_turn>; not \"</s>\" (212)");
    assert_eq!(v.encode("<start_of_turn>", false, true).unwrap(), vec![105]);
    assert_eq!(v.encode("hi", true, false).unwrap()[0], 2);
    // "\n" is a user-defined token (107) in Gemma's vocabulary.
    assert_eq!(v.encode("\n", false, false).unwrap(), vec![107]);
}

#[test]
fn round_trips_are_lossless() {
    for f in [Fixture::SmolLm2, Fixture::QwenCoder, Fixture::Gemma3] {
        let v = load(f);
        for text in corpus() {
            let ids = v.encode(&text, false, false).unwrap();
            assert_eq!(v.decode(&ids).unwrap(), text, "{}: {text:?} -> {ids:?}", f.key());
        }
    }
}

#[test]
fn stream_decoder_never_splits_a_character() {
    for f in [Fixture::SmolLm2, Fixture::QwenCoder, Fixture::Gemma3] {
        let v = load(f);
        for text in corpus() {
            let ids = v.encode(&text, false, false).unwrap();
            let mut dec = StreamDecoder::new(&v);
            let mut out = String::new();
            let mut held_back = 0;
            for &id in &ids {
                match dec.push(id).unwrap() {
                    Some(piece) => {
                        assert!(!piece.contains('\u{FFFD}') || text.contains('\u{FFFD}'), "{piece:?}");
                        out.push_str(&piece);
                    }
                    None => held_back += 1,
                }
            }
            assert_eq!(dec.flush(), None, "{}: bytes left over for {text:?}", f.key());
            assert_eq!(out, text, "{}: held back {held_back} times", f.key());
        }
    }
}

#[test]
fn stream_decoder_holds_back_partial_emoji() {
    // Byte-level BPE spells a rare emoji with several byte tokens.
    let v = load(Fixture::SmolLm2);
    let ids = v.encode("🧑‍💻", false, false).unwrap();
    let mut dec = StreamDecoder::new(&v);
    let outs: Vec<Option<String>> = ids.iter().map(|&id| dec.push(id).unwrap()).collect();
    assert!(outs.iter().any(|o| o.is_none()), "some token ends mid-character: {ids:?}");
    assert_eq!(outs.into_iter().flatten().collect::<String>(), "🧑‍💻");
}

#[test]
fn stream_decoder_skips_control_tokens() {
    let v = load(Fixture::SmolLm2);
    let mut dec = StreamDecoder::new(&v);
    assert_eq!(dec.push(2).unwrap(), None);
    assert!(dec.push(999_999).is_err());
}

fn content(metadata: HashMap<String, Value>) -> Content {
    Content { magic: VersionedMagic::GgufV3, metadata, tensor_infos: HashMap::new(), tensor_data_offset: 0 }
}

#[test]
fn gguf_without_tokenizer_says_so() {
    let err = Vocab::from_gguf(&content(HashMap::new())).unwrap_err();
    assert!(matches!(err, VocabError::MissingTokenizer { .. }));
    assert!(err.to_string().starts_with("This model file has no tokenizer inside"), "{err}");
}

#[test]
fn unknown_pre_tokenizer_is_named_in_the_error() {
    let mut m = HashMap::new();
    m.insert("tokenizer.ggml.model".into(), Value::String("gpt2".into()));
    m.insert("tokenizer.ggml.pre".into(), Value::String("klingon".into()));
    m.insert("tokenizer.ggml.tokens".into(), Value::Array(vec![Value::String("a".into())]));
    let err = Vocab::from_gguf(&content(m)).unwrap_err();
    assert!(matches!(err, VocabError::UnsupportedTokenizer { .. }));
    assert!(err.to_string().contains("klingon"), "{err}");
}

#[test]
fn not_a_gguf_file_is_reported() {
    let dir = std::env::temp_dir().join(format!("vocab-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("notes.gguf");
    std::fs::write(&p, b"this is not a model").unwrap();
    let err = Vocab::from_gguf_path(&p).unwrap_err();
    assert!(matches!(err, VocabError::NotGguf { .. }), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn construction_time_is_reported() {
    for f in [Fixture::SmolLm2, Fixture::QwenCoder, Fixture::Gemma3] {
        let t0 = std::time::Instant::now();
        let c = {
            let mut file = std::io::BufReader::new(std::fs::File::open(fixtures::path(f)).unwrap());
            Content::read(&mut file).unwrap()
        };
        let t1 = std::time::Instant::now();
        let v = Vocab::from_gguf(&c).unwrap();
        let t2 = std::time::Instant::now();
        eprintln!(
            "{}: read GGUF metadata {:.3}s, build tokenizer ({} tokens) {:.3}s",
            f.key(),
            (t1 - t0).as_secs_f64(),
            v.vocab_size(),
            (t2 - t1).as_secs_f64()
        );
    }
}
