//! Gemma 3 (text). Differences from llama.rs: embeddings scaled by sqrt(hidden);
//! four norms per layer (before and after attention and MLP); per-head q/k norms;
//! GELU (tanh) MLP; five of every six layers attend within a sliding window and use
//! a local rope base; attention scaled by 1/sqrt(head_dim). Norm weights hold
//! `1 + w` (weights.rs adds the 1 for Hugging Face files).
//!
//! Per layer:  x += post_attn_norm(o_proj(attention(...)))  on input_norm(x)
//!             x += post_ffw_norm(down(gelu(gate(h)) * up(h)))  with h = pre_ffw_norm(x)

use candle_core::{Device, Tensor};

use crate::config::Config;
use crate::error::Result;
use crate::layers::{attention, attention_mask, rms_norm, rope, rope_tables, select_positions, KvCache};
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
        let cfg = &self.cfg;
        let (start, seq) = (cache.len(), ids.len());
        let (hd, heads, kvh) = (cfg.head_dim, cfg.heads, cfg.kv_heads);
        let (cos_g, sin_g) = rope_tables(hd, cfg.rope_base, cfg.rope_scale, start, seq, &self.device)?;
        let (cos_l, sin_l) = rope_tables(hd, cfg.rope_base_local, 1.0, start, seq, &self.device)?;
        let mask_global = attention_mask(start, seq, None, &self.device)?;
        let mask_local = attention_mask(start, seq, cfg.sliding_window, &self.device)?;
        let scale = 1.0 / (hd as f64).sqrt();

        let x = self.embed.forward(&Tensor::new(ids, &self.device)?.unsqueeze(0)?)?;
        let mut x = (x * (cfg.hidden as f64).sqrt())?;
        for (i, l) in self.layers.iter().enumerate() {
            let sliding = cfg.is_sliding(i);
            let (cos, sin, mask) = if sliding { (&cos_l, &sin_l, &mask_local) } else { (&cos_g, &sin_g, &mask_global) };

            let h = rms_norm(&x, &l.input_norm, cfg.rms_eps)?;
            let q = l.q_proj.forward(&h)?.reshape((1, seq, heads, hd))?.transpose(1, 2)?;
            let k = l.k_proj.forward(&h)?.reshape((1, seq, kvh, hd))?.transpose(1, 2)?;
            let v = l.v_proj.forward(&h)?.reshape((1, seq, kvh, hd))?.transpose(1, 2)?;
            let q = rope(&rms_norm(&q, &l.q_norm, cfg.rms_eps)?, cos, sin)?;
            let k = rope(&rms_norm(&k, &l.k_norm, cfg.rms_eps)?, cos, sin)?;
            let (k, v) = cache.append(i, k, v.contiguous()?)?;
            let a = attention(&q, &k, &v, mask.as_ref(), scale)?;
            x = (x + rms_norm(&l.o_proj.forward(&a)?, &l.post_attention_norm, cfg.rms_eps)?)?;

            let h = rms_norm(&x, &l.pre_feedforward_norm, cfg.rms_eps)?;
            let mlp = (l.gate_proj.forward(&h)?.gelu()? * l.up_proj.forward(&h)?)?;
            x = (x + rms_norm(&l.down_proj.forward(&mlp)?, &l.post_feedforward_norm, cfg.rms_eps)?)?;
        }
        cache.push_tokens(ids);
        let x = rms_norm(&select_positions(&x, all)?, &self.norm, cfg.rms_eps)?;
        Ok(self.lm_head.forward(&x)?)
    }
}
