//! The `llama` family: Llama 2/3, SmolLM2, TinyLlama, Mistral, and Qwen2/Qwen3,
//! which differ only in small ways (Qwen2 has biases on q/k/v; Qwen3 normalises
//! queries and keys per head). Weights are in Hugging Face layout (see weights.rs).
//!
//! Per layer:  x += o_proj(attention(rope(q), rope(k), v))  on rms_norm(x)
//!             x += down_proj(silu(gate_proj(h)) * up_proj(h))  with h = rms_norm(x)

use candle_core::{Device, Tensor};

use crate::config::{Arch, Config};
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
    /// Qwen3 only.
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    pub post_attention_norm: Tensor,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
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
        let (hd, heads, kvh) = (cfg.head_dim, cfg.heads, cfg.kv_heads);
        let (cos, sin) = rope_tables(hd, cfg.rope_base, cfg.rope_scale, start, seq, &self.device)?;
        let mask = attention_mask(start, seq, None, &self.device)?;
        let scale = 1.0 / (hd as f64).sqrt();

        let mut x = self.embed.forward(&Tensor::new(ids, &self.device)?.unsqueeze(0)?)?;
        for (i, l) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &l.input_norm, cfg.rms_eps)?;
            let q = l.q_proj.forward(&h)?.reshape((1, seq, heads, hd))?.transpose(1, 2)?;
            let k = l.k_proj.forward(&h)?.reshape((1, seq, kvh, hd))?.transpose(1, 2)?;
            let v = l.v_proj.forward(&h)?.reshape((1, seq, kvh, hd))?.transpose(1, 2)?;
            let (q, k) = match (&l.q_norm, &l.k_norm) {
                (Some(qn), Some(kn)) => (rms_norm(&q, qn, cfg.rms_eps)?, rms_norm(&k, kn, cfg.rms_eps)?),
                _ => (q, k),
            };
            let q = rope(&q, &cos, &sin)?;
            let k = rope(&k, &cos, &sin)?;
            let (k, v) = cache.append(i, k, v.contiguous()?)?;
            let a = attention(&q, &k, &v, mask.as_ref(), scale)?;
            x = (x + l.o_proj.forward(&a)?)?;

            let h = rms_norm(&x, &l.post_attention_norm, cfg.rms_eps)?;
            let mlp = (l.gate_proj.forward(&h)?.silu()? * l.up_proj.forward(&h)?)?;
            x = (x + l.down_proj.forward(&mlp)?)?;
        }
        cache.push_tokens(ids);
        let x = rms_norm(&select_positions(&x, all)?, &self.norm, cfg.rms_eps)?;
        Ok(self.lm_head.forward(&x)?)
    }
}
