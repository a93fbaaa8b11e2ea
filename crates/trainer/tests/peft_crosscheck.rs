//! Our trainer against PyTorch + transformers + PEFT on the same weights (the
//! SmolLM2 GGUF, dequantized to f32 by both), the same data, the same initial
//! adapter, the same learning rates: losses, gradient norms and the trained
//! adapter agree; and the adapter we write loads in PEFT and gives our logits.
//!
//! Needs the reference venv: `scripts/reference/torch/setup.sh` (the test
//! fails, with that command, when it is missing; CI installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use engine::adapter;
use fixtures::Fixture;
use serde_json::{json, Value};
use trainer::data::{self, Batch};
use trainer::{Event, Length, TrainConfig, Trainer};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RESIDENCY_TORCH_PY") {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("RESIDENCY_TORCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/residency/venv-torch"));
    let py = venv.join("bin/python");
    assert!(py.is_file(), "the PyTorch reference is not installed ({} is missing): run scripts/reference/torch/setup.sh", py.display());
    py
}

fn reference(args: &[&str]) {
    let script = fixtures::repo_root().join("scripts/reference/torch/peft_reference.py");
    let out = Command::new(python()).arg(script).args(args).output().expect("run the PyTorch reference");
    assert!(
        out.status.success(),
        "peft_reference.py {} failed:\n{}\n{}",
        args[0],
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn training_matches_pytorch_peft_and_our_adapter_loads_in_peft() {
    let gguf = fixtures::path(Fixture::SmolLm2);
    let dir = tempfile::tempdir().unwrap();
    let data = fixtures::repo_root().join("demo/coffee-roaster/chats.jsonl");
    let mut cfg = TrainConfig::new(gguf.clone(), data.clone(), dir.path().join("ours"));
    cfg.quant = engine::BaseQuant::None; // the same f32 weights as transformers' dequantized GGUF
    cfg.length = Length::Steps(4);
    cfg.seq_len = 64;
    cfg.batch = 1;
    cfg.grad_accum = 2;
    cfg.rank = 8;
    cfg.alpha = 16.0;
    cfg.lr = 1e-3;
    cfg.warmup_steps = 1;
    cfg.max_grad_norm = Some(1.0);
    cfg.adamw.weight_decay = 0.01;
    cfg.checkpoint_every = 0;
    cfg.eval_every = 0;
    let steps = 4;

    let mut trainer = Trainer::new(cfg.clone(), false).unwrap();
    // The initial adapter (A random, B zero, as PEFT initialises), for PyTorch to start from.
    let init = dir.path().join("init");
    let acfg = adapter::AdapterConfig::new(&cfg.lora_config(), &cfg.targets, &gguf.display().to_string());
    adapter::save(&trainer.model, &init, &acfg).unwrap();

    // The micro-batches the trainer will see, rebuilt from the same public pieces.
    let (examples, _) = data::load(&data, &trainer.model.vocab, &trainer.model.template, cfg.seq_len).unwrap();
    let order = data::epoch_batches(&examples, cfg.batch, cfg.seed, 0);
    assert!(order.len() >= steps * cfg.grad_accum);
    let pad = trainer.model.vocab.eos()[0];
    let mut metrics = Vec::new();
    trainer
        .run(&mut |e| if let Event::Step(m) = e { metrics.push(m.clone()) }, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(metrics.len(), steps);

    let mut json_steps = Vec::new();
    for (s, m) in metrics.iter().enumerate() {
        let micro: Vec<Value> = (0..cfg.grad_accum)
            .map(|k| {
                let b = Batch::of(&[&examples[order[s * cfg.grad_accum + k][0]]], pad);
                json!({"input_ids": b.ids, "labels": b.labels})
            })
            .collect();
        json_steps.push(json!({"lr": m.lr, "micro_batches": micro}));
    }
    let batches = json!({
        "steps": json_steps,
        "adamw": {"beta1": cfg.adamw.beta1, "beta2": cfg.adamw.beta2, "eps": cfg.adamw.eps, "weight_decay": cfg.adamw.weight_decay},
        "max_grad_norm": cfg.max_grad_norm,
    });
    let batches_path = dir.path().join("batches.json");
    std::fs::write(&batches_path, serde_json::to_vec(&batches).unwrap()).unwrap();
    let torch_out = dir.path().join("torch");
    reference(&[
        "train",
        "--gguf",
        gguf.to_str().unwrap(),
        "--init-adapter",
        init.to_str().unwrap(),
        "--batches",
        batches_path.to_str().unwrap(),
        "--out",
        torch_out.to_str().unwrap(),
    ]);

    // Losses and gradient norms, step by step.
    let theirs = read_json(&torch_out.join("losses.json"));
    println!("step  loss ours / torch          grad norm ours / torch");
    for (s, m) in metrics.iter().enumerate() {
        let t = &theirs["steps"][s];
        let (tl, tg) = (t["loss"].as_f64().unwrap(), t["grad_norm"].as_f64().unwrap());
        println!("{:>4}  {:.6} / {:.6}   {:.6} / {:.6}", s + 1, m.loss, tl, m.grad_norm, tg);
        assert!((m.loss - tl).abs() / tl < 1e-4, "step {}: loss {} vs PyTorch {}", s + 1, m.loss, tl);
        assert!((m.grad_norm - tg).abs() / tg < 1e-3, "step {}: grad norm {} vs PyTorch {}", s + 1, m.grad_norm, tg);
    }

    // The trained adapters.
    let load = |p: PathBuf| candle_core::safetensors::load(p, &Device::Cpu).unwrap();
    let ours = load(dir.path().join("ours/adapter_model.safetensors"));
    let torch = load(torch_out.join("adapter/adapter_model.safetensors"));
    let start = load(init.join("adapter_model.safetensors"));
    assert_eq!(ours.len(), torch.len());
    // Adam divides by the gradient's running RMS, so an element whose gradient is
    // near zero (a few of the 3.5 million) can move by ±lr in one implementation
    // and not the other; what must agree is each tensor's update as a whole.
    let (mut worst_tensor, mut worst_name, mut sum_diff, mut sum_update) = (0f64, String::new(), 0f64, 0f64);
    for (name, o) in &ours {
        let t = torch.get(name).unwrap_or_else(|| panic!("PyTorch's adapter lacks {name}"));
        let update = (o - &start[name]).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let diff = (o - t).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        if diff / update.max(1e-30) > worst_tensor {
            worst_tensor = diff / update.max(1e-30);
            worst_name = name.clone();
        }
        sum_diff += diff;
        sum_update += update;
    }
    let total = sum_diff / sum_update;
    println!("adapter after {steps} steps: sum |ours - torch| / sum |update| = {total:.2e} overall, {worst_tensor:.2e} for the worst tensor ({worst_name})");
    assert!(total < 1e-3, "adapters differ by {total:.2e} of the update");
    assert!(worst_tensor < 2e-2, "{worst_name} differs by {worst_tensor:.2e} of its update");

    // Our adapter in PEFT gives our logits.
    let text = "Hi friend, is the Ethiopia Yirgacheffe fresh from the drum?";
    let mut model = engine::Model::load_with(&gguf, engine::WeightMode::F32, &Device::Cpu).unwrap();
    model.load_adapter(&dir.path().join("ours")).unwrap();
    let ids = model.vocab.encode(text, true, true).unwrap();
    let ids_path = dir.path().join("ids.json");
    std::fs::write(&ids_path, serde_json::to_vec(&json!({"sequences": [ids.clone()]})).unwrap()).unwrap();
    let logits_path = dir.path().join("logits.json");
    let ours_dir = dir.path().join("ours");
    reference(&[
        "logits",
        "--gguf",
        gguf.to_str().unwrap(),
        "--adapter",
        ours_dir.to_str().unwrap(),
        "--ids",
        ids_path.to_str().unwrap(),
        "--out",
        logits_path.to_str().unwrap(),
    ]);
    let theirs = read_json(&logits_path);
    let seq = &theirs["sequences"][0];
    let ours = model.forward(&ids, &mut model.new_cache(), true).unwrap();
    let last: Vec<f32> = ours.get(ids.len() - 1).unwrap().to_vec1().unwrap();
    let their_last: Vec<f32> = seq["last_logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let d = last.iter().zip(&their_last).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("last-position logits, ours (engine + adapter) vs PEFT: max |diff| = {d:.2e}");
    assert!(d < 2e-3, "logits differ by {d}");
    let argmax: Vec<u32> = ours.argmax(1).unwrap().to_vec1().unwrap();
    let their_argmax: Vec<u32> = seq["argmax"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(argmax, their_argmax);
}
