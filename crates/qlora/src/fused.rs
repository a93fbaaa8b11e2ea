//! Fused, differentiable CPU kernels for the parts of a decoder layer that
//! candle builds from many small ops in training: RMS norm, rotary embedding,
//! masked softmax, SwiGLU and the cross-entropy of a logits chunk.
//!
//! candle's fused kernels have no backward pass, and its differentiable
//! versions (`rms_norm_slow`, `rope_slow`, `ops::softmax`, ...) run five to
//! fifteen elementwise ops each way, every one a full pass over memory, a fresh
//! allocation and a hand-off between threads. Here each is one custom op with
//! a hand-written backward, parallel over rows with rayon (idle threads steal
//! rows, so a busy machine does not leave one thread spinning on another).
//! Each op keeps only what its backward needs: its input, or its output.
//! Sums over a row (norms, softmax denominators, dot products) run in f64.
//!
//! All take and give f32 tensors on the CPU; the callers keep the composed
//! candle versions for other devices and dtypes (see [`supported`]).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Whether the fused ops can run on `x` (f32 on the CPU).
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// Rows handed to one rayon task at least (so tiny rows are not split finely).
fn rows_per_task(width: usize) -> usize {
    (16 * 1024 / width.max(1)).max(1)
}

/// The contiguous f32 slice of a CPU storage, or an error naming the op.
fn slice<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{op}: expected f32, got {:?}", s.dtype()) };
    let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{op}: input must be contiguous") };
    Ok(&v[a..b])
}

fn f32_vec(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

// ---------------------------------------------------------------- RMS norm

/// `x / sqrt(mean(x^2) + eps) * w` over the last dimension, with a backward
/// pass to `x` (the norm weight `w` is frozen: it gets no gradient).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let d = x.dim(candle_core::D::Minus1)?;
    if w.elem_count() != d {
        candle_core::bail!("rms_norm: weight of {} values for rows of {d}", w.elem_count())
    }
    x.contiguous()?.apply_op1(RmsNorm { w: f32_vec(w)?, eps: eps as f32 })
}

