//! A Hugging Face folder made from a GGUF fixture (dequantized to f32
//! safetensors, with config.json and tokenizer.json) gives the same logits as
//! the GGUF itself.

use engine::sampling::log_softmax;
use engine::{Device, Model, WeightMode};
use fixtures::Fixture;

#[test]
fn safetensors_folder_from_smollm2_matches_the_gguf() {
    let gguf = Model::load_with(&fixtures::path(Fixture::SmolLm2), WeightMode::F32, &Device::Cpu).unwrap();
    let d = tempfile::tempdir().unwrap();
    engine::export::export_hf_folder(&gguf, d.path()).unwrap();
    for f in ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"] {
        assert!(d.path().join(f).is_file(), "{f} missing");
    }
    let hf = Model::load(d.path(), &Device::Cpu).unwrap();
    assert_eq!(hf.info.arch, gguf.info.arch);
    assert!(!hf.template.is_fallback(), "the chat template travels with the folder");

    for text in ["The capital of France is", "def fibonacci(n):\n    ", "Stay toasty, friend! Our Ethiopia Yirgacheffe is back."] {
        // Both tokenizers give the same ids ...
        let a = gguf.vocab.encode(text, gguf.vocab.add_bos(), true).unwrap();
        let b = hf.vocab.encode(text, hf.vocab.add_bos(), true).unwrap();
        assert_eq!(a, b, "{text:?}");
        // ... and the same logits (rotate-half rope on HF layout in both paths).
        let la = log_softmax(&gguf.next_logits(&a, &mut gguf.new_cache()).unwrap());
        let lb = log_softmax(&hf.next_logits(&b, &mut hf.new_cache()).unwrap());
        let worst = la.iter().zip(&lb).filter(|(x, _)| **x > -20.0).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{text:?}: logprobs differ by {worst}");
    }
}
