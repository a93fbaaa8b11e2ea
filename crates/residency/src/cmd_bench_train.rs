//! `residency bench train`: our trainer and PyTorch + PEFT on the same GGUF, the
//! same run (random token ids, every label active, LoRA on every projection,
//! batch 1 with accumulation, AdamW, f32 compute): trained tokens per second and
//! peak resident memory, plus our memory estimate against what we measured.
//! PyTorch runs through `scripts/reference/torch/peft_reference.py bench` (the
//! venv from `scripts/reference/torch/setup.sh`); it is never shipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use trainer::data::Example;
use trainer::{Event, Length, TrainConfig, Trainer};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// GGUF files to measure (repeat the flag for several).
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    #[arg(long, default_value_t = 512)]
    seq_len: usize,
    #[arg(long, default_value_t = 16)]
    rank: usize,
    #[arg(long, default_value_t = 32.0)]
    alpha: f64,
    /// Micro-batches (of one sequence) per optimizer step.
    #[arg(long, default_value_t = 8)]
    accum: usize,
    /// Measured optimizer steps (after one unmeasured warm-up step).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Frozen base storage: nf4, q8, gguf or none.
    #[arg(long, default_value = "nf4")]
    quant: String,
    #[arg(long)]
    no_gradient_checkpointing: bool,
    /// Also run PyTorch + PEFT (needs scripts/reference/torch/setup.sh).
    #[arg(long)]
    torch: bool,
    /// Threads given to PyTorch (ours follow --threads / all cores).
    #[arg(long, default_value_t = 2)]
    torch_threads: usize,
    /// Append the markdown table to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

struct Row {
    model: String,
    engine: String,
    tokens_per_s: f64,
    peak_mib: f64,
    estimate_mib: Option<f64>,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let quant = engine::BaseQuant::parse(&a.quant).with_context(|| format!("--quant `{}`: choose nf4, q8, gguf or none", a.quant))?;
    let mut rows = Vec::new();
    for path in &a.models {
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        eprintln!("== {name}");
        if a.torch {
            // PyTorch first: our process's peak memory must not include its run.
            let (tps, peak, version) = torch(path, &a)?;
            eprintln!("   PyTorch + PEFT ({version}): {tps:.1} tok/s, peak RSS {peak:.0} MiB");
            rows.push(Row { model: name.clone(), engine: format!("PyTorch + PEFT ({version})"), tokens_per_s: tps, peak_mib: peak, estimate_mib: None });
        }
        let (tps, peak, est) = ours(path, &a, quant)?;
        eprintln!("   residency ({}): {tps:.1} tok/s, peak RSS {peak:.0} MiB (estimated {est:.0} MiB)", quant.as_str());
        rows.push(Row { model: name, engine: format!("residency ({})", quant.as_str()), tokens_per_s: tps, peak_mib: peak, estimate_mib: Some(est) });
    }
    let table = markdown(&rows, &a);
    println!("{table}");
    if let Some(md) = &a.markdown {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(md)?;
        writeln!(f, "{table}")?;
    }
    Ok(())
}

