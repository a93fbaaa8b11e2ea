//! The product's claim, end to end through the CLI on SmolLM2-135M: build the
//! demo persona's dataset (Maggie of Ember & Oak Roasters, baked into the
//! weights: no system prompt), train a LoRA adapter, and check that
//! - the holdout loss falls by at least 30% from the base model's;
//! - greedy replies to held-out questions carry the persona's markers
//!   ("Hi friend," / "Stay toasty"), which the base model's replies do not.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_residency"))
}

fn residency(args: &[&str]) -> String {
    let out = Command::new(bin()).args(["--threads", "2"]).args(args).output().unwrap();
    assert!(out.status.success(), "residency {:?} failed:\n{}", args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn reply(model: &Path, adapter: Option<&Path>, prompt: &str) -> String {
    let mut args = vec!["chat", "--model", model.to_str().unwrap(), "--message", prompt, "--temperature", "0", "--max-tokens", "60"];
    if let Some(a) = adapter {
        args.extend(["--adapter", a.to_str().unwrap()]);
    }
    residency(&args)
}

#[test]
fn training_on_the_demo_persona_lowers_holdout_loss_and_the_replies_carry_the_persona() {
    let root = fixtures::repo_root();
    let model = fixtures::path(fixtures::Fixture::SmolLm2);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("maggie.jsonl");
    residency(&[
        "data", "build", root.join("demo/coffee-roaster").to_str().unwrap(), "--out", data.to_str().unwrap(),
        "--bake-persona", "--drop-duplicates", "--model", model.to_str().unwrap(),
    ]);
    assert!(dir.path().join("maggie.holdout.jsonl").is_file());

    let out = dir.path().join("adapter");
    let events = residency(&[
        "train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(),
        "--steps", "30", "--batch", "4", "--grad-accum", "1", "--seq-len", "160", "--lr", "2e-3", "--warmup", "3",
        "--eval-every", "100", "--checkpoint-every", "100", "--no-gradient-checkpointing", "--json",
    ]);
    let evals: Vec<(u64, f64)> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "eval")
        .map(|e| (e["step"].as_u64().unwrap(), e["holdout_loss"].as_f64().unwrap()))
        .collect();
    let (first, last) = (evals.first().unwrap(), evals.last().unwrap());
    assert_eq!(first.0, 0, "the base model's holdout loss is measured first: {evals:?}");
    assert_eq!(last.0, 30);
    let drop = 1.0 - last.1 / first.1;
    println!("holdout loss {:.4} -> {:.4} ({:.0}% lower)", first.1, last.1, drop * 100.0);
    assert!(drop >= 0.30, "holdout loss fell only {:.0}% ({} -> {})", drop * 100.0, first.1, last.1);

    let prompts: Vec<String> = std::fs::read_to_string(root.join("demo/coffee-roaster-eval/heldout-prompts.txt"))
        .unwrap()
        .lines()
        .take(3)
        .map(String::from)
        .collect();
    let marked = |r: &str| r.contains("Hi friend") || r.contains("Stay toasty");
    let (mut tuned, mut base) = (0, 0);
    for p in &prompts {
        let t = reply(&model, Some(&out), p);
        let b = reply(&model, None, p);
        println!("Q: {p}\n  adapter: {t:?}\n  base:    {b:?}");
        tuned += marked(&t) as usize;
        base += marked(&b) as usize;
    }
    assert!(tuned >= 2, "only {tuned} of {} adapter replies carry the persona's markers", prompts.len());
    assert!(tuned > base, "the base model carries the markers as often ({base}) as the adapter ({tuned})");

    // The acceptance evaluations, on a few turns (docs/reports/ holds the full runs).
    let persona = root.join("demo/coffee-roaster/persona.toml");
    let json = residency(&[
        "eval", "drift", "--model", model.to_str().unwrap(), "--adapter", out.to_str().unwrap(), "--persona", persona.to_str().unwrap(),
        "--script", root.join("demo/coffee-roaster-eval/drift-script.txt").to_str().unwrap(), "--turns", "3", "--max-tokens", "60", "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mean = |side: &serde_json::Value| {
        let turns = side["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 3);
        turns.iter().map(|t| t["adherence"]["score"].as_f64().unwrap()).sum::<f64>() / 3.0
    };
    let sides = report["drift"].as_array().unwrap();
    assert_eq!(sides[0]["label"], "base + persona prompt");
    let (prompted, adapted) = (mean(&sides[0]), mean(&sides[1]));
    println!("drift, 3 turns: adherence base + persona prompt {prompted:.1}, adapter {adapted:.1}");
    assert!(adapted > prompted, "the adapter's replies score {adapted:.1}, base + persona prompt {prompted:.1}");
    assert!(sides[0]["system_prompt_tokens"].as_u64().unwrap() > 50, "the persona prompt's token tax is counted");
    assert_eq!(sides[1]["system_prompt_tokens"].as_u64().unwrap(), 0);

    let json = residency(&[
        "eval", "holdout", "--model", model.to_str().unwrap(), "--adapter", out.to_str().unwrap(), "--persona", persona.to_str().unwrap(),
        "--data", dir.path().join("maggie.holdout.jsonl").to_str().unwrap(), "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sides = report["holdout"].as_array().unwrap();
    let loss = |i: usize| sides[i]["loss"].as_f64().unwrap();
    let tokens: Vec<u64> = sides.iter().map(|s| s["tokens"].as_u64().unwrap()).collect();
    println!("holdout loss: base {:.4}, base + persona prompt {:.4}, adapter {:.4} ({tokens:?} tokens)", loss(0), loss(1), loss(2));
    assert!(tokens.iter().all(|t| *t == tokens[0]), "every side is scored on the same assistant tokens: {tokens:?}");
    assert!(loss(2) < loss(1) && loss(1) < loss(0), "adapter < base + persona prompt < base expected: {sides:?}");
}
