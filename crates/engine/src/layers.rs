//! The few building blocks both model files use: RMS norm, rotary embeddings,
//! the attention mask, grouped-query attention, and the KV cache.

use candle_core::{DType, Device, Tensor};

use crate::error::Result;

/// How a forward pass runs: for inference (fused kernels, no gradients) or for
/// training (differentiable ops, optional dropout in adapters, optional
/// gradient checkpointing per decoder layer).
#[derive(Clone, Default)]
pub struct Pass {
    pub grad: bool,
    /// Seeds the adapters' dropout; each layer mixes in its own index and name.
    pub dropout_seed: Option<u64>,
    /// Recompute each decoder layer in the backward pass instead of keeping its
    /// activations; the gradients of its adapters land in this sink.
    pub checkpoint: Option<qlora::GradSink>,
}

impl Pass {
    pub fn inference() -> Pass {
        Pass::default()
    }

    /// The dropout seed of decoder layer `i`.
    pub fn layer_seed(&self, i: usize) -> Option<u64> {
        self.dropout_seed.map(|s| s.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }
}

/// The embeddings entering the first decoder layer of a training pass.
/// Checkpointed layers record their backward only for a tracked input, so with
/// checkpointing the embeddings become a variable.
pub fn train_input(x: Tensor, pass: &Pass) -> candle_core::Result<Tensor> {
    match pass.checkpoint {
        Some(_) => Ok(candle_core::Var::from_tensor(&x)?.into_inner()),
        None => Ok(x),
    }
}

/// Runs one decoder layer (`block`, using the projections `linears`) on `x` in a
/// training pass: directly, or checkpointed when the pass asks for it.
pub fn run_layer(x: &Tensor, pass: &Pass, linears: &[&crate::weights::Linear], block: qlora::Block) -> candle_core::Result<Tensor> {
    match &pass.checkpoint {
        None => block(x),
        Some(sink) => {
            let vars = linears.iter().filter_map(|l| l.adapter.as_ref()).flat_map(|a| a.vars()).collect();
            qlora::checkpoint(x, block, vars, sink)
        }
    }
}

// Each op below has a fused kernel for inference and, for training
// (`grad == true`), one with a backward pass: candle's fused norm, softmax and
// rope kernels have none. On the CPU in f32 training uses qlora's fused
// differentiable kernels; elsewhere candle's composed (slow) versions.

/// `x / rms(x) * w` over the last dimension.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, grad: bool) -> candle_core::Result<Tensor> {
    if grad && qlora::fused::supported(x) {
        qlora::fused::rms_norm(x, w, eps)
    } else if grad {
        candle_nn::ops::rms_norm_slow(x, w, eps as f32)
    } else {
        candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)
    }
}