/// Our tokens/s over the measured steps, the process's peak RSS (MiB) and the estimate (MiB).
/// Runs in a child process so that each model's peak memory is its own.
fn ours(path: &Path, a: &TrainArgs, quant: engine::BaseQuant) -> Result<(f64, f64, f64)> {
    if std::env::var_os("RESIDENCY_BENCH_CHILD").is_none() {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        if let Ok(n) = std::env::var("RAYON_NUM_THREADS") {
            cmd.args(["--threads", &n]);
        }
        cmd.args(["bench", "train", "--model", &path.display().to_string()])
            .args(["--seq-len", &a.seq_len.to_string(), "--rank", &a.rank.to_string(), "--alpha", &a.alpha.to_string()])
            .args(["--accum", &a.accum.to_string(), "--steps", &a.steps.to_string(), "--quant", &a.quant])
            .env("RESIDENCY_BENCH_CHILD", "1");
        if a.no_gradient_checkpointing {
            cmd.arg("--no-gradient-checkpointing");
        }
        let out = cmd.output().context("could not run the benchmark child process")?;
        if !out.status.success() {
            bail!("our training benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with("RESULT ")).context("the benchmark child printed no result")?;
        let v: Vec<f64> = line[7..].split_whitespace().map(|x| x.parse().unwrap_or(f64::NAN)).collect();
        return Ok((v[0], v[1], v[2]));
    }
    let dir = tempfile::tempdir()?;
    let mut cfg = TrainConfig::new(path.to_path_buf(), "(synthetic)".into(), dir.path().join("run"));
    cfg.length = Length::Steps(a.steps + 1);
    cfg.seq_len = a.seq_len;
    cfg.batch = 1;
    cfg.grad_accum = a.accum;
    cfg.rank = a.rank;
    cfg.alpha = a.alpha;
    cfg.quant = quant;
    cfg.lr = 1e-4;
    cfg.warmup_steps = 0;
    cfg.gradient_checkpointing = !a.no_gradient_checkpointing;
    cfg.checkpoint_every = 0;
    cfg.eval_every = 0;
    let (shape, _) = engine::Model::peek_config(path)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let examples: Vec<Example> = (0..a.accum * (a.steps + 1))
        .map(|i| {
            let ids: Vec<u32> = (0..a.seq_len).map(|_| rng.random_range(0..shape.vocab_size as u32)).collect();
            Example { labels: ids.iter().map(|&t| t as i64).collect(), ids, line: i + 1 }
        })
        .collect();
    let mut t = Trainer::from_examples(cfg, examples)?;
    let est = t.estimate.total as f64 / (1u64 << 20) as f64;
    let mut elapsed = Vec::new();
    t.run(&mut |e| if let Event::Step(m) = e { eprintln!("   step {}: {:.1} s", m.step, m.elapsed_s); elapsed.push(m.elapsed_s) }, &AtomicBool::new(false))?;
    let measured = elapsed[elapsed.len() - 1] - elapsed[0];
    let tokens = (a.seq_len * a.accum * a.steps) as f64;
    let (_, peak) = trainer::progress::process_memory();
    let peak = peak.map(|b| b as f64 / (1u64 << 20) as f64).unwrap_or(f64::NAN);
    println!("RESULT {} {} {}", tokens / measured, peak, est);
    std::process::exit(0);
}

fn torch(path: &Path, a: &TrainArgs) -> Result<(f64, f64, String)> {
    let root = fixtures::repo_root();
    let setup = root.join("scripts/reference/torch/setup.sh");
    let out = Command::new("bash").arg(&setup).output().with_context(|| format!("could not run {}", setup.display()))?;
    if !out.status.success() {
        bail!("installing the PyTorch reference failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let python = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
    let json = tempfile::NamedTempFile::new()?;
    let out = Command::new(&python)
        .arg(root.join("scripts/reference/torch/peft_reference.py"))
        .args(["bench", "--gguf", &path.display().to_string(), "--threads", &a.torch_threads.to_string()])
        .args(["--seq-len", &a.seq_len.to_string(), "--rank", &a.rank.to_string(), "--alpha", &a.alpha.to_string()])
        .args(["--accum", &a.accum.to_string(), "--steps", &a.steps.to_string(), "--out", &json.path().display().to_string()])
        .output()
        .context("could not run the PyTorch reference")?;
    if !out.status.success() {
        bail!("the PyTorch benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json.path())?)?;
    let tps = v["tokens_per_s"].as_f64().context("no tokens_per_s")?;
    let peak = v["peak_rss_mib"].as_f64().context("no peak_rss_mib")?;
    let version = format!(
        "torch {}, peft {}",
        v["environment"]["torch"].as_str().unwrap_or("?"),
        v["environment"]["peft"].as_str().unwrap_or("?")
    );
    Ok((tps, peak, version))
}

fn markdown(rows: &[Row], a: &TrainArgs) -> String {
    let mut s = format!(
        "| model | trainer | tokens/s (seq {}, r {}, batch 1 x {} accum) | peak RSS MiB | vs PyTorch (speed / memory) | our estimate MiB (error) |\n|---|---|---:|---:|---:|---:|\n",
        a.seq_len, a.rank, a.accum
    );
    for r in rows {
        let reference = rows.iter().find(|x| x.model == r.model && x.engine.starts_with("PyTorch"));
        let ratio = match reference {
            Some(x) if r.engine.starts_with("residency") => format!("{:.2}x / {:.2}x", r.tokens_per_s / x.tokens_per_s, r.peak_mib / x.peak_mib),
            _ => String::new(),
        };
        let est = r.estimate_mib.map(|e| format!("{e:.0} ({:+.0}%)", (e / r.peak_mib - 1.0) * 100.0)).unwrap_or_default();
        s.push_str(&format!("| {} | {} | {:.1} | {:.0} | {} | {} |\n", r.model, r.engine, r.tokens_per_s, r.peak_mib, ratio, est));
    }
    s
}
