//! Options and helpers shared by the subcommands.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use engine::{Device, Model, SamplingParams};

/// Sampling flags, shared by `generate` and `chat`.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// 0 is greedy and deterministic.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Keep the K most likely tokens (0: off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this total probability (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the best one (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalise tokens seen in the last 64 (1: off).
    #[arg(long, default_value_t = 1.1)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn params(&self) -> Result<SamplingParams> {
        let p = SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: if self.temperature == 0.0 { 1.0 } else { self.repeat_penalty },
            repeat_last_n: 64,
            seed: self.seed,
        };
        p.validate().map_err(anyhow::Error::msg)?;
        Ok(p)
    }
}

/// The model path, or the default model (the SmolLM2 fixture) when none is given.
pub fn model_path(arg: Option<&Path>) -> Result<PathBuf> {
    match arg {
        Some(p) => Ok(p.to_path_buf()),
        None => fixtures::try_path(fixtures::Fixture::SmolLm2).map_err(|m| anyhow::anyhow!("no --model given and the default model is missing: {m}")),
    }
}

pub fn load_model(path: &Path) -> Result<Model> {
    load_model_with(path, weight_mode_from_env())
}

/// Applies a PEFT LoRA adapter folder to a loaded model, and says so on stderr.
pub fn load_adapter(model: &mut Model, dir: &Path) -> Result<()> {
    let cfg = model.load_adapter(dir).with_context(|| format!("could not apply the adapter in {}", dir.display()))?;
    let layers = model.linears().iter().filter(|l| l.adapter.is_some()).count();
    eprintln!("adapter: {} (rank {}, {} layers)", dir.display(), cfg.r, layers);
    Ok(())
}

pub fn load_model_with(path: &Path, mode: engine::WeightMode) -> Result<Model> {
    Model::load_with(path, mode, &Device::Cpu).with_context(|| "could not load the model".to_string())
}

/// `RESIDENCY_WEIGHTS=fast|as-stored|f32` chooses how GGUF weights are held
/// (default fast): for comparing accuracy and speed without a rebuild.
pub fn weight_mode_from_env() -> engine::WeightMode {
    match std::env::var("RESIDENCY_WEIGHTS").as_deref() {
        Ok("as-stored") => engine::WeightMode::AsStored,
        Ok("f32") => engine::WeightMode::F32,
        _ => engine::WeightMode::Fast,
    }
}

/// Sets a flag when the user presses Ctrl-C, so generation stops cleanly.
pub fn cancel_on_ctrl_c() -> &'static std::sync::atomic::AtomicBool {
    static FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if FLAG.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    });
    &FLAG
}
