//! The training forward pass and adapters on the real SmolLM2 model:
//! - differentiable ops (training) give the logits of the fused kernels (inference);
//! - gradient checkpointing gives the gradients of the plain graph;
//! - an adapter saved in PEFT's format loads back to the same logits, and merged
//!   into the weights (exported folder) too;
//! - an adapter made for another model is refused, not half-applied.

use candle_core::{Tensor, Var};
use engine::adapter::{self, AdapterConfig};
use engine::{BaseQuant, Device, Model, Pass, WeightMode};
use fixtures::Fixture;
use qlora::{GradSink, LoraConfig};
use rand::{Rng, SeedableRng};

const TEXT: &str = "Hi friend,\n\nYour beans are fresh from the drum. Stay toasty,\nMaggie";

fn lora() -> LoraConfig {
    LoraConfig { rank: 4, alpha: 8.0, dropout: 0.0, rslora: false }
}

fn targets() -> Vec<String> {
    adapter::ALL_LINEAR.iter().map(|s| s.to_string()).collect()
}

/// Attaches adapters whose B is random too, so that the adapter changes the output.
fn attach_random(model: &mut Model, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    adapter::attach_new(model, &lora(), &targets(), &mut rng).unwrap();
    for (name, v) in model.adapter_vars() {
        if name.contains("lora_B") {
            let n = v.elem_count();
            let vals: Vec<f32> = (0..n).map(|_| rng.random_range(-0.02f32..0.02)).collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &Device::Cpu).unwrap()).unwrap();
        }
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

fn train_logits(model: &Model, ids: &[u32], pass: &Pass) -> Tensor {
    let t = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let h = model.forward_train(&t, pass).unwrap().squeeze(0).unwrap();
    model.lm_head().forward(&h).unwrap()
}

#[test]
fn training_pass_matches_inference_and_checkpointing_matches_plain_gradients() {
    let path = fixtures::path(Fixture::SmolLm2);
    let reference = Model::load_with(&path, WeightMode::F32, &Device::Cpu).unwrap();
    let frozen = Model::load_with(&path, WeightMode::Frozen(BaseQuant::None), &Device::Cpu).unwrap();
    let ids = frozen.vocab.encode(TEXT, true, true).unwrap();

    // Same weights (f32), fused kernels vs differentiable ops.
    let want = reference.forward(&ids, &mut reference.new_cache(), true).unwrap();
    let got = train_logits(&frozen, &ids, &Pass { grad: true, ..Pass::default() });
    let d = max_diff(&want, &got);
    assert!(d < 2e-3, "training-pass logits differ from inference by {d}");

    // Gradients of every adapter matrix, with and without checkpointing.
    let mut model = frozen;
    attach_random(&mut model, 3);
    let vars: Vec<(String, Var)> = model.adapter_vars();
    let loss_of = |pass: &Pass| train_logits(&model, &ids, pass).sqr().unwrap().mean_all().unwrap();
    let plain = loss_of(&Pass { grad: true, ..Pass::default() }).backward().unwrap();
    let sink = GradSink::new();
    let ckpt_pass = Pass { grad: true, dropout_seed: None, checkpoint: Some(sink.clone()) };
    let ckpt = loss_of(&ckpt_pass).backward().unwrap();
    let mut compared = 0;
    for (name, v) in &vars {
        let a = plain.get(v).unwrap_or_else(|| panic!("{name}: no gradient without checkpointing"));
        let b = sink.take(v, &ckpt).unwrap().unwrap_or_else(|| panic!("{name}: no gradient with checkpointing"));
        let scale = a.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-12);
        let rel = max_diff(a, &b) / scale;
        assert!(rel < 1e-4, "{name}: checkpointed gradient differs (relative {rel})");
        assert!(scale > 1e-12, "{name}: gradient is zero");
        compared += 1;
    }
    assert_eq!(compared, 30 * 7 * 2, "every adapter matrix of the 30 layers");
}

