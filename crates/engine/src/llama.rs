//! The `llama` family: Llama 2/3, SmolLM2, TinyLlama, Mistral, and Qwen2/Qwen3,
//! which differ only in small ways (Qwen2 has biases on q/k/v; Qwen3 normalises
//! queries and keys per head). Weights are in Hugging Face layout (see weights.rs).
//!
//! Per layer:  x += o_proj(attention(rope(q), rope(k), v))  on rms_norm(x)
//!             x += down_proj(silu(gate_proj(h)) * up_proj(h))  with h = rms_norm(x)
//!
//! `forward` runs inference with a KV cache; `forward_train` runs a batch from
//! position 0 with differentiable ops, for training adapters. Both go through the
//! same `layer` function.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::config::{Arch, Config};
use crate::error::Result;
use crate::layers::{attention, attention_mask, attention_train, rms_norm, rope, rope_tables, run_layer, select_positions, swiglu, train_input, KvCache, Pass};
use crate::weights::{Embedding, Linear, Weights};

#[derive(Debug, Clone)]
pub struct Layer {
    pub input_norm: Tensor,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// Qwen3 only.
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    pub post_attention_norm: Tensor,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Layer {
    pub fn linears_mut(&mut self) -> [&mut Linear; 7] {
        [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.o_proj, &mut self.gate_proj, &mut self.up_proj, &mut self.down_proj]
    }

    pub fn linears(&self) -> [&Linear; 7] {
        [&self.q_proj, &self.k_proj, &self.v_proj, &self.o_proj, &self.gate_proj, &self.up_proj, &self.down_proj]
    }
}

#[derive(Debug, Clone)]
pub struct Llama {
    pub cfg: Config,
    pub embed: Embedding,
    pub layers: Vec<Layer>,
    pub norm: Tensor,
    pub lm_head: Linear,
    device: Device,
}

impl Llama {
    pub fn load(cfg: Config, w: &mut Weights, device: &Device) -> Result<Llama> {
        let bias = cfg.arch == Arch::Qwen2;
        let qk_norm = cfg.arch == Arch::Qwen3;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                input_norm: w.norm(&format!("{p}.input_layernorm.weight"))?,
                q_proj: w.linear(&format!("{p}.self_attn.q_proj"), bias)?,
                k_proj: w.linear(&format!("{p}.self_attn.k_proj"), bias)?,
                v_proj: w.linear(&format!("{p}.self_attn.v_proj"), bias)?,
                o_proj: w.linear(&format!("{p}.self_attn.o_proj"), false)?,
                q_norm: if qk_norm { Some(w.norm(&format!("{p}.self_attn.q_norm.weight"))?) } else { None },
                k_norm: if qk_norm { Some(w.norm(&format!("{p}.self_attn.k_norm.weight"))?) } else { None },
                post_attention_norm: w.norm(&format!("{p}.post_attention_layernorm.weight"))?,
                gate_proj: w.linear(&format!("{p}.mlp.gate_proj"), false)?,
                up_proj: w.linear(&format!("{p}.mlp.up_proj"), false)?,
                down_proj: w.linear(&format!("{p}.mlp.down_proj"), false)?,
            });
        }
        let embed = w.embedding("model.embed_tokens.weight")?;
        let lm_head = w.output_head()?;
        Ok(Llama { embed, layers, norm: w.norm("model.norm.weight")?, lm_head, device: device.clone(), cfg })
    }

    /// Runs `ids` after the cached positions; returns logits `[n, vocab]` for the
    /// last position (`all == false`, n = 1) or every new position.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, all: bool) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (start, seq) = (cache.len(), ids.len());
        let (cos, sin) = rope_tables(cfg.head_dim, cfg.rope_base, cfg.rope_scale, start, seq, &self.device)?;
        let mask = attention_mask(start, seq, None, &self.device)?;
        let pass = Pass::inference();
        let mut x = self.embed.forward(&Tensor::new(ids, &self.device)?.unsqueeze(0)?)?;
        for (i, l) in self.layers.iter().enumerate() {
            x = layer(cfg, l, &x, &cos, &sin, mask.as_ref(), Some((cache, i)), &pass, None)?;
        }
        cache.push_tokens(ids);
        let x = rms_norm(&select_positions(&x, all)?, &self.norm, cfg.rms_eps, false)?;
        Ok(self.lm_head.forward(&x)?)
    }

    /// Training: `ids` `[batch, seq]` from position 0, no cache. Returns the final
    /// (normed) hidden states `[batch, seq, hidden]`; the caller applies `lm_head`
    /// in chunks, which bounds the memory the logits take.
    pub fn forward_train(&self, ids: &Tensor, pass: &Pass) -> Result<Tensor> {
        let cfg = &self.cfg;
        let seq = ids.dim(1)?;
        let (cos, sin) = rope_tables(cfg.head_dim, cfg.rope_base, cfg.rope_scale, 0, seq, &self.device)?;
        // With gradients the attention masks causally by itself (`attention_train`).
        let mask = if pass.grad { None } else { attention_mask(0, seq, None, &self.device)? };
        let mut x = train_input(self.embed.forward(ids)?, pass)?;
        for (i, l) in self.layers.iter().enumerate() {
            let seed = pass.layer_seed(i);
            let (c, lc, cos, sin, mask, p) = (cfg.clone(), l.clone(), cos.clone(), sin.clone(), mask.clone(), pass.clone());
            let block = Arc::new(move |x: &Tensor| layer(&c, &lc, x, &cos, &sin, mask.as_ref(), None, &p, seed));
            x = run_layer(&x, pass, &l.linears(), block)?;
        }
        Ok(rms_norm(&x, &self.norm, cfg.rms_eps, true)?)
    }
}

