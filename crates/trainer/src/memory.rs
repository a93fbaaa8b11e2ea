//! Predicts a run's peak memory before it starts, so that a run that cannot fit
//! is refused with advice instead of being killed by the system an hour in.
//!
//! The parts, in bytes:
//! - frozen weights: each projection in the chosen storage (NF4 4.127 bits per
//!   weight, Q8_0 8.5, the file's own, or f32), the output head likewise, and the
//!   token embedding as the file stores it;
//! - adapters: A and B, their gradient accumulator and AdamW's two moments;
//! - activations: what autograd keeps per token and layer (every layer without
//!   checkpointing; each layer's input plus one layer being recomputed with it),
//!   attention scores (heads x tokens x tokens per layer kept), and the logits
//!   (one chunk with checkpointing, every trained row without);
//! - the process itself (code, tokenizer, allocator slack): a constant.
//!
//! The per-token constants were fitted to peak RSS measured on SmolLM2-135M (see
//! below); `residency bench train` prints the estimate beside the measured peak.

use serde::{Deserialize, Serialize};

use engine::{BaseQuant, Config};

use crate::config::TrainConfig;

/// f32 values autograd keeps per token for one decoder layer, in units of the
/// hidden size, the MLP size and the key/value width, and per attention score
/// (head x query x key). Fitted to three peak-RSS measurements of SmolLM2-135M
/// (one step, batch 1, r 16 on all projections; `RESIDENCY_BENCH_CHILD=1
/// residency --threads 2 bench train --accum 1 --steps 0 --seq-len T`):
/// T 512 checkpointed 486 MiB, T 512 not 5,142 MiB, T 160 not 1,312 MiB; this
/// model predicts 531, 5,177 and 1,350 MiB (+9%, +1%, +3%).
const ACT_PER_HIDDEN: f64 = 39.0;
const ACT_PER_MLP: f64 = 13.0;
const ACT_PER_KV: f64 = 16.0;
const ACT_PER_SCORE: f64 = 7.0;
/// Bytes of the process besides tensors.
const BASELINE: u64 = 40 << 20;
/// Rows of logits alive at once with checkpointing (train.rs's LOSS_CHUNK; all
/// trained rows without), and f32 tensors of vocabulary width per row.
const LOGIT_ROWS: u64 = 128;
const LOGIT_COPIES: u64 = 4;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryEstimate {
    pub weights: u64,
    pub embedding: u64,
    pub adapters: u64,
    pub activations: u64,
    pub logits: u64,
    pub baseline: u64,
    pub total: u64,
}

impl MemoryEstimate {
    pub fn mib(b: u64) -> u64 {
        b >> 20
    }
}

/// Bytes per weight of a projection stored as `quant` (`file_bpw`: the file's
/// average bits per weight, for `gguf`).
fn bytes_per_weight(quant: BaseQuant, file_bpw: f64) -> f64 {
    match quant {
        BaseQuant::Nf4 => 4.127 / 8.0,
        BaseQuant::Q8 => 34.0 / 32.0,
        BaseQuant::Gguf => file_bpw / 8.0,
        BaseQuant::None => 4.0,
    }
}

