//! Gemma 3 (text). Differences from llama.rs: embeddings scaled by sqrt(hidden);
//! four norms per layer (before and after attention and MLP); per-head q/k norms;
//! GELU (tanh) MLP; five of every six layers attend within a sliding window and use
//! a local rope base; attention scaled by 1/sqrt(head_dim). Norm weights hold
//! `1 + w` (weights.rs adds the 1 for Hugging Face files).
//!
//! Per layer:  x += post_attn_norm(o_proj(attention(...)))  on input_norm(x)
//!             x += post_ffw_norm(down(gelu(gate(h)) * up(h)))  with h = pre_ffw_norm(x)

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::config::Config;
use crate::error::Result;
use crate::layers::{attention, attention_mask, attention_train, rms_norm, rope, rope_tables, run_layer, select_positions, train_input, KvCache, Pass};
use crate::weights::{Embedding, Linear, Weights};

#[derive(Debug, Clone)]
pub struct Layer {
    pub input_norm: Tensor,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub q_norm: Tensor,
    pub k_norm: Tensor,
    pub post_attention_norm: Tensor,
    pub pre_feedforward_norm: Tensor,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    pub post_feedforward_norm: Tensor,
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
pub struct Gemma3 {
    pub cfg: Config,
    pub embed: Embedding,
    pub layers: Vec<Layer>,
    pub norm: Tensor,
    pub lm_head: Linear,
    device: Device,
}

impl Gemma3 {
    pub fn load(cfg: Config, w: &mut Weights, device: &Device) -> Result<Gemma3> {
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                input_norm: w.norm(&format!("{p}.input_layernorm.weight"))?,
                q_proj: w.linear(&format!("{p}.self_attn.q_proj"), false)?,
                k_proj: w.linear(&format!("{p}.self_attn.k_proj"), false)?,
                v_proj: w.linear(&format!("{p}.self_attn.v_proj"), false)?,
                o_proj: w.linear(&format!("{p}.self_attn.o_proj"), false)?,
                q_norm: w.norm(&format!("{p}.self_attn.q_norm.weight"))?,
                k_norm: w.norm(&format!("{p}.self_attn.k_norm.weight"))?,
                post_attention_norm: w.norm(&format!("{p}.post_attention_layernorm.weight"))?,
                pre_feedforward_norm: w.norm(&format!("{p}.pre_feedforward_layernorm.weight"))?,
                gate_proj: w.linear(&format!("{p}.mlp.gate_proj"), false)?,
                up_proj: w.linear(&format!("{p}.mlp.up_proj"), false)?,
                down_proj: w.linear(&format!("{p}.mlp.down_proj"), false)?,
                post_feedforward_norm: w.norm(&format!("{p}.post_feedforward_layernorm.weight"))?,
            });
        }
        let embed = w.embedding("model.embed_tokens.weight")?;
        let lm_head = w.output_head()?;
        Ok(Gemma3 { embed, layers, norm: w.norm("model.norm.weight")?, lm_head, device: device.clone(), cfg })
    }

    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, all: bool) -> Result<Tensor> {
        let (start, seq) = (cache.len(), ids.len());
        let ropes = Ropes::new(&self.cfg, start, seq, &self.device)?;
        let pass = Pass::inference();
        let x = self.embed.forward(&Tensor::new(ids, &self.device)?.unsqueeze(0)?)?;
        let mut x = (x * (self.cfg.hidden as f64).sqrt())?;
        for (i, l) in self.layers.iter().enumerate() {
            x = layer(&self.cfg, l, i, &x, &ropes, Some(cache), &pass, None)?;
        }
        cache.push_tokens(ids);
        let x = rms_norm(&select_positions(&x, all)?, &self.norm, self.cfg.rms_eps, false)?;
        Ok(self.lm_head.forward(&x)?)
    }

    /// Training: `ids` `[batch, seq]` from position 0, no cache; returns the final
    /// (normed) hidden states (see `Llama::forward_train`).
    pub fn forward_train(&self, ids: &Tensor, pass: &Pass) -> Result<Tensor> {
        let ropes = Ropes::new(&self.cfg, 0, ids.dim(1)?, &self.device)?;
        let x = self.embed.forward(ids)?;
        let mut x = train_input((x * (self.cfg.hidden as f64).sqrt())?, pass)?;
        for (i, l) in self.layers.iter().enumerate() {
            let seed = pass.layer_seed(i);
            let (c, lc, r, p) = (self.cfg.clone(), l.clone(), ropes.clone(), pass.clone());
            let block = Arc::new(move |x: &Tensor| layer(&c, &lc, i, x, &r, None, &p, seed));
            x = run_layer(&x, pass, &l.linears(), block)?;
        }
        Ok(rms_norm(&x, &self.norm, self.cfg.rms_eps, true)?)
    }
}

