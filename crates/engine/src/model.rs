//! A loaded model: network, tokenizer and chat template, from any source we read.

use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor, Var};

use crate::config::{Arch, Config};
use crate::error::{EngineError, Result};
use crate::gemma3::Gemma3;
use crate::layers::{logits_to_cpu, KvCache, Pass};
use crate::llama::Llama;
use crate::source::ModelSource;
use crate::weights::{Linear, WeightMode, Weights};

/// The network of one of the supported families.
#[derive(Debug, Clone)]
pub enum Network {
    Llama(Llama),
    Gemma3(Gemma3),
}

/// What the UI and CLI show about a model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub arch: Arch,
    pub source: String,
    /// Weight types in the file and how many tensors of each, e.g. `Q4_1 x 210`.
    pub weight_types: Vec<(String, usize)>,
    pub file_bytes: u64,
    pub config: Config,
    pub chat_template: String,
    pub chat_template_is_fallback: bool,
}

pub struct Model {
    pub net: Network,
    pub vocab: vocab::Vocab,
    pub template: vocab::ChatTemplate,
    pub info: ModelInfo,
    pub device: Device,
}

impl Model {
    /// Loads a GGUF file or a Hugging Face folder onto `device`, with fast weights.
    pub fn load(path: &Path, device: &Device) -> Result<Model> {
        Self::load_with(path, WeightMode::Fast, device)
    }

    /// Loads with a chosen weight mode (safetensors folders hold f32 weights: for
    /// them every mode but `Frozen` means f32).
    pub fn load_with(path: &Path, mode: WeightMode, device: &Device) -> Result<Model> {
        match ModelSource::detect(path)? {
            ModelSource::Gguf(p) => Self::load_gguf(&p, mode, device),
            ModelSource::HfFolder(p) => Self::load_hf(&p, mode, device),
        }
    }

