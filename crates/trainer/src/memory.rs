//! Predicts a run's peak memory before it starts, so that a run that cannot fit
//! is refused with advice instead of being killed by the system an hour in.
//!
//! The peak is the larger of two moments:
//! - **loading**: the frozen weights, the token embedding, and the transient f32
//!   copies of the largest weight while it is converted (two for NF4/Q8: the
//!   dequantized tensor and the quantizer's working copy; one otherwise);
//! - **training**: the frozen weights (NF4 4.127 bits per weight, Q8_0 8.5, the
//!   file's own, or f32), the output head likewise, the token embedding as the
//!   file stores it, the frozen layers' shared tile buffer, the adapters (A and
//!   B, their gradient accumulator and AdamW's two moments), the activations
//!   autograd keeps (every layer without checkpointing; each layer's input plus
//!   one layer being recomputed with it) and what one layer's backward pass
//!   adds, and the logits (one chunk with checkpointing, every trained row
//!   without). Gradient accumulation adds no term: the gradient accumulator is
//!   counted with the adapters, and the peak measured after 8 micro-batches was
//!   within 14 MiB of the one after 1 (see below).
//!
//! Both add the process itself (code, tokenizer, allocator slack), a constant.
//!
//! The activation counts follow the training graph of `engine` (fused qlora
//! kernels: one tensor per op). `BACKWARD_SCORES` and `BASELINE` were fitted to
//! peak RSS measured on SmolLM2-135M (NF4, r 16 on all projections, batch 1;
//! `RESIDENCY_BENCH_CHILD=1 residency --threads 2 bench train --steps 0
//! --seq-len T --accum A [--no-gradient-checkpointing]`, 2026-11-29):
//!
//! | T | accumulation | checkpointing | measured MiB | estimated MiB |
//! |---:|---:|---|---:|---:|
//! | 512 | 1 | yes | 389 | 401 (+3.0%) |
//! | 512 | 8 | yes | 403 | 401 (-0.5%) |
//! | 1024 | 1 | yes | 629 | 618 (-1.8%) |
//! | 256 | 8 | yes | 389 | 368 (-5.2%, the loading peak) |
//! | 512 | 1 | no | 1,575 | 1,664 (+5.6%) |
//! | 256 | 1 | no | 772 | 809 (+4.8%) |
//!
//! The earlier graph (candle's composed ops) kept 3-4x more per layer, and its
//! heap grew by about 25% over 8 accumulation micro-batches.

use serde::{Deserialize, Serialize};

use engine::{BaseQuant, Config};

use crate::config::TrainConfig;

/// f32 values one decoder layer's training graph keeps per token, in units of
/// the hidden size (norm outputs, projections out, residual sums), the query
/// width (projection, rotated copy, attention output and its re-layout), the
/// key/value width (k, v, rotated k, contiguous v), the MLP size (gate, up,
/// their product), and per attention score (scores and probabilities).
const ACT_PER_HIDDEN: f64 = 6.0;
const ACT_PER_Q: f64 = 4.0;
const ACT_PER_KV: f64 = 4.0;
const ACT_PER_MLP: f64 = 3.0;
const ACT_PER_SCORE: f64 = 2.0;
/// Attention-score-sized tensors the backward pass of one layer holds at once
/// beyond those it keeps (gradients of the probabilities and scores, and the
/// matmul's transposed operands). Fitted, with `BASELINE`, to the peaks below.
const BACKWARD_SCORES: f64 = 4.0;
/// Bytes of the process besides tensors.
const BASELINE: u64 = 70 << 20;
/// Rows of logits alive at once with checkpointing (train.rs's LOSS_CHUNK; all
/// trained rows without), and f32 tensors of vocabulary width per row (the
/// logits and, in the backward pass, their gradient).
const LOGIT_ROWS: u64 = 128;
const LOGIT_COPIES: u64 = 2;
/// f32 values of the frozen layers' shared tile buffer at most
/// (`qlora::qlinear::DEFAULT_TILE_VALUES`).
const TILE_VALUES: f64 = (4u64 << 20) as f64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryEstimate {
    pub weights: u64,
    pub embedding: u64,
    pub adapters: u64,
    pub activations: u64,
    pub logits: u64,
    pub baseline: u64,
    /// The peak while the model loads (the transient f32 copies of its largest
    /// weight included); `total` is the larger of this and the training peak.
    #[serde(default)]
    pub load: u64,
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
    let per_token_layer = ACT_PER_HIDDEN * h + ACT_PER_Q * q + ACT_PER_KV * kv + ACT_PER_MLP * i;
    let score_values = model.heads as f64 * tokens * cfg.seq_len as f64;
    let one_layer = (tokens * per_token_layer + ACT_PER_SCORE * score_values) * 4.0;
    let kept = if cfg.gradient_checkpointing { layers * tokens * h * 4.0 + one_layer } else { layers * one_layer };
    let backward = BACKWARD_SCORES * score_values * 4.0;
    let largest = (v * h).max(h * i).max(h * q);
    let activations = kept + backward + largest.min(TILE_VALUES) * 4.0;
    let logit_rows = if cfg.gradient_checkpointing { (LOGIT_ROWS as f64).min(tokens) } else { tokens };
    let logits = logit_rows * LOGIT_COPIES as f64 * v * 4.0;

    let transient_copies = if matches!(cfg.quant, BaseQuant::Nf4 | BaseQuant::Q8) { 2.0 } else { 1.0 };
    let load = (weights + embedding + transient_copies * largest * 4.0) as u64 + BASELINE;
    let parts = [weights, embedding, adapters, activations, logits];
    let train = parts.iter().sum::<f64>() as u64 + BASELINE;
    MemoryEstimate {
        weights: weights as u64,
        embedding: embedding as u64,
        adapters: adapters as u64,
        activations: activations as u64,
        logits: logits as u64,
        baseline: BASELINE,
        load,
        total: train.max(load),
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

    /// The estimate against the peaks measured on SmolLM2-135M (module docs):
    /// within 15% for every one, with and without checkpointing, with 1 and 8
    /// accumulation micro-batches.
    #[test]
    fn peaks_measured_on_smollm2() {
        let m = smollm2();
        let file = 98_362_432; // the Q4_1 GGUF fixture
        for (seq, accum, ckpt, measured_mib) in [(512, 1, true, 389.0), (512, 8, true, 403.0), (1024, 1, true, 629.0), (256, 8, true, 389.0), (512, 1, false, 1575.0), (256, 1, false, 772.0)] {
            let mut c = TrainConfig::new("m".into(), "d".into(), "o".into());
            (c.seq_len, c.grad_accum, c.gradient_checkpointing, c.batch, c.rank) = (seq, accum, ckpt, 1, 16);
            let est = estimate(&m, file, &c).total as f64 / (1u64 << 20) as f64;
            let err = (est - measured_mib) / measured_mib;
            assert!(err.abs() < 0.15, "T {seq} accum {accum} checkpointing {ckpt}: estimated {est:.0} MiB, measured {measured_mib} MiB");
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