struct RmsNorm {
    w: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn inv_rms(&self, row: &[f32]) -> f32 {
        let ss: f64 = row.iter().map(|&v| (v * v) as f64).sum();
        (1.0 / (ss / row.len() as f64 + self.eps as f64).sqrt()) as f32
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(self.name(), s, l)?;
        let d = self.w.len();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d).zip(x.par_chunks(d)).with_min_len(rows_per_task(d)).for_each(|(y, x)| {
            let r = self.inv_rms(x);
            for ((y, x), w) in y.iter_mut().zip(x).zip(&self.w) {
                *y = x * r * w;
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // y_i = x_i r w_i, r = (mean(x^2) + eps)^-1/2:
        // dx_j = r (g_j w_j - x_j r^2 sum_i(g_i w_i x_i) / d)
        let x = f32_vec(arg)?;
        let g = f32_vec(grad)?;
        let d = self.w.len();
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(d).zip(x.par_chunks(d).zip(g.par_chunks(d))).with_min_len(rows_per_task(d)).for_each(|(dx, (x, g))| {
            let r = self.inv_rms(x);
            let dot: f64 = g.iter().zip(&self.w).zip(x).map(|((g, w), x)| (g * w * x) as f64).sum();
            let c = (r as f64 * r as f64 * dot / d as f64) as f32;
            for (((dx, g), w), x) in dx.iter_mut().zip(g).zip(&self.w).zip(x) {
                *dx = r * (g * w - x * c);
            }
        });
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

// ------------------------------------------------------- rotary embedding

/// Rotate-half rotary embedding of `x` `[b, heads, seq, d]` (any strides with a
/// contiguous last dimension, e.g. a transposed `[b, seq, heads, d]`), with
/// `cos`/`sin` `[seq, d/2]`. Returns a contiguous `[b, heads, seq, d]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, seq, d) = x.dims4()?;
    if d % 2 != 0 || cos.dims() != [seq, d / 2] || sin.dims() != [seq, d / 2] {
        candle_core::bail!("rope: tables {:?}/{:?} do not fit input {:?}", cos.dims(), sin.dims(), x.dims())
    }
    let x = if x.stride()[3] == 1 { x.clone() } else { x.contiguous()? };
    x.apply_op1(Rope { cos: f32_vec(cos)?, sin: f32_vec(sin)?, sign: 1.0 })
}

struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// 1: the rotation; -1: its inverse (the backward pass).
    sign: f32,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(v) = s else { candle_core::bail!("{}: expected f32, got {:?}", self.name(), s.dtype()) };
        let (b, h, seq, d) = l.shape().dims4()?;
        let st = l.stride();
        if st[3] != 1 {
            candle_core::bail!("{}: the last dimension must be contiguous", self.name())
        }
        let half = d / 2;
        let start = l.start_offset();
        let mut y = vec![0f32; b * h * seq * d];
        y.par_chunks_mut(d).enumerate().with_min_len(rows_per_task(d)).for_each(|(row, y)| {
            let (bi, hi, t) = (row / (h * seq), row / seq % h, row % seq);
            let o = start + bi * st[0] + hi * st[1] + t * st[2];
            let x = &v[o..o + d];
            let (c, s) = (&self.cos[t * half..(t + 1) * half], &self.sin[t * half..(t + 1) * half]);
            for i in 0..half {
                let s = self.sign * s[i];
                y[i] = x[i] * c[i] - x[i + half] * s;
                y[i + half] = x[i + half] * c[i] + x[i] * s;
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // The rotation is orthogonal: its gradient is the inverse rotation.
        let inverse = Rope { cos: self.cos.clone(), sin: self.sin.clone(), sign: -self.sign };
        let g = if grad.stride()[3] == 1 { grad.clone() } else { grad.contiguous()? };
        Ok(Some(g.apply_op1_no_bwd(&inverse)?))
    }
}

// --------------------------------------------------------- masked softmax

/// `softmax(scale * s + mask)` over the last dimension of attention scores
/// `s` `[..., rows, keys]` from position 0: row `r` is query position
/// `r % seq`; keys after it are masked, and with a sliding `window`, keys
/// `window` or more positions before it too.
pub fn causal_softmax(s: &Tensor, scale: f64, seq: usize, window: Option<usize>) -> candle_core::Result<Tensor> {
    let keys = s.dim(candle_core::D::Minus1)?;
    if keys != seq {
        candle_core::bail!("causal_softmax: {keys} keys for {seq} positions")
    }
    if !(scale > 0.0) {
        candle_core::bail!("causal_softmax: the scale must be positive, got {scale}")
    }
    s.contiguous()?.apply_op1(CausalSoftmax { scale: scale as f32, seq, window })
}

struct CausalSoftmax {
    scale: f32,
    seq: usize,
    window: Option<usize>,
}

impl CausalSoftmax {
    /// Keys `lo..=q` of query position `q` are visible.
    fn visible(&self, row: usize) -> std::ops::Range<usize> {
        let q = row % self.seq;
        let lo = self.window.map_or(0, |w| (q + 1).saturating_sub(w));
        lo..q + 1
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "fused-causal-softmax"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let s = slice(self.name(), st, l)?;
        let n = self.seq;
        let mut p = vec![0f32; s.len()];
        p.par_chunks_mut(n).zip(s.par_chunks(n)).enumerate().with_min_len(rows_per_task(n)).for_each(|(row, (p, s))| {
            let vis = self.visible(row);
            let max = s[vis.clone()].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * self.scale;
            let mut sum = 0f64;
            for j in vis.clone() {
                let e = (s[j] * self.scale - max).exp();
                p[j] = e;
                sum += e as f64;
            }
            let inv = (1.0 / sum) as f32;
            p[vis].iter_mut().for_each(|v| *v *= inv);
        });
        Ok((CpuStorage::F32(p), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // ds_j = scale * p_j (g_j - sum_i g_i p_i); masked entries have p = 0.
        let p = f32_vec(res)?;
        let g = f32_vec(grad)?;
        let n = self.seq;
        let mut ds = vec![0f32; p.len()];
        ds.par_chunks_mut(n).zip(p.par_chunks(n).zip(g.par_chunks(n))).enumerate().with_min_len(rows_per_task(n)).for_each(|(row, (ds, (p, g)))| {
            let vis = self.visible(row);
            let dot = vis.clone().map(|j| (p[j] * g[j]) as f64).sum::<f64>() as f32;
            for j in vis {
                ds[j] = self.scale * p[j] * (g[j] - dot);
            }
        });
        Ok(Some(Tensor::from_vec(ds, res.shape(), res.device())?))
    }
}

// ------------------------------------------------------------------ SwiGLU

/// `silu(a) * b`, elementwise (the gated MLP's activation).
pub fn swiglu(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if a.shape() != b.shape() {
        candle_core::bail!("swiglu: shapes {:?} and {:?} differ", a.dims(), b.dims())
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, SwiGlu)
}

struct SwiGlu;

const SWIGLU_CHUNK: usize = 16 * 1024;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b) = (slice(self.name(), s1, l1)?, slice(self.name(), s2, l2)?);
        let mut y = vec![0f32; a.len()];
        y.par_chunks_mut(SWIGLU_CHUNK).zip(a.par_chunks(SWIGLU_CHUNK).zip(b.par_chunks(SWIGLU_CHUNK))).for_each(|(y, (a, b))| {
            for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                *y = a * sigmoid(a) * b;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // d/da = b s (1 + a (1 - s)), d/db = a s, with s = sigmoid(a).
        let (av, bv, g) = (f32_vec(a)?, f32_vec(b)?, f32_vec(grad)?);
        let mut da = vec![0f32; av.len()];
        let mut db = vec![0f32; av.len()];
        da.par_chunks_mut(SWIGLU_CHUNK)
            .zip(db.par_chunks_mut(SWIGLU_CHUNK))
            .zip(av.par_chunks(SWIGLU_CHUNK).zip(bv.par_chunks(SWIGLU_CHUNK)).zip(g.par_chunks(SWIGLU_CHUNK)))
            .for_each(|((da, db), ((a, b), g))| {
                for i in 0..a.len() {
                    let s = sigmoid(a[i]);
                    da[i] = g[i] * b[i] * s * (1.0 + a[i] * (1.0 - s));
                    db[i] = g[i] * a[i] * s;
                }
            });
        Ok((Some(Tensor::from_vec(da, a.shape(), a.device())?), Some(Tensor::from_vec(db, b.shape(), b.device())?)))
    }
}

// ----------------------------------------------------------- cross-entropy

/// The negative log-likelihood of `targets[i]` under `softmax(logits[i])`,
/// summed over the rows of `logits` `[rows, vocab]`: a scalar.
pub fn nll_sum(logits: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
    let (rows, vocab) = logits.dims2()?;
    if targets.len() != rows {
        candle_core::bail!("nll_sum: {} targets for {rows} rows", targets.len())
    }
    if let Some(t) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("nll_sum: target {t} is outside the vocabulary of {vocab}")
    }
    logits.contiguous()?.apply_op1(NllSum { targets: targets.to_vec() })
}

struct NllSum {
    targets: Vec<u32>,
}

/// `(max, log(sum(exp(x - max))))` of a row (summed in f64: a vocabulary of
/// 50,000-250,000 terms summed in f32 loses about 1e-4 of the loss).
fn log_sum_exp(x: &[f32]) -> (f32, f32) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = x.iter().map(|v| (v - max).exp() as f64).sum();
    (max, sum.ln() as f32)
}

impl CustomOp1 for NllSum {
    fn name(&self) -> &'static str {
        "fused-nll-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(self.name(), s, l)?;
        let (_, vocab) = l.shape().dims2()?;
        let total: f64 = x
            .par_chunks(vocab)
            .zip(self.targets.par_iter())
            .map(|(row, &t)| {
                let (max, lse) = log_sum_exp(row);
                (lse - (row[t as usize] - max)) as f64
            })
            .sum();
        Ok((CpuStorage::F32(vec![total as f32]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // d/dx = g (softmax(x) - onehot(target)).
        let g = grad.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let x = f32_vec(arg)?;
        let (_, vocab) = arg.dims2()?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(vocab).zip(x.par_chunks(vocab).zip(self.targets.par_iter())).for_each(|(dx, (row, &t))| {
            let (max, lse) = log_sum_exp(row);
            for (d, &v) in dx.iter_mut().zip(row) {
                *d = g * (v - max - lse).exp();
            }
            dx[t as usize] -= g;
        });
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{max_rel, rand};
    use candle_core::{Device, Var, D};

    /// Output and input gradients of `fused` and `reference` (candle's composed
    /// ops) on the same inputs, under a loss that weights every output.
    fn check(inputs: &[Tensor], fused: impl Fn(&[Tensor]) -> Tensor, reference: impl Fn(&[Tensor]) -> Tensor, tol: f32) {
        let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (y, y_ref) = (fused(&ts), reference(&ts));
        assert_eq!(y.dims(), y_ref.dims());
        let e = max_rel(&y, &y_ref);
        assert!(e < tol, "forward rel err {e}");
        let probe = rand(y.dims(), 99);
        let loss = |y: &Tensor| (y * &probe).unwrap().sum_all().unwrap();
        let (g, g_ref) = (loss(&y).backward().unwrap(), loss(&y_ref).backward().unwrap());
        for (i, v) in vars.iter().enumerate() {
            let e = max_rel(g.get(v).unwrap(), g_ref.get(v).unwrap());
            assert!(e < tol, "gradient of input {i}: rel err {e}");
        }
    }

    #[test]
    fn rms_norm_matches_the_composed_version() {
        let w = (rand(&[48], 2) + 1.5).unwrap();
        check(&[rand(&[2, 5, 48], 1)], |t| rms_norm(&t[0], &w, 1e-5).unwrap(), |t| candle_nn::ops::rms_norm_slow(&t[0], &w, 1e-5).unwrap(), 1e-5);
    }

    #[test]
    fn rope_matches_the_composed_version_on_transposed_input() {
        let (b, t, h, d) = (2, 7, 3, 16);
        let angles = (rand(&[t, d / 2], 3) * 3.0).unwrap();
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        check(
            &[rand(&[b, t, h, d], 4)],
            |x| rope(&x[0].transpose(1, 2).unwrap(), &cos, &sin).unwrap(),
            |x| candle_nn::rotary_emb::rope_slow(&x[0].transpose(1, 2).unwrap().contiguous().unwrap(), &cos, &sin).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn causal_softmax_matches_mask_plus_softmax() {
        let seq = 9;
        for window in [None, Some(4)] {
            let mut m = vec![0f32; seq * seq];
            for i in 0..seq {
                for j in 0..seq {
                    if j > i || window.is_some_and(|w| i - j.min(i) >= w) {
                        m[i * seq + j] = f32::NEG_INFINITY;
                    }
                }
            }
            let mask = Tensor::from_vec(m, (seq, seq), &Device::Cpu).unwrap();
            // Two heads folded into the rows, as the grouped attention does.
            check(
                &[(rand(&[1, 2, 2 * seq, seq], 5) * 4.0).unwrap()],
                |s| causal_softmax(&s[0], 0.3, seq, window).unwrap(),
                |s| {
                    let x = (&s[0] * 0.3).unwrap().reshape((1, 2, 2, seq, seq)).unwrap().broadcast_add(&mask).unwrap();
                    candle_nn::ops::softmax(&x.reshape((1, 2, 2 * seq, seq)).unwrap(), D::Minus1).unwrap()
                },
                1e-5,
            );
        }
    }

    #[test]
    fn swiglu_matches_silu_times() {
        let (a, b) = ((rand(&[3, 40_000], 6) * 5.0).unwrap(), rand(&[3, 40_000], 7));
        check(&[a, b], |t| swiglu(&t[0], &t[1]).unwrap(), |t| (t[0].silu().unwrap() * &t[1]).unwrap(), 1e-5);
    }

    #[test]
    fn nll_sum_matches_log_softmax_gather() {
        let targets = [3u32, 0, 77, 12];
        let tt = Tensor::new(&targets, &Device::Cpu).unwrap();
        check(
            &[(rand(&[4, 80], 8) * 6.0).unwrap()],
            |x| nll_sum(&x[0], &targets).unwrap(),
            |x| {
                let ls = candle_nn::ops::log_softmax(&x[0], D::Minus1).unwrap();
                ls.gather(&tt.unsqueeze(1).unwrap(), 1).unwrap().neg().unwrap().sum_all().unwrap()
            },
            1e-5,
        );
        assert!(nll_sum(&rand(&[2, 5], 1), &[1, 5]).is_err());
        assert!(nll_sum(&rand(&[2, 5], 1), &[1]).is_err());
    }
}