    /// The model's shape and its size on disk, without loading any weight.
    pub fn peek_config(path: &Path) -> Result<(Config, u64)> {
        match ModelSource::detect(path)? {
            ModelSource::Gguf(p) => {
                let (content, bytes) = read_gguf_header(&p)?;
                Ok((Config::from_gguf(&p, &content)?, bytes))
            }
            ModelSource::HfFolder(dir) => {
                let bytes = std::fs::read_dir(&dir)
                    .map(|rd| rd.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "safetensors")).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
                    .unwrap_or(0);
                Ok((read_hf_config(&dir)?, bytes))
            }
        }
    }

    fn load_gguf(path: &Path, mode: WeightMode, device: &Device) -> Result<Model> {
        let (content, file_bytes) = read_gguf_header(path)?;
        let cfg = Config::from_gguf(path, &content)?;
        let vocab = vocab::Vocab::from_gguf(&content).map_err(|source| EngineError::Tokenizer { path: path.to_path_buf(), source })?;
        let template = vocab::ChatTemplate::from_gguf(&content).map_err(|source| EngineError::Tokenizer { path: path.to_path_buf(), source })?;
        let name = content
            .metadata
            .get("general.name")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let mut types = std::collections::BTreeMap::new();
        for t in content.tensor_infos.values() {
            *types.entry(format!("{:?}", t.ggml_dtype)).or_insert(0usize) += 1;
        }
        let mut w = Weights::from_gguf(path, content, cfg.heads, cfg.kv_heads, cfg.arch, mode, device)?;
        let net = build(cfg.clone(), &mut w, device)?;
        let info = ModelInfo {
            name,
            arch: cfg.arch,
            source: path.display().to_string(),
            weight_types: types.into_iter().collect(),
            file_bytes,
            chat_template: template.name().to_string(),
            chat_template_is_fallback: template.is_fallback(),
            config: cfg,
        };
        Ok(Model { net, vocab, template, info, device: device.clone() })
    }

    fn load_hf(dir: &Path, mode: WeightMode, device: &Device) -> Result<Model> {
        let cfg = read_hf_config(dir)?;
        let vocab = vocab::Vocab::from_hf_dir(dir).map_err(|source| EngineError::Tokenizer { path: dir.to_path_buf(), source })?;
        let template = vocab::ChatTemplate::from_hf_dir(dir).map_err(|source| EngineError::Tokenizer { path: dir.to_path_buf(), source })?;
        let mut w = Weights::from_safetensors_dir(dir, cfg.heads, cfg.kv_heads, cfg.arch, mode, device)?;
        let net = build(cfg.clone(), &mut w, device)?;
        let file_bytes = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        let info = ModelInfo {
            name: dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            arch: cfg.arch,
            source: dir.display().to_string(),
            weight_types: vec![("F32 (safetensors)".into(), 0)],
            file_bytes,
            chat_template: template.name().to_string(),
            chat_template_is_fallback: template.is_fallback(),
            config: cfg,
        };
        Ok(Model { net, vocab, template, info, device: device.clone() })
    }

    pub fn config(&self) -> &Config {
        match &self.net {
            Network::Llama(m) => &m.cfg,
            Network::Gemma3(m) => &m.cfg,
        }
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config().layers)
    }

    /// Runs `ids` after what `cache` holds. Returns f32 logits on the CPU,
    /// `[1, vocab]` for the last position or `[ids.len(), vocab]` with `all`.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, all: bool) -> Result<Tensor> {
        if ids.is_empty() {
            return Err(EngineError::Other("nothing to run: the token list is empty".into()));
        }
        let max = self.config().context_length;
        if cache.len() + ids.len() > max {
            return Err(EngineError::ContextFull { got: cache.len() + ids.len(), max });
        }
        let out = match &self.net {
            Network::Llama(m) => m.forward(ids, cache, all)?,
            Network::Gemma3(m) => m.forward(ids, cache, all)?,
        };
        Ok(logits_to_cpu(out)?)
    }

    /// Training forward pass: `ids` `[batch, seq]` from position 0; returns the
    /// final hidden states `[batch, seq, hidden]` (apply [`Model::lm_head`]).
    pub fn forward_train(&self, ids: &Tensor, pass: &Pass) -> Result<Tensor> {
        match &self.net {
            Network::Llama(m) => m.forward_train(ids, pass),
            Network::Gemma3(m) => m.forward_train(ids, pass),
        }
    }

    /// The output projection (hidden states to logits).
    pub fn lm_head(&self) -> &Linear {
        match &self.net {
            Network::Llama(m) => &m.lm_head,
            Network::Gemma3(m) => &m.lm_head,
        }
    }

    /// The projections of every decoder layer (q, k, v, o, gate, up, down), in order.
    pub fn linears(&self) -> Vec<&Linear> {
        match &self.net {
            Network::Llama(m) => m.layers.iter().flat_map(|l| l.linears()).collect(),
            Network::Gemma3(m) => m.layers.iter().flat_map(|l| l.linears()).collect(),
        }
    }

    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        match &mut self.net {
            Network::Llama(m) => m.layers.iter_mut().flat_map(|l| l.linears_mut()).collect(),
            Network::Gemma3(m) => m.layers.iter_mut().flat_map(|l| l.linears_mut()).collect(),
        }
    }

    /// The trainable variables of every adapter, A then B, in layer order.
    pub fn adapter_vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for l in self.linears() {
            if let Some(a) = &l.adapter {
                let (na, nb) = crate::adapter::peft_names(&l.name);
                out.push((na, a.a().clone()));
                out.push((nb, a.b().clone()));
            }
        }
        out
    }

    /// Loads a PEFT LoRA adapter folder onto this model (see adapter.rs).
    pub fn load_adapter(&mut self, dir: &Path) -> Result<crate::adapter::AdapterConfig> {
        crate::adapter::load(self, dir)
    }

    /// The logits after the last of `ids`, as a vector.
    pub fn next_logits(&self, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        Ok(self.forward(ids, cache, false)?.squeeze(0)?.to_vec1::<f32>()?)
    }
}

/// A GGUF file's header and the file's size.
fn read_gguf_header(path: &Path) -> Result<(gguf_file::Content, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let bytes = f.metadata().map_err(|e| EngineError::io(path, e))?.len();
    let content = gguf_file::Content::read(&mut f)
        .map_err(|e| EngineError::Corrupt { path: path.to_path_buf(), why: format!("cannot read the GGUF header ({})", crate::error::first_line(&e)) })?;
    Ok((content, bytes))
}

/// A Hugging Face folder's `config.json`.
fn read_hf_config(dir: &Path) -> Result<Config> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| EngineError::io(&cfg_path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| EngineError::BadConfig { path: cfg_path.clone(), why: format!("not valid JSON: {e}") })?;
    Config::from_hf_json(&cfg_path, &json)
}

fn build(cfg: Config, w: &mut Weights, device: &Device) -> Result<Network> {
    Ok(match cfg.arch {
        Arch::Llama | Arch::Qwen2 | Arch::Qwen3 => Network::Llama(Llama::load(cfg, w, device)?),
        Arch::Gemma3 => Network::Gemma3(Gemma3::load(cfg, w, device)?),
    })
}
