//! `residency bench generate` (`bench train` is in cmd_bench_train.rs): our engine and llama.cpp on the same GGUF files in
//! the same run: prompt tokens/s (one long prompt) and generation tokens/s.
//! llama.cpp runs through `scripts/reference/bench_llamacpp.mjs` (npm
//! node-llama-cpp, prebuilt); it is a reference for benchmarks only, never shipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use engine::{generate, GenerateOptions, SamplingParams};

use crate::common::load_model;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Prompt processing and generation speed.
    Generate(GenArgs),
    /// Training speed and peak memory, against PyTorch + PEFT.
    Train(crate::cmd_bench_train::TrainArgs),
}

#[derive(clap::Args)]
pub struct GenArgs {
    /// GGUF files to measure (repeat the flag for several).
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    #[arg(long, default_value_t = 512)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    /// Runs per engine; the best run is reported.
    #[arg(long, default_value_t = 2)]
    runs: usize,
    /// Also run llama.cpp (needs `npm ci` in scripts/reference).
    #[arg(long)]
    llamacpp: bool,
    /// Threads given to llama.cpp (ours follow --threads / all cores).
    #[arg(long, default_value_t = 2)]
    llamacpp_threads: usize,
    /// Append the markdown table to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    model: String,
    engine: String,
    prompt_tps: f64,
    gen_tps: f64,
}

pub fn run(c: BenchCommand) -> Result<()> {
    let a = match c {
        BenchCommand::Generate(a) => a,
        BenchCommand::Train(a) => return crate::cmd_bench_train::run(a),
    };
    let mut rows = Vec::new();
    for path in &a.models {
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        eprintln!("== {name}");
        let (p, g) = ours(path, a.prompt_tokens, a.gen_tokens, a.runs)?;
        eprintln!("   residency: prompt {p:.1} tok/s, generation {g:.1} tok/s");
        rows.push(Row { model: name.clone(), engine: "residency".into(), prompt_tps: p, gen_tps: g });
        if a.llamacpp {
            let (p, g, v) = llamacpp(path, a.prompt_tokens, a.gen_tokens, a.llamacpp_threads)?;
            eprintln!("   llama.cpp {v}: prompt {p:.1} tok/s, generation {g:.1} tok/s");
            rows.push(Row { model: name, engine: format!("llama.cpp ({v})"), prompt_tps: p, gen_tps: g });
        }
    }
    let table = markdown(&rows, a.prompt_tokens, a.gen_tokens);
    println!("{table}");
    if let Some(md) = &a.markdown {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(md)?;
        writeln!(f, "{table}")?;
    }
    Ok(())
}

fn ours(path: &std::path::Path, prompt_tokens: usize, gen_tokens: usize, runs: usize) -> Result<(f64, f64)> {
    let model = load_model(path)?;
    let prompt = bench_prompt(&model, prompt_tokens)?;
    let opts = GenerateOptions { max_tokens: gen_tokens, sampling: SamplingParams::greedy(), stop: vec![], stop_at_eos: false };
    let never = AtomicBool::new(false);
    let (mut best_p, mut best_g) = (0f64, 0f64);
    for _ in 0..runs.max(1) {
        // Prompt speed: a fresh cache, the whole prompt.
        let mut cache = model.new_cache();
        let t = Instant::now();
        model.forward(&prompt, &mut cache, false)?;
        best_p = best_p.max(prompt.len() as f64 / t.elapsed().as_secs_f64());
        // Generation speed: after a short prompt, as llama-bench's tg test does.
        let mut cache = model.new_cache();
        let g = generate(&model, &mut cache, &prompt[..1], &opts, &never, |_| {})?;
        best_g = best_g.max(g.tokens.len() as f64 / g.decode_secs);
    }
    Ok((best_p, best_g))
}

/// A prompt of exactly `n` tokens from ordinary English text.
fn bench_prompt(model: &engine::Model, n: usize) -> Result<Vec<u32>> {
    let para = "The roastery opens at seven. Maggie weighs the green beans, checks the moisture, and \
                loads the drum while the first customers wait outside with their cups. ";
    let mut text = String::new();
    let mut ids = Vec::new();
    while ids.len() < n {
        text.push_str(para);
        ids = model.vocab.encode(&text, model.vocab.add_bos(), false)?;
    }
    ids.truncate(n);
    Ok(ids)
}

fn llamacpp(path: &std::path::Path, prompt_tokens: usize, gen_tokens: usize, threads: usize) -> Result<(f64, f64, String)> {
    let script = fixtures::repo_root().join("scripts/reference/bench_llamacpp.mjs");
    let out = Command::new("node")
        .arg(&script)
        .args(["--model", &path.display().to_string()])
        .args(["--prompt-tokens", &prompt_tokens.to_string(), "--gen-tokens", &gen_tokens.to_string(), "--threads", &threads.to_string()])
        .output()
        .with_context(|| format!("could not run node {}", script.display()))?;
    if !out.status.success() {
        bail!("llama.cpp benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).context("llama.cpp benchmark printed no JSON")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).with_context(|| format!("llama.cpp benchmark JSON lacks {k}"));
    Ok((f("prompt_tokens_per_s")?, f("gen_tokens_per_s")?, v.get("version").and_then(|x| x.as_str()).unwrap_or("?").to_string()))
}

fn markdown(rows: &[Row], p: usize, g: usize) -> String {
    let mut s = format!("| model | engine | prompt tok/s ({p} tokens) | generation tok/s ({g} tokens) | vs llama.cpp (gen) |\n|---|---|---:|---:|---:|\n");
    for r in rows {
        let reference = rows.iter().find(|x| x.model == r.model && x.engine.starts_with("llama.cpp"));
        let ratio = match reference {
            Some(x) if r.engine == "residency" => format!("{:.2}x", r.gen_tps / x.gen_tps),
            _ => String::new(),
        };
        s.push_str(&format!("| {} | {} | {:.1} | {:.1} | {} |\n", r.model, r.engine, r.prompt_tps, r.gen_tps, ratio));
    }
    s
}