/// One decoder layer on `x` `[batch, seq, hidden]`.
#[allow(clippy::too_many_arguments)]
fn layer(
    cfg: &Config,
    l: &Layer,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    mask: Option<&Tensor>,
    cache: Option<(&mut KvCache, usize)>,
    pass: &Pass,
    seed: Option<u64>,
) -> candle_core::Result<Tensor> {
    let (b, seq, _) = x.dims3()?;
    let (hd, heads, kvh, g) = (cfg.head_dim, cfg.heads, cfg.kv_heads, pass.grad);
    let h = rms_norm(x, &l.input_norm, cfg.rms_eps, g)?;
    let q = l.q_proj.forward_t(&h, seed)?.reshape((b, seq, heads, hd))?.transpose(1, 2)?;
    let k = l.k_proj.forward_t(&h, seed)?.reshape((b, seq, kvh, hd))?.transpose(1, 2)?;
    let v = l.v_proj.forward_t(&h, seed)?.reshape((b, seq, kvh, hd))?.transpose(1, 2)?;
    let (q, k) = match (&l.q_norm, &l.k_norm) {
        (Some(qn), Some(kn)) => (rms_norm(&q, qn, cfg.rms_eps, g)?, rms_norm(&k, kn, cfg.rms_eps, g)?),
        _ => (q, k),
    };
    let q = rope(&q, cos, sin, g)?;
    let k = rope(&k, cos, sin, g)?;
    let (k, v) = match cache {
        Some((cache, i)) => cache.append(i, k, v.contiguous()?)?,
        None => (k, v),
    };
    let scale = 1.0 / (hd as f64).sqrt();
    let a = if g { attention_train(&q, &k, &v, None, scale)? } else { attention(&q, &k, &v, mask, scale, g)? };
    let x = (x + l.o_proj.forward_t(&a, seed)?)?;

    let h = rms_norm(&x, &l.post_attention_norm, cfg.rms_eps, g)?;
    let mlp = swiglu(&l.gate_proj.forward_t(&h, seed)?, &l.up_proj.forward_t(&h, seed)?, g)?;
    x + l.down_proj.forward_t(&mlp, seed)?
}
