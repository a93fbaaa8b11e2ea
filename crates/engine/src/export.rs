//! Writing a loaded model as a Hugging Face folder: f32 `model.safetensors`,
//! `config.json`, `tokenizer.json`, `tokenizer_config.json`. With a GGUF source
//! this dequantizes it (the layout is already Hugging Face's: see weights.rs), so
//! the folder loads in transformers and in our own HF loader. Layers with a LoRA
//! adapter are written merged (`W + scale * B A`): that is `residency merge`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::error::{EngineError, Result};
use crate::model::{Model, Network};
use crate::weights::{Embedding, Linear};

/// W as f32, with the layer's adapter merged in (`W + scale * B A`) when it has one.
fn dense(l: &Linear) -> Result<Tensor> {
    let w = l.dense_weight()?;
    let w = match &l.adapter {
        Some(a) => {
            let ba = a.b().as_tensor().to_device(&Device::Cpu)?.matmul(&a.a().as_tensor().to_device(&Device::Cpu)?)?;
            (w + (ba * a.scale())?)?
        }
        None => w,
    };
    Ok(w.contiguous()?)
}

fn embedding(e: &Embedding) -> Result<Tensor> {
    Ok(match e {
        Embedding::Quantized(q) => q.dequantize(&Device::Cpu)?,
        Embedding::Dense(t) => t.to_device(&Device::Cpu)?,
    })
}

/// Every weight of the model under its Hugging Face name, as f32.
pub fn hf_tensors(model: &Model) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    let put_linear = |out: &mut HashMap<String, Tensor>, name: String, l: &Linear| -> Result<()> {
        out.insert(format!("{name}.weight"), dense(l)?);
        if let Some(b) = &l.bias {
            out.insert(format!("{name}.bias"), b.to_device(&Device::Cpu)?);
        }
        Ok(())
    };
    let cpu = |t: &Tensor| -> Result<Tensor> { Ok(t.to_device(&Device::Cpu)?) };
    match &model.net {
        Network::Llama(m) => {
            out.insert("model.embed_tokens.weight".into(), embedding(&m.embed)?);
            for (i, l) in m.layers.iter().enumerate() {
                let p = format!("model.layers.{i}");
                out.insert(format!("{p}.input_layernorm.weight"), cpu(&l.input_norm)?);
                put_linear(&mut out, format!("{p}.self_attn.q_proj"), &l.q_proj)?;
                put_linear(&mut out, format!("{p}.self_attn.k_proj"), &l.k_proj)?;
                put_linear(&mut out, format!("{p}.self_attn.v_proj"), &l.v_proj)?;
                put_linear(&mut out, format!("{p}.self_attn.o_proj"), &l.o_proj)?;
                if let (Some(q), Some(k)) = (&l.q_norm, &l.k_norm) {
                    out.insert(format!("{p}.self_attn.q_norm.weight"), cpu(q)?);
                    out.insert(format!("{p}.self_attn.k_norm.weight"), cpu(k)?);
                }
                out.insert(format!("{p}.post_attention_layernorm.weight"), cpu(&l.post_attention_norm)?);
                put_linear(&mut out, format!("{p}.mlp.gate_proj"), &l.gate_proj)?;
                put_linear(&mut out, format!("{p}.mlp.up_proj"), &l.up_proj)?;
                put_linear(&mut out, format!("{p}.mlp.down_proj"), &l.down_proj)?;
            }
            out.insert("model.norm.weight".into(), cpu(&m.norm)?);
            if !m.cfg.tied_embeddings {
                put_linear(&mut out, "lm_head".into(), &m.lm_head)?;
            }
        }
        Network::Gemma3(m) => {
            // Gemma's norms are held as `1 + w`; Hugging Face stores `w`.
            let norm = |t: &Tensor| -> Result<Tensor> { Ok((t.to_device(&Device::Cpu)? - 1.0)?) };
            out.insert("model.embed_tokens.weight".into(), embedding(&m.embed)?);
            for (i, l) in m.layers.iter().enumerate() {
                let p = format!("model.layers.{i}");
                out.insert(format!("{p}.input_layernorm.weight"), norm(&l.input_norm)?);
                put_linear(&mut out, format!("{p}.self_attn.q_proj"), &l.q_proj)?;
                put_linear(&mut out, format!("{p}.self_attn.k_proj"), &l.k_proj)?;
                put_linear(&mut out, format!("{p}.self_attn.v_proj"), &l.v_proj)?;
                put_linear(&mut out, format!("{p}.self_attn.o_proj"), &l.o_proj)?;
                out.insert(format!("{p}.self_attn.q_norm.weight"), norm(&l.q_norm)?);
                out.insert(format!("{p}.self_attn.k_norm.weight"), norm(&l.k_norm)?);
                out.insert(format!("{p}.post_attention_layernorm.weight"), norm(&l.post_attention_norm)?);
                out.insert(format!("{p}.pre_feedforward_layernorm.weight"), norm(&l.pre_feedforward_norm)?);
                put_linear(&mut out, format!("{p}.mlp.gate_proj"), &l.gate_proj)?;
                put_linear(&mut out, format!("{p}.mlp.up_proj"), &l.up_proj)?;
                put_linear(&mut out, format!("{p}.mlp.down_proj"), &l.down_proj)?;
                out.insert(format!("{p}.post_feedforward_layernorm.weight"), norm(&l.post_feedforward_norm)?);
            }
            out.insert("model.norm.weight".into(), norm(&m.norm)?);
            if !m.cfg.tied_embeddings {
                put_linear(&mut out, "lm_head".into(), &m.lm_head)?;
            }
        }
    }
    Ok(out)
}

/// Writes the model as a Hugging Face folder at `dir` (created if needed).
pub fn export_hf_folder(model: &Model, dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| EngineError::io(dir, e);
    let tokenizer = model.vocab.to_hf_tokenizer().ok_or_else(|| {
        EngineError::Other(format!(
            "{}: this model's tokenizer (SentencePiece) cannot be written as a tokenizer.json yet, so it cannot be exported as a Hugging Face folder",
            model.info.source
        ))
    })?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let tensors = hf_tensors(model)?;
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    let cfg = model.config();
    let mut config = cfg.to_hf_json();
    let eos = model.vocab.eos().to_vec();
    config["bos_token_id"] = model.vocab.bos().into();
    config["eos_token_id"] = if eos.len() == 1 { eos[0].into() } else { eos.clone().into() };
    write_json(&dir.join("config.json"), &config)?;
    tokenizer
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| EngineError::Other(format!("{}: cannot write tokenizer.json: {e}", dir.display())))?;
    let tok_str = |id: Option<u32>| id.and_then(|i| model.vocab.token_str(i)).map(str::to_string);
    let mut tc = serde_json::json!({
        "add_bos_token": model.vocab.add_bos(),
        "bos_token": tok_str(model.vocab.bos()),
        "eos_token": tok_str(eos.first().copied()),
        "model_max_length": cfg.context_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    if !model.template.is_fallback() {
        tc["chat_template"] = model.template.source().into();
    }
    write_json(&dir.join("tokenizer_config.json"), &tc)?;
    Ok(())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| EngineError::Other(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| EngineError::io(path, e))
}
