//! The shape of a model: read from GGUF metadata or a Hugging Face `config.json`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;

use crate::error::{EngineError, Result};

/// The architecture families we run. `Llama`, `Qwen2` and `Qwen3` share one model
/// file (`llama.rs`); `Gemma3` has its own (`gemma3.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub arch: Arch,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_eps: f64,
    /// Rope base of the (global) attention layers.
    pub rope_base: f64,
    /// Linear rope scaling factor of the global layers (positions divided by it).
    pub rope_scale: f64,
    /// Gemma 3: rope base of the sliding-window layers.
    pub rope_base_local: f64,
    /// Gemma 3: tokens a sliding-window layer attends to.
    pub sliding_window: Option<usize>,
    /// Gemma 3: every `sliding_pattern`-th layer is global, the others slide.
    pub sliding_pattern: usize,
    pub context_length: usize,
    /// The output projection is the token embedding.
    pub tied_embeddings: bool,
}

impl Config {
    /// Gemma 3: does layer `i` use the sliding window (and the local rope base)?
    pub fn is_sliding(&self, layer: usize) -> bool {
        self.sliding_window.is_some() && self.sliding_pattern > 0 && (layer + 1) % self.sliding_pattern != 0
    }

    pub fn from_gguf(path: &Path, content: &gguf_file::Content) -> Result<Config> {
        let md = &content.metadata;
        let bad = |why: String| EngineError::BadConfig { path: path.to_path_buf(), why };
        let arch_name = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| bad("the GGUF file does not say which architecture it is (general.architecture)".into()))?
            .clone();
        let arch = match arch_name.as_str() {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma3" => Arch::Gemma3,
            _ => return Err(EngineError::UnsupportedArch { path: path.to_path_buf(), arch: arch_name }),
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let get_u = |k: &str| -> Result<usize> {
            let v = md.get(&key(k)).ok_or_else(|| bad(format!("metadata `{}` is missing", key(k))))?;
            num(v).map(|x| x as usize).ok_or_else(|| bad(format!("metadata `{}` is not a number", key(k))))
        };
        let get_f = |k: &str, default: f64| -> f64 { md.get(&key(k)).and_then(num).unwrap_or(default) };

        let hidden = get_u("embedding_length")?;
        let heads = get_u("attention.head_count")?;
        let kv_heads = md.get(&key("attention.head_count_kv")).and_then(num).map(|x| x as usize).unwrap_or(heads);
        let head_dim = md
            .get(&key("attention.key_length"))
            .and_then(num)
            .map(|x| x as usize)
            .unwrap_or(hidden / heads.max(1));
        let vocab_size = match md.get(&key("vocab_size")).and_then(num) {
            Some(v) => v as usize,
            None => match md.get("tokenizer.ggml.tokens") {
                Some(gguf_file::Value::Array(a)) => a.len(),
                _ => content
                    .tensor_infos
                    .get("token_embd.weight")
                    .map(|t| t.shape.dims()[0])
                    .ok_or_else(|| bad("cannot tell the vocabulary size".into()))?,
            },
        };
        let (sliding_window, sliding_pattern, default_eps) = match arch {
            Arch::Gemma3 => (md.get(&key("attention.sliding_window")).and_then(num).map(|x| x as usize), 6, 1e-6),
            _ => (None, 0, 1e-5),
        };
        let rope_scale = match md.get(&key("rope.scaling.type")).and_then(|v| v.to_string().ok()) {
            Some(t) if t == "linear" => get_f("rope.scaling.factor", 1.0),
            _ => 1.0,
        };
        let cfg = Config {
            arch,
            hidden,
            intermediate: get_u("feed_forward_length")?,
            layers: get_u("block_count")?,
            heads,
            kv_heads,
            head_dim,
            vocab_size,
            rms_eps: get_f("attention.layer_norm_rms_epsilon", default_eps),
            rope_base: get_f("rope.freq_base", if arch == Arch::Gemma3 { 1e6 } else { 1e4 }),
            rope_scale,
            rope_base_local: 10_000.0,
            sliding_window,
            sliding_pattern,
            context_length: md.get(&key("context_length")).and_then(num).map(|x| x as usize).unwrap_or(4096),
            tied_embeddings: !content.tensor_infos.contains_key("output.weight"),
        };
        cfg.check(path)?;
        Ok(cfg)
    }

