//! LoRA adapters in PEFT's format, so that what we train loads in Hugging Face
//! PEFT and what PEFT trains loads here:
//!
//! - `adapter_config.json`: `peft_type: "LORA"`, `r`, `lora_alpha`,
//!   `lora_dropout`, `target_modules`, `use_rslora`, `base_model_name_or_path`.
//! - `adapter_model.safetensors`: for each adapted layer `NAME` (Hugging Face
//!   name, e.g. `model.layers.3.self_attn.q_proj`), `base_model.model.NAME.lora_A.weight`
//!   `[r, in]` and `base_model.model.NAME.lora_B.weight` `[out, r]`, f32.
//!
//! PEFT silently skips tensors whose names do not match; we do the opposite:
//! every tensor in the file must find its layer, or loading fails and says which.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use qlora::{LoraAdapter, LoraConfig};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::model::Model;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// The attention and MLP projections, by their short names: the default targets.
pub const ALL_LINEAR: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// `adapter_config.json`, with the fields PEFT reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    #[serde(default = "lora")]
    pub peft_type: String,
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f32,
    pub target_modules: TargetModules,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default = "none")]
    pub bias: String,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default = "yes")]
    pub inference_mode: bool,
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
}

/// PEFT writes `target_modules` as a list of names, or as one regex string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    List(Vec<String>),
    Regex(String),
}

fn lora() -> String {
    "LORA".into()
}
fn none() -> String {
    "none".into()
}
fn yes() -> bool {
    true
}

impl AdapterConfig {
    pub fn new(lora: &LoraConfig, targets: &[String], base_model: &str) -> AdapterConfig {
        AdapterConfig {
            peft_type: "LORA".into(),
            task_type: Some("CAUSAL_LM".into()),
            base_model_name_or_path: Some(base_model.to_string()),
            r: lora.rank,
            lora_alpha: lora.alpha,
            lora_dropout: lora.dropout,
            target_modules: TargetModules::List(targets.to_vec()),
            use_rslora: lora.rslora,
            bias: "none".into(),
            fan_in_fan_out: false,
            inference_mode: true,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            modules_to_save: None,
        }
    }

    pub fn lora(&self) -> LoraConfig {
        LoraConfig { rank: self.r, alpha: self.lora_alpha, dropout: self.lora_dropout, rslora: self.use_rslora }
    }
}

/// The PEFT tensor names of layer `name`'s A and B.
pub fn peft_names(layer: &str) -> (String, String) {
    (format!("base_model.model.{layer}.lora_A.weight"), format!("base_model.model.{layer}.lora_B.weight"))
}

/// Whether a layer is one of `targets` (short names like `q_proj`).
pub fn is_target(layer: &str, targets: &[String]) -> bool {
    let short = layer.rsplit('.').next().unwrap_or(layer);
    targets.iter().any(|t| t == short || t == layer)
}

/// Puts a fresh adapter (PEFT's initialisation) on every target layer and returns
/// the number of trainable parameters.
pub fn attach_new(model: &mut Model, lora: &LoraConfig, targets: &[String], rng: &mut impl Rng) -> Result<usize> {
    for t in targets {
        if !ALL_LINEAR.contains(&t.as_str()) {
            return Err(EngineError::Unsupported(format!(
                "`{t}` is not a layer adapters can target; choose among {}",
                ALL_LINEAR.join(", ")
            )));
        }
    }
    let device = model.device.clone();
    let mut params = 0;
    for l in model.linears_mut() {
        if is_target(&l.name, targets) {
            let a = LoraAdapter::new(l.in_dim, l.out_dim, lora, &device, rng).map_err(|e| EngineError::Other(e.to_string()))?;
            params += lora.rank * (l.in_dim + l.out_dim);
            l.adapter = Some(a);
        }
    }
    if params == 0 {
        return Err(EngineError::Other("no layer of this model matched the adapter's target modules".into()));
    }
    Ok(params)
}

/// Every adapter's (A, B) by PEFT name: what `adapter_model.safetensors` holds.
pub fn adapter_tensors(model: &Model) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for l in model.linears() {
        if let Some(a) = &l.adapter {
            let (na, nb) = peft_names(&l.name);
            // `copy`: a snapshot, not a view of the variable that training keeps updating.
            out.insert(na, a.a().as_tensor().to_device(&Device::Cpu)?.to_dtype(DType::F32)?.copy()?);
            out.insert(nb, a.b().as_tensor().to_device(&Device::Cpu)?.to_dtype(DType::F32)?.copy()?);
        }
    }
    Ok(out)
}

/// Writes the model's adapters as a PEFT folder.
pub fn save(model: &Model, dir: &Path, config: &AdapterConfig) -> Result<()> {
    write(&adapter_tensors(model)?, dir, config)
}