#[test]
fn adapters_round_trip_through_peft_files_and_merge() {
    let path = fixtures::path(Fixture::SmolLm2);
    let mut trained = Model::load_with(&path, WeightMode::Frozen(BaseQuant::None), &Device::Cpu).unwrap();
    attach_random(&mut trained, 5);
    let ids = trained.vocab.encode(TEXT, true, true).unwrap();
    let want = train_logits(&trained, &ids, &Pass::inference());
    let base_only = Model::load_with(&path, WeightMode::F32, &Device::Cpu).unwrap();
    let base_logits = base_only.forward(&ids, &mut base_only.new_cache(), true).unwrap();
    assert!(max_diff(&want, &base_logits) > 1e-2, "the adapter must change the output for this test to mean anything");

    let dir = tempfile::tempdir().unwrap();
    let cfg = AdapterConfig::new(&lora(), &targets(), "SmolLM2-135M-Instruct");
    adapter::save(&trained, dir.path(), &cfg).unwrap();
    let names = candle_core::safetensors::load(dir.path().join(adapter::WEIGHTS_FILE), &Device::Cpu).unwrap();
    assert_eq!(names.len(), 30 * 7 * 2);
    assert!(names.contains_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    assert_eq!(names["base_model.model.model.layers.29.mlp.down_proj.lora_B.weight"].dims(), &[576, 4]);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join(adapter::CONFIG_FILE)).unwrap()).unwrap();
    assert_eq!(json["peft_type"], "LORA");
    assert_eq!(json["r"], 4);
    assert_eq!(json["lora_alpha"], 8.0);

    // Loaded onto a fresh model (inference weights in f32): same logits.
    let mut loaded = Model::load_with(&path, WeightMode::F32, &Device::Cpu).unwrap();
    let got_cfg = loaded.load_adapter(dir.path()).unwrap();
    assert_eq!(got_cfg.r, 4);
    let got = loaded.forward(&ids, &mut loaded.new_cache(), true).unwrap();
    let d = max_diff(&want, &got);
    assert!(d < 2e-3, "logits with the loaded adapter differ by {d}");

    // Merged into the weights and exported: the same model without any adapter.
    let merged_dir = tempfile::tempdir().unwrap();
    engine::export::export_hf_folder(&loaded, merged_dir.path()).unwrap();
    let merged = Model::load(merged_dir.path(), &Device::Cpu).unwrap();
    assert!(merged.linears().iter().all(|l| l.adapter.is_none()));
    let m = merged.forward(&ids, &mut merged.new_cache(), true).unwrap();
    let d = max_diff(&want, &m);
    assert!(d < 2e-3, "merged model's logits differ by {d}");
}

#[test]
fn adapters_for_another_model_are_refused() {
    let path = fixtures::path(Fixture::SmolLm2);
    let mut model = Model::load_with(&path, WeightMode::Frozen(BaseQuant::None), &Device::Cpu).unwrap();
    attach_random(&mut model, 7);
    let dir = tempfile::tempdir().unwrap();
    let cfg = AdapterConfig::new(&lora(), &targets(), "x");
    adapter::save(&model, dir.path(), &cfg).unwrap();

    // A tensor with a foreign name: refused with its name.
    let mut t = candle_core::safetensors::load(dir.path().join(adapter::WEIGHTS_FILE), &Device::Cpu).unwrap();
    let a = t.remove("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").unwrap();
    t.insert("base_model.model.model.layers.0.attn.c_attn.lora_A.weight".into(), a);
    candle_core::safetensors::save(&t, dir.path().join(adapter::WEIGHTS_FILE)).unwrap();
    let mut fresh = Model::load_with(&path, WeightMode::F32, &Device::Cpu).unwrap();
    let err = fresh.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(err.contains("only one of its two") || err.contains("match no layer"), "{err}");

    // Wrong shapes (another model's sizes): refused.
    let mut t = candle_core::safetensors::load(dir.path().join(adapter::WEIGHTS_FILE), &Device::Cpu).unwrap();
    t.retain(|k, _| k.contains("layers.1."));
    t.insert("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight".into(), Tensor::zeros((4, 896), candle_core::DType::F32, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&t, dir.path().join(adapter::WEIGHTS_FILE)).unwrap();
    let err = fresh.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(err.contains("another model"), "{err}");

    // Not an adapter folder at all.
    let err = fresh.load_adapter(&path).unwrap_err().to_string();
    assert!(!err.is_empty());
}
