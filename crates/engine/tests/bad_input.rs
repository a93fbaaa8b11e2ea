//! Damaged or wrong files get a one-line error naming the file and what is wrong;
//! nothing panics.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use engine::{EngineError, Model};
use fixtures::Fixture;

fn load_err(path: &Path) -> EngineError {
    match Model::load(path, &Device::Cpu) {
        Ok(_) => panic!("{} loaded, but should have been refused", path.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "error should be one line: {msg}");
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(msg.contains(name.as_ref()), "error should name the file {name}: {msg}");
            e
        }
    }
}

fn write_gguf(path: &Path, arch: &str, with_tokenizer: bool) {
    let mut f = std::fs::File::create(path).unwrap();
    let t = QTensor::quantize(&Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(), GgmlDType::F32).unwrap();
    let arch_v = gguf_file::Value::String(arch.into());
    let n = gguf_file::Value::U32(1);
    let width = gguf_file::Value::U32(64);
    let model = gguf_file::Value::String("gpt2".into());
    let toks = gguf_file::Value::Array(vec![gguf_file::Value::String("a".into())]);
    let mut md: Vec<(&str, &gguf_file::Value)> = vec![
        ("general.architecture", &arch_v),
        ("llama.embedding_length", &width),
        ("llama.block_count", &n),
        ("llama.feed_forward_length", &n),
        ("llama.attention.head_count", &n),
    ];
    if with_tokenizer {
        md.push(("tokenizer.ggml.model", &model));
        md.push(("tokenizer.ggml.tokens", &toks));
    }
    gguf_file::write(&mut f, &md, &[("token_embd.weight", &t)]).unwrap();
}

#[test]
fn truncated_gguf() {
    let src = std::fs::read(fixtures::path(Fixture::SmolLm2)).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("half-downloaded.gguf");
    std::fs::write(&p, &src[..src.len() / 2]).unwrap();
    let e = load_err(&p);
    assert!(matches!(e, EngineError::Corrupt { .. }) && e.to_string().contains("truncated"), "{e}");
}

#[test]
fn corrupted_gguf_header() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("scrambled.gguf");
    let mut bytes = b"GGUF\x03\x00\x00\x00".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&p, bytes).unwrap();
    let e = load_err(&p);
    assert!(matches!(e, EngineError::Corrupt { .. }), "{e}");
}

#[test]
fn unknown_architecture() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mamba.gguf");
    write_gguf(&p, "mamba", true);
    let e = load_err(&p);
    assert!(matches!(e, EngineError::UnsupportedArch { ref arch, .. } if arch == "mamba"), "{e}");
}

#[test]
fn gguf_without_tokenizer() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("no-tokenizer.gguf");
    write_gguf(&p, "llama", false);
    let e = load_err(&p);
    assert!(matches!(e, EngineError::Tokenizer { .. }), "{e}");
}

/// A Hugging Face folder with a valid config and tokenizer from the fixtures.
fn hf_folder(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":128256}"#,
    )
    .unwrap();
    let tok = fixtures::path(Fixture::Llama3Tokenizer);
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tok.join(f), dir.join(f)).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn safetensors_header_with_lying_offsets() {
    let d = tempfile::tempdir().unwrap();
    let dir = hf_folder(d.path());
    let header = br#"{"model.embed_tokens.weight":{"dtype":"F32","shape":[1000,64],"data_offsets":[0,256000]}}"#;
    let mut f = std::fs::File::create(dir.join("model.safetensors")).unwrap();
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header).unwrap();
    f.write_all(&[0u8; 1024]).unwrap(); // far fewer bytes than the header promises
    drop(f);
    let e = load_err(&dir.join("model.safetensors"));
    assert!(matches!(e, EngineError::Corrupt { .. }), "{e}");
}

#[test]
fn hf_folder_without_tokenizer() {
    let d = tempfile::tempdir().unwrap();
    let dir = hf_folder(d.path());
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"\x02\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, EngineError::Tokenizer { .. }), "{e}");
}

#[test]
fn pickle_checkpoint_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("pytorch_model.bin");
    std::fs::write(&p, b"\x80\x02}q\x00(X\x06\x00\x00\x00weightq\x01").unwrap();
    let e = load_err(&p);
    assert!(matches!(e, EngineError::Pickle { .. }) && e.to_string().contains("safetensors"), "{e}");
}

#[test]
fn folder_that_is_not_a_model() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("holiday-photos");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("beach.jpg"), b"\xff\xd8\xff\xe0").unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, EngineError::NotAModel { .. }), "{e}");
}

#[test]
fn text_file_renamed_gguf() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("shopping-list.gguf");
    std::fs::write(&p, "eggs\nmilk\ncoffee beans\n").unwrap();
    let e = load_err(&p);
    assert!(matches!(e, EngineError::NotAModel { .. }) && e.to_string().contains("GGUF signature"), "{e}");
}