/// Writes adapter matrices (by PEFT name, as [`adapter_tensors`] gives them) as a
/// PEFT folder. Each file is written to a temporary name and renamed, so a crash
/// leaves the old file or the new one.
pub fn write(tensors: &HashMap<String, Tensor>, dir: &Path, config: &AdapterConfig) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    if tensors.is_empty() {
        return Err(EngineError::Other("the model has no adapter to save".into()));
    }
    let weights = dir.join(WEIGHTS_FILE);
    let tmp = dir.join(format!(".{WEIGHTS_FILE}.tmp"));
    candle_core::safetensors::save(tensors, &tmp).map_err(|e| EngineError::Other(format!("could not write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &weights).map_err(|e| EngineError::io(&weights, e))?;
    let json = serde_json::to_string_pretty(config).expect("adapter config serialises");
    write_atomic(&dir.join(CONFIG_FILE), json.as_bytes())
}

/// Writes `bytes` to `path` atomically ([`crate::files::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes).map_err(|e| EngineError::io(path, e))
}

/// Reads `adapter_config.json`.
pub fn read_config(dir: &Path) -> Result<AdapterConfig> {
    let path = dir.join(CONFIG_FILE);
    if !dir.is_dir() {
        return Err(EngineError::NotFound { path: dir.to_path_buf() });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
    let cfg: AdapterConfig = serde_json::from_str(&text)
        .map_err(|e| EngineError::BadConfig { path: path.clone(), why: format!("this is not a LoRA adapter configuration: {e}") })?;
    if cfg.peft_type.to_uppercase() != "LORA" {
        return Err(EngineError::Unsupported(format!("{}: adapter type `{}` (only LoRA adapters are supported)", path.display(), cfg.peft_type)));
    }
    if !cfg.rank_pattern.is_empty() || !cfg.alpha_pattern.is_empty() {
        return Err(EngineError::Unsupported(format!("{}: per-layer ranks or alphas (rank_pattern, alpha_pattern)", path.display())));
    }
    if cfg.fan_in_fan_out {
        return Err(EngineError::Unsupported(format!("{}: fan_in_fan_out adapters (made for GPT-2 style layers)", path.display())));
    }
    if cfg.r == 0 || cfg.lora_alpha.is_nan() || cfg.lora_alpha <= 0.0 {
        return Err(EngineError::BadConfig { path, why: format!("rank {} and alpha {} must both be positive", cfg.r, cfg.lora_alpha) });
    }
    Ok(cfg)
}

/// Loads a PEFT LoRA folder onto the model's layers (replacing any adapter they
/// had). Every tensor in the file must match a layer of this model, with the
/// right shape: an adapter trained for another model is refused, not half-applied.
pub fn load(model: &mut Model, dir: &Path) -> Result<AdapterConfig> {
    let cfg = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(EngineError::NotAModel { path: dir.to_path_buf(), why: format!("the adapter folder has no {WEIGHTS_FILE}") });
    }
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|e| EngineError::Corrupt { path: path.clone(), why: crate::error::first_line(&e) })?;
    let lora = cfg.lora();
    let device = model.device.clone();
    let mut loaded = 0;
    for l in model.linears_mut() {
        let (na, nb) = peft_names(&l.name);
        match (tensors.remove(&na), tensors.remove(&nb)) {
            (None, None) => l.adapter = None,
            (Some(a), Some(b)) => {
                let (a, b) = (a.to_dtype(DType::F32)?.to_device(&device)?, b.to_dtype(DType::F32)?.to_device(&device)?);
                let bad = |why: String| EngineError::Corrupt { path: path.clone(), why: format!("layer `{}`: {why}; was this adapter trained for another model?", l.name) };
                if a.dims() != [cfg.r, l.in_dim] || b.dims() != [l.out_dim, cfg.r] {
                    return Err(bad(format!(
                        "A is {:?} and B is {:?}, expected [{}, {}] and [{}, {}]",
                        a.dims(),
                        b.dims(),
                        cfg.r,
                        l.in_dim,
                        l.out_dim,
                        cfg.r
                    )));
                }
                let ad = LoraAdapter::from_parts(Var::from_tensor(&a)?, Var::from_tensor(&b)?, lora.scale(), lora.dropout)
                    .map_err(|e| bad(e.to_string()))?;
                l.adapter = Some(ad);
                loaded += 1;
            }
            _ => {
                return Err(EngineError::Corrupt { path: path.clone(), why: format!("layer `{}` has only one of its two LoRA matrices", l.name) })
            }
        }
    }
    if !tensors.is_empty() {
        let mut names: Vec<_> = tensors.keys().cloned().collect();
        names.sort();
        return Err(EngineError::Corrupt {
            path,
            why: format!(
                "{} tensor(s) match no layer of this model (first: `{}`); the adapter was made for another model or another tool",
                names.len(),
                names[0]
            ),
        });
    }
    if loaded == 0 {
        return Err(EngineError::Corrupt { path, why: "the file holds no LoRA matrices".into() });
    }
    Ok(cfg)
}