/// Cosine and sine tables for positions `start..start + len`, shaped `[len, head_dim/2]`.
/// Positions are divided by `scale` (linear rope scaling).
pub fn rope_tables(head_dim: usize, base: f64, scale: f64, start: usize, len: usize, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half).map(|i| (1.0 / base.powf(2.0 * i as f64 / head_dim as f64)) as f32).collect();
    let mut angles = Vec::with_capacity(len * half);
    for p in start..start + len {
        let pos = p as f64 / scale;
        angles.extend(inv_freq.iter().map(|f| (pos * *f as f64) as f32));
    }
    let angles = Tensor::from_vec(angles, (len, half), device)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Rotate-half rotary embedding on `[batch, heads, seq, head_dim]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, grad: bool) -> candle_core::Result<Tensor> {
    if grad && qlora::fused::supported(x) && x.stride()[3] == 1 {
        qlora::fused::rope(x, cos, sin)
    } else if grad {
        candle_nn::rotary_emb::rope_slow(x, cos, sin)
    } else {
        candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)
    }
}

/// The additive mask for `seq` new queries at positions `start..start+seq` over
/// `start + seq` keys: `-inf` where a key is in the future or, with a sliding
/// window, `window` or more positions in the past. `None` when nothing is masked.
pub fn attention_mask(start: usize, seq: usize, window: Option<usize>, device: &Device) -> candle_core::Result<Option<Tensor>> {
    let total = start + seq;
    let mut any = false;
    let mut m = vec![0f32; seq * total];
    for i in 0..seq {
        let qpos = start + i;
        for j in 0..total {
            let future = j > qpos;
            let too_old = window.is_some_and(|w| qpos - j.min(qpos) >= w);
            if future || too_old {
                m[i * total + j] = f32::NEG_INFINITY;
                any = true;
            }
        }
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(Tensor::from_vec(m, (seq, total), device)?))
}

/// Scaled dot-product attention with grouped key/value heads.
/// `q`: `[b, heads, seq, d]`, `k`/`v`: `[b, kv_heads, total, d]`, `mask`: `[seq, total]`.
/// Query heads sharing a key/value head are folded into the row dimension, so keys
/// and values are never copied per head. Returns `[b, seq, heads * d]`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, scale: f64, grad: bool) -> candle_core::Result<Tensor> {
    let (b, heads, seq, d) = q.dims4()?;
    let kv_heads = k.dim(1)?;
    let total = k.dim(2)?;
    let rep = heads / kv_heads;
    let q = q.reshape((b, kv_heads, rep * seq, d))?;
    let scores = (q.matmul(&k.t()?)? * scale)?;
    let scores = match mask {
        Some(m) => scores.reshape((b, kv_heads, rep, seq, total))?.broadcast_add(m)?.reshape((b, kv_heads, rep * seq, total))?,
        None => scores,
    };
    let probs = if grad { candle_nn::ops::softmax(&scores, candle_core::D::Minus1)? } else { candle_nn::ops::softmax_last_dim(&scores)? };
    let out = probs.matmul(&v.contiguous()?)?; // [b, kv_heads, rep*seq, d]
    out.reshape((b, heads, seq, d))?.transpose(1, 2)?.reshape((b, seq, heads * d))
}

/// Attention in a training pass (no cache, queries and keys from position 0):
/// as [`attention`] with the causal mask (and the sliding `window`, if any);
/// on the CPU in f32, scale, mask and softmax are one fused op.
pub fn attention_train(q: &Tensor, k: &Tensor, v: &Tensor, window: Option<usize>, scale: f64) -> candle_core::Result<Tensor> {
    if !qlora::fused::supported(q) {
        let mask = attention_mask(0, q.dim(2)?, window, q.device())?;
        return attention(q, k, v, mask.as_ref(), scale, true);
    }
    let (b, heads, seq, d) = q.dims4()?;
    let kv_heads = k.dim(1)?;
    let q = q.reshape((b, kv_heads, heads / kv_heads * seq, d))?;
    let probs = qlora::fused::causal_softmax(&q.matmul(&k.t()?)?, scale, seq, window)?;
    let out = probs.matmul(&v.contiguous()?)?;
    out.reshape((b, heads, seq, d))?.transpose(1, 2)?.reshape((b, seq, heads * d))
}

/// `silu(gate) * up` (the gated MLP), fused in training on the CPU.
pub fn swiglu(gate: &Tensor, up: &Tensor, grad: bool) -> candle_core::Result<Tensor> {
    if grad && qlora::fused::supported(gate) && qlora::fused::supported(up) {
        qlora::fused::swiglu(gate, up)
    } else {
        gate.silu()? * up
    }
}

/// Keys and values of every layer for the tokens seen so far, plus the tokens
/// themselves so that a new prompt sharing a prefix reuses the cache.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    tokens: Vec<u32>,
}

impl KvCache {
    pub fn new(layers: usize) -> KvCache {
        KvCache { layers: vec![None; layers], tokens: Vec::new() }
    }

    /// How many positions are cached.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.tokens.clear();
    }

    /// Keeps the first `n` positions.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.tokens.len() {
            return Ok(());
        }
        if n == 0 {
            self.clear();
            return Ok(());
        }
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.narrow(2, 0, n)?;
            *v = v.narrow(2, 0, n)?;
        }
        self.tokens.truncate(n);
        Ok(())
    }

    /// Appends a layer's new keys and values and returns all of them.
    ///
    /// They are detached from the autograd graph: with an adapter, whose weights are
    /// trainable variables, every cached key would otherwise keep the whole graph of the
    /// step that made it (and, through the concatenation, of every earlier step), so a
    /// long chat grew by gigabytes until the process was killed.
    pub(crate) fn append(&mut self, layer: usize, k: Tensor, v: Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (k, v) = (k.detach(), v.detach());
        let kv = match self.layers[layer].take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
        };
        self.layers[layer] = Some(kv.clone());
        Ok(kv)
    }

    pub(crate) fn push_tokens(&mut self, ids: &[u32]) {
        self.tokens.extend_from_slice(ids);
    }
}

/// Logits `[len, vocab]` as f32 on the CPU.
pub(crate) fn logits_to_cpu(x: Tensor) -> candle_core::Result<Tensor> {
    x.to_dtype(DType::F32)?.to_device(&Device::Cpu)
}

/// Picks the last position of `[1, seq, hidden]`, or keeps all.
pub(crate) fn select_positions(x: &Tensor, all: bool) -> candle_core::Result<Tensor> {
    let seq = x.dim(1)?;
    if all {
        x.squeeze(0)
    } else {
        x.narrow(1, seq - 1, 1)?.squeeze(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_mask_with_offset_and_window() {
        let d = Device::Cpu;
        assert!(attention_mask(5, 1, None, &d).unwrap().is_none());
        let m = attention_mask(1, 2, None, &d).unwrap().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(m[0], vec![0.0, 0.0, f32::NEG_INFINITY]);
        assert_eq!(m[1], vec![0.0, 0.0, 0.0]);
        let w = attention_mask(3, 1, Some(2), &d).unwrap().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(w[0], vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, 0.0]);
    }

    /// Grouped attention against a direct per-head computation.
    #[test]
    fn grouped_attention_matches_per_head_reference() {
        let d = Device::Cpu;
        let (heads, kvh, seq, hd) = (4, 2, 3, 8);
        let q = Tensor::randn(0f32, 1.0, (1, heads, seq, hd), &d).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, kvh, seq, hd), &d).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, kvh, seq, hd), &d).unwrap();
        let mask = attention_mask(0, seq, None, &d).unwrap();
        for grad in [false, true] {
        let got = attention(&q, &k, &v, mask.as_ref(), 0.5, grad).unwrap().to_vec3::<f32>().unwrap();
        let q4: Vec<Vec<Vec<f32>>> = q.squeeze(0).unwrap().to_vec3().unwrap();
        let k4: Vec<Vec<Vec<f32>>> = k.squeeze(0).unwrap().to_vec3().unwrap();
        let v4: Vec<Vec<Vec<f32>>> = v.squeeze(0).unwrap().to_vec3().unwrap();
        for h in 0..heads {
            let g = h / (heads / kvh);
            for i in 0..seq {
                let s: Vec<f32> = (0..=i).map(|j| 0.5 * (0..hd).map(|c| q4[h][i][c] * k4[g][j][c]).sum::<f32>()).collect();
                let mx = s.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = s.iter().map(|x| (x - mx).exp()).collect();
                let z: f32 = e.iter().sum();
                for c in 0..hd {
                    let want: f32 = (0..=i).map(|j| e[j] / z * v4[g][j][c]).sum();
                    let have = got[0][i][h * hd + c];
                    assert!((want - have).abs() < 1e-5, "head {h} pos {i} col {c}: {want} vs {have} (grad {grad})");
                }
            }
        }
        }
    }

    /// The training attention (fused causal softmax) against the masked one,
    /// forward and gradients, with and without a sliding window.
    #[test]
    fn training_attention_matches_masked_attention() {
        let d = Device::Cpu;
        let (heads, kvh, seq, hd) = (4, 2, 6, 8);
        for window in [None, Some(3)] {
            let q = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, heads, seq, hd), &d).unwrap()).unwrap();
            let k = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, kvh, seq, hd), &d).unwrap()).unwrap();
            let v = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, kvh, seq, hd), &d).unwrap()).unwrap();
            let probe = Tensor::randn(0f32, 1.0, (1, seq, heads * hd), &d).unwrap();
            let mask = attention_mask(0, seq, window, &d).unwrap();
            let fused = attention_train(&q, &k, &v, window, 0.4).unwrap();
            let plain = attention(&q, &k, &v, mask.as_ref(), 0.4, true).unwrap();
            let diff = |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff(&fused, &plain) < 1e-5);
            let gf = (fused * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let gp = (plain * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for x in [&q, &k, &v] {
                assert!(diff(gf.get(x).unwrap(), gp.get(x).unwrap()) < 1e-4, "window {window:?}");
            }
        }
    }

    #[test]
    fn the_cache_keeps_no_autograd_graph() {
        // Keys computed from a trainable variable (an adapter's weight) carry its graph;
        // what the cache keeps and hands back must not.
        let d = Device::Cpu;
        let w = candle_core::Var::ones((1, 1, 2, 2), DType::F32, &d).unwrap();
        let k = (w.as_tensor() * 2.0).unwrap();
        assert!(k.track_op());
        let mut c = KvCache::new(1);
        for _ in 0..2 {
            let (k_all, v_all) = c.append(0, k.clone(), k.clone()).unwrap();
            assert!(!k_all.track_op() && !v_all.track_op());
        }
        let (k_all, _) = c.layers[0].clone().unwrap();
        assert_eq!(k_all.dim(2).unwrap(), 4);
        assert!(!k_all.track_op());
    }

    #[test]
    fn cache_truncates() {
        let d = Device::Cpu;
        let mut c = KvCache::new(1);
        let k = Tensor::zeros((1, 1, 3, 2), DType::F32, &d).unwrap();
        c.append(0, k.clone(), k.clone()).unwrap();
        c.push_tokens(&[1, 2, 3]);
        c.truncate(2).unwrap();
        assert_eq!(c.len(), 2);
        let (k2, _) = c.append(0, k.narrow(2, 0, 1).unwrap(), k.narrow(2, 0, 1).unwrap()).unwrap();
        assert_eq!(k2.dim(2).unwrap(), 3);
    }
}