/// Peak memory of training `cfg` on a model of shape `model`, whose file holds
/// `file_bytes` (for the file's own precision).
pub fn estimate(model: &Config, file_bytes: u64, cfg: &TrainConfig) -> MemoryEstimate {
    let (h, i, v, layers) = (model.hidden as f64, model.intermediate as f64, model.vocab_size as f64, model.layers as f64);
    let q = (model.heads * model.head_dim) as f64;
    let kv = (model.kv_heads * model.head_dim) as f64;
    let per_layer_params = h * q + 2.0 * h * kv + q * h + 3.0 * h * i;
    let total_params = layers * per_layer_params + 2.0 * v * h;
    let file_bpw = file_bytes as f64 * 8.0 / total_params.max(1.0);
    let bpw = bytes_per_weight(cfg.quant, file_bpw);
    let weights = (layers * per_layer_params + v * h) * bpw;
    let embedding = v * h * if cfg.quant == BaseQuant::None { 4.0 } else { file_bpw / 8.0 };

    // LoRA parameters on the targeted projections.
    let r = cfg.rank as f64;
    let mut lora = 0.0;
    for t in &cfg.targets {
        lora += r * match t.as_str() {
            "q_proj" => h + q,
            "k_proj" | "v_proj" => h + kv,
            "o_proj" => q + h,
            "gate_proj" | "up_proj" => h + i,
            "down_proj" => i + h,
            _ => 0.0,
        };
    }
    // The parameters, their gradient accumulator and AdamW's two moments.
    let adapters = layers * lora * 4.0 * 4.0;

    let tokens = (cfg.seq_len * cfg.batch) as f64;
    let per_token_layer = ACT_PER_HIDDEN * h + ACT_PER_MLP * i + ACT_PER_KV * kv;
    let scores = ACT_PER_SCORE * model.heads as f64 * tokens * cfg.seq_len as f64;
    let one_layer = tokens * per_token_layer + scores;
    let activations = if cfg.gradient_checkpointing {
        layers * tokens * h * 2.0 + one_layer
    } else {
        layers * one_layer
    } * 4.0;
    let logit_rows = if cfg.gradient_checkpointing { (LOGIT_ROWS as f64).min(tokens) } else { tokens };
    let logits = logit_rows * LOGIT_COPIES as f64 * v * 4.0;

    let parts = [weights, embedding, adapters, activations, logits];
    let total = parts.iter().sum::<f64>() as u64 + BASELINE;
    MemoryEstimate {
        weights: weights as u64,
        embedding: embedding as u64,
        adapters: adapters as u64,
        activations: activations as u64,
        logits: logits as u64,
        baseline: BASELINE,
        total,
    }
}

/// Memory the system can give this process now (available RAM), in bytes.
pub fn available() -> Option<u64> {
    catalog::hardware::probe().ok().map(|h| h.available_memory_bytes)
}

/// What to change when `need` bytes do not fit in `have`.
pub fn advice(cfg: &TrainConfig, est: &MemoryEstimate) -> String {
    let mut tips = Vec::new();
    if cfg.seq_len > 256 {
        tips.push(format!("a shorter sequence length (--seq-len {})", cfg.seq_len / 2));
    }
    if cfg.batch > 1 {
        tips.push(format!("a smaller batch with more accumulation (--batch {} --grad-accum {})", cfg.batch / 2, cfg.grad_accum * 2));
    }
    if !cfg.gradient_checkpointing && est.activations > est.weights {
        tips.push("gradient checkpointing (drop --no-gradient-checkpointing)".into());
    }
    if cfg.quant != BaseQuant::Nf4 {
        tips.push("a 4-bit base (--quant nf4)".into());
    }
    if tips.is_empty() {
        tips.push("a smaller model, or closing other programs".into());
    }
    tips.join(", or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> Config {
        Config {
            arch: engine::Arch::Llama,
            hidden: 576,
            intermediate: 1536,
            layers: 30,
            heads: 9,
            kv_heads: 3,
            head_dim: 64,
            vocab_size: 49152,
            rms_eps: 1e-5,
            rope_base: 100000.0,
            rope_scale: 1.0,
            rope_base_local: 100000.0,
            sliding_window: None,
            sliding_pattern: 0,
            context_length: 8192,
            tied_embeddings: true,
        }
    }

    #[test]
    fn more_tokens_more_memory_and_four_bits_less_than_f32() {
        let m = smollm2();
        let mut c = TrainConfig::new("m".into(), "d".into(), "o".into());
        let base = estimate(&m, 90_000_000, &c);
        c.seq_len *= 2;
        assert!(estimate(&m, 90_000_000, &c).activations > base.activations);
        c.quant = BaseQuant::None;
        assert!(estimate(&m, 90_000_000, &c).weights > 6 * base.weights);
        c.gradient_checkpointing = false;
        let no_ckpt = estimate(&m, 90_000_000, &c);
        c.gradient_checkpointing = true;
        assert!(no_ckpt.activations > 3 * estimate(&m, 90_000_000, &c).activations);
        assert!(advice(&c, &no_ckpt).contains("--quant nf4"));
    }
}