/// Rotary tables and masks for global and sliding-window layers.
#[derive(Clone)]
struct Ropes {
    global: (Tensor, Tensor),
    local: (Tensor, Tensor),
    mask_global: Option<Tensor>,
    mask_local: Option<Tensor>,
}

impl Ropes {
    fn new(cfg: &Config, start: usize, seq: usize, device: &Device) -> candle_core::Result<Ropes> {
        Ok(Ropes {
            global: rope_tables(cfg.head_dim, cfg.rope_base, cfg.rope_scale, start, seq, device)?,
            local: rope_tables(cfg.head_dim, cfg.rope_base_local, 1.0, start, seq, device)?,
            mask_global: attention_mask(start, seq, None, device)?,
            mask_local: attention_mask(start, seq, cfg.sliding_window, device)?,
        })
    }
}

/// Decoder layer `i` on `x` `[batch, seq, hidden]`.
#[allow(clippy::too_many_arguments)]
fn layer(
    cfg: &Config,
    l: &Layer,
    i: usize,
    x: &Tensor,
    ropes: &Ropes,
    cache: Option<&mut KvCache>,
    pass: &Pass,
    seed: Option<u64>,
) -> candle_core::Result<Tensor> {
    let (b, seq, _) = x.dims3()?;
    let (hd, heads, kvh, g, eps) = (cfg.head_dim, cfg.heads, cfg.kv_heads, pass.grad, cfg.rms_eps);
    let ((cos, sin), mask) = if cfg.is_sliding(i) { (&ropes.local, &ropes.mask_local) } else { (&ropes.global, &ropes.mask_global) };

    let h = rms_norm(x, &l.input_norm, eps, g)?;
    let q = l.q_proj.forward_t(&h, seed)?.reshape((b, seq, heads, hd))?.transpose(1, 2)?;
    let k = l.k_proj.forward_t(&h, seed)?.reshape((b, seq, kvh, hd))?.transpose(1, 2)?;
    let v = l.v_proj.forward_t(&h, seed)?.reshape((b, seq, kvh, hd))?.transpose(1, 2)?;
    let q = rope(&rms_norm(&q, &l.q_norm, eps, g)?, cos, sin, g)?;
    let k = rope(&rms_norm(&k, &l.k_norm, eps, g)?, cos, sin, g)?;
    let (k, v) = match cache {
        Some(cache) => cache.append(i, k, v.contiguous()?)?,
        None => (k, v),
    };
    let scale = 1.0 / (hd as f64).sqrt();
    let a = if g {
        attention_train(&q, &k, &v, if cfg.is_sliding(i) { cfg.sliding_window } else { None }, scale)?
    } else {
        attention(&q, &k, &v, mask.as_ref(), scale, g)?
    };
    let x = (x + rms_norm(&l.o_proj.forward_t(&a, seed)?, &l.post_attention_norm, eps, g)?)?;

    let h = rms_norm(&x, &l.pre_feedforward_norm, eps, g)?;
    let mlp = (l.gate_proj.forward_t(&h, seed)?.gelu()? * l.up_proj.forward_t(&h, seed)?)?;
    x + rms_norm(&l.down_proj.forward_t(&mlp, seed)?, &l.post_feedforward_norm, eps, g)?
}