    /// Reads a Hugging Face `config.json`.
    pub fn from_hf_json(path: &Path, json: &serde_json::Value) -> Result<Config> {
        let bad = |why: String| EngineError::BadConfig { path: path.to_path_buf(), why };
        let model_type = json.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
        // Gemma 3 multimodal configs nest the language model under `text_config`.
        let json = match json.get("text_config") {
            Some(t) if model_type == "gemma3" => t,
            _ => json,
        };
        let arch = match model_type {
            "llama" | "mistral" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma3" | "gemma3_text" => Arch::Gemma3,
            other => {
                return Err(EngineError::UnsupportedArch {
                    path: path.to_path_buf(),
                    arch: if other.is_empty() { "(none given in config.json)".into() } else { other.into() },
                })
            }
        };
        let u = |k: &str| -> Result<usize> {
            json.get(k)
                .and_then(|v| v.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| bad(format!("config.json has no number `{k}`")))
        };
        let f = |k: &str, d: f64| json.get(k).and_then(|v| v.as_f64()).unwrap_or(d);
        let hidden = u("hidden_size")?;
        let heads = u("num_attention_heads")?;
        let is_gemma = arch == Arch::Gemma3;
        let rope_scale = json
            .get("rope_scaling")
            .filter(|r| r.get("rope_type").or(r.get("type")).and_then(|t| t.as_str()) == Some("linear"))
            .and_then(|r| r.get("factor"))
            .and_then(|v| v.as_f64())
            .unwrap_or(1.0);
        let cfg = Config {
            arch,
            hidden,
            intermediate: u("intermediate_size")?,
            layers: u("num_hidden_layers")?,
            heads,
            kv_heads: json.get("num_key_value_heads").and_then(|v| v.as_u64()).map(|x| x as usize).unwrap_or(heads),
            head_dim: json.get("head_dim").and_then(|v| v.as_u64()).map(|x| x as usize).unwrap_or(hidden / heads.max(1)),
            vocab_size: u("vocab_size")?,
            rms_eps: f("rms_norm_eps", if is_gemma { 1e-6 } else { 1e-5 }),
            rope_base: f("rope_theta", if is_gemma { 1e6 } else { 1e4 }),
            rope_scale,
            rope_base_local: f("rope_local_base_freq", 10_000.0),
            sliding_window: if is_gemma { json.get("sliding_window").and_then(|v| v.as_u64()).map(|x| x as usize) } else { None },
            sliding_pattern: if is_gemma { json.get("sliding_window_pattern").and_then(|v| v.as_u64()).unwrap_or(6) as usize } else { 0 },
            context_length: json.get("max_position_embeddings").and_then(|v| v.as_u64()).unwrap_or(4096) as usize,
            tied_embeddings: json.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(is_gemma),
        };
        cfg.check(path)?;
        Ok(cfg)
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |why: String| Err(EngineError::BadConfig { path: path.to_path_buf(), why });
        if self.hidden == 0 || self.layers == 0 || self.heads == 0 || self.kv_heads == 0 || self.head_dim == 0 {
            return bad(format!("impossible model shape: {self:?}"));
        }
        if self.heads % self.kv_heads != 0 {
            return bad(format!("{} attention heads cannot share {} key/value heads", self.heads, self.kv_heads));
        }
        if self.head_dim % 2 != 0 {
            return bad(format!("head size {} is odd: rotary embeddings need it even", self.head_dim));
        }
        Ok(())
    }

    /// The config.json a Hugging Face folder of this model would carry.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let (model_type, class) = match self.arch {
            Arch::Llama => ("llama", "LlamaForCausalLM"),
            Arch::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
            Arch::Qwen3 => ("qwen3", "Qwen3ForCausalLM"),
            Arch::Gemma3 => ("gemma3_text", "Gemma3ForCausalLM"),
        };
        let mut m: HashMap<&str, serde_json::Value> = HashMap::new();
        m.insert("architectures", serde_json::json!([class]));
        m.insert("model_type", model_type.into());
        m.insert("hidden_size", self.hidden.into());
        m.insert("intermediate_size", self.intermediate.into());
        m.insert("num_hidden_layers", self.layers.into());
        m.insert("num_attention_heads", self.heads.into());
        m.insert("num_key_value_heads", self.kv_heads.into());
        m.insert("head_dim", self.head_dim.into());
        m.insert("vocab_size", self.vocab_size.into());
        m.insert("rms_norm_eps", self.rms_eps.into());
        m.insert("rope_theta", self.rope_base.into());
        m.insert("max_position_embeddings", self.context_length.into());
        m.insert("tie_word_embeddings", self.tied_embeddings.into());
        m.insert("torch_dtype", "float32".into());
        match self.arch {
            Arch::Qwen2 => {
                m.insert("use_sliding_window", false.into());
            }
            Arch::Gemma3 => {
                m.insert("rope_local_base_freq", self.rope_base_local.into());
                m.insert("sliding_window", self.sliding_window.into());
                m.insert("sliding_window_pattern", self.sliding_pattern.into());
                m.insert("query_pre_attn_scalar", self.head_dim.into());
                m.insert("hidden_activation", "gelu_pytorch_tanh".into());
                if self.rope_scale != 1.0 {
                    m.insert("rope_scaling", serde_json::json!({"rope_type": "linear", "factor": self.rope_scale}));
                }
            }
            _ => {}
        }
        serde_json::to_value(m).expect("a map of JSON values serialises")
    }
}

/// A GGUF metadata value as a number, whatever its integer or float type.
pub(crate) fn num(v: &gguf_file::Value) -> Option<f64> {
    use gguf_file::Value as V;
    Some(match v {
        V::U8(x) => *x as f64,
        V::I8(x) => *x as f64,
        V::U16(x) => *x as f64,
        V::I16(x) => *x as f64,
        V::U32(x) => *x as f64,
        V::I32(x) => *x as f64,
        V::U64(x) => *x as f64,
        V::I64(x) => *x as f64,
        V::F32(x) => *x as f64,
        V::F64(x) => *x,
        _ => return None,
    })
}
