//! NF4 (4-bit NormalFloat) quantization with double-quantized scales, as in the
//! QLoRA paper (Dettmers et al. 2023).
//!
//! Layout of an [`Nf4Tensor`] of `n` values (row-major, blocks run across rows):
//! - one 4-bit code per value (two per byte, the first value in the high nibble),
//!   an index into [`NF4_LEVELS`];
//! - one absmax per block of [`BLOCK`] = 64 values, stored double-quantized: the
//!   mean of all absmax values is kept as an f32 offset, and the centred values
//!   are quantized to i8 with one f32 scale per [`SCALE_BLOCK`] = 256 absmax values.
//!
//! Memory: 4 + 8/64 + 32/(64*256) = 4.127 bits per value (plus 4 bytes of offset).
//! The 8-bit step is symmetric linear (absmax/127) rather than bitsandbytes' dynamic
//! 8-bit float map; codes are chosen against the *dequantized* absmax, so the
//! error of the second quantization is partly absorbed by the first.

use std::ops::Range;

use rayon::prelude::*;
use candle_core::{DType, Device, Shape, Tensor};

use crate::{QloraError, Result};

/// The 16 NormalFloat4 levels of the QLoRA paper (bitsandbytes' NF4 table):
/// quantiles of N(0, 1) normalised to [-1, 1], with an exact zero.
pub const NF4_LEVELS: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// Values sharing one absmax.
pub const BLOCK: usize = 64;
/// Absmax values sharing one f32 scale in the double quantization.
pub const SCALE_BLOCK: usize = 256;

/// Index of the NF4 level nearest to `v` (v is expected in [-1, 1]; outside
/// values go to the end levels).
fn nearest_level(v: f32) -> u8 {
    let mut code = 0u8;
    for i in 0..15 {
        let mid = 0.5 * (NF4_LEVELS[i] + NF4_LEVELS[i + 1]);
        if v > mid {
            code = i as u8 + 1;
        } else {
            break;
        }
    }
    code
}

/// A tensor stored as NF4 codes with double-quantized block scales.
#[derive(Debug, Clone)]
pub struct Nf4Tensor {
    shape: Shape,
    codes: Vec<u8>,
    absmax_q: Vec<i8>,
    absmax_scale: Vec<f32>,
    absmax_offset: f32,
}

impl Nf4Tensor {
    /// Quantizes any float tensor (converted to f32 first).
    pub fn quantize(t: &Tensor) -> Result<Self> {
        let shape = t.shape().clone();
        let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        if values.is_empty() {
            return Err(QloraError::EmptyWeight);
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(QloraError::NonFinite { index: i, value: values[i] });
        }
        let absmax: Vec<f32> = values
            .chunks(BLOCK)
            .map(|b| b.iter().fold(0f32, |m, v| m.max(v.abs())))
            .collect();
        let absmax_offset = (absmax.iter().map(|&m| m as f64).sum::<f64>() / absmax.len() as f64) as f32;
        let mut absmax_q = Vec::with_capacity(absmax.len());
        let mut absmax_scale = Vec::with_capacity(absmax.len().div_ceil(SCALE_BLOCK));
        for group in absmax.chunks(SCALE_BLOCK) {
            let dev = group.iter().fold(0f32, |m, &a| m.max((a - absmax_offset).abs()));
            let scale = dev / 127.0;
            absmax_scale.push(scale);
            for &a in group {
                let q = if scale > 0.0 { ((a - absmax_offset) / scale).round().clamp(-127.0, 127.0) } else { 0.0 };
                absmax_q.push(q as i8);
            }
        }
        let mut codes = vec![0u8; values.len().div_ceil(2)];
        for (b, block) in values.chunks(BLOCK).enumerate() {
            let m = absmax_offset + absmax_q[b] as f32 * absmax_scale[b / SCALE_BLOCK];
            for (j, &v) in block.iter().enumerate() {
                let code = if m > 0.0 { nearest_level(v / m) } else { 7 };
                let i = b * BLOCK + j;
                codes[i / 2] |= if i & 1 == 0 { code << 4 } else { code };
            }
        }
        Ok(Self { shape, codes, absmax_q, absmax_scale, absmax_offset })
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    /// Bytes held: codes, quantized absmax, their scales and the offset.
    pub fn bytes(&self) -> usize {
        self.codes.len() + self.absmax_q.len() + 4 * self.absmax_scale.len() + 4
    }

    pub fn bits_per_weight(&self) -> f64 {
        self.bytes() as f64 * 8.0 / self.elem_count() as f64
    }

    /// The absmax of block `b`, as dequantized.
    fn block_absmax(&self, b: usize) -> f32 {
        self.absmax_offset + self.absmax_q[b] as f32 * self.absmax_scale[b / SCALE_BLOCK]
    }

    /// Dequantizes the flat element range `range` into `out` (same length).
    fn dequantize_into(&self, range: Range<usize>, out: &mut [f32]) {
        debug_assert_eq!(range.len(), out.len());
        let mut i = range.start;
        let mut o = 0;
        // Element by element up to a block boundary, then whole blocks: one absmax
        // and 32 bytes (64 codes) at a time.
        while i < range.end && (i % BLOCK != 0) {
            out[o] = self.value(i);
            i += 1;
            o += 1;
        }
        while i + BLOCK <= range.end {
            let m = self.block_absmax(i / BLOCK);
            let bytes = &self.codes[i / 2..i / 2 + BLOCK / 2];
            for (pair, &byte) in out[o..o + BLOCK].chunks_exact_mut(2).zip(bytes) {
                pair[0] = NF4_LEVELS[(byte >> 4) as usize] * m;
                pair[1] = NF4_LEVELS[(byte & 0x0f) as usize] * m;
            }
            i += BLOCK;
            o += BLOCK;
        }
        while i < range.end {
            out[o] = self.value(i);
            i += 1;
            o += 1;
        }
    }

    /// Element `i` (flat index).
    fn value(&self, i: usize) -> f32 {
        let byte = self.codes[i / 2];
        let code = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        NF4_LEVELS[code as usize] * self.block_absmax(i / BLOCK)
    }

    /// The whole tensor in f32, on the CPU.
    pub fn dequantize(&self) -> Result<Tensor> {
        let mut out = vec![0f32; self.elem_count()];
        self.dequantize_into(0..self.elem_count(), &mut out);
        Ok(Tensor::from_vec(out, self.shape.clone(), &Device::Cpu)?)
    }

    /// Rows `rows` of a 2-D tensor in f32, as a `[rows.len(), cols]` tensor on the CPU.
    pub fn dequantize_rows(&self, rows: Range<usize>) -> Result<Tensor> {
        let (n_rows, cols) = self.shape.dims2().map_err(|_| QloraError::NotAMatrix(self.shape.clone()))?;
        if rows.start > rows.end || rows.end > n_rows {
            return Err(QloraError::RowsOutOfRange { start: rows.start, end: rows.end, rows: n_rows });
        }
        let mut out = vec![0f32; rows.len() * cols];
        let n = rows.len();
        self.dequantize_rows_into(rows, &mut out)?;
        Ok(Tensor::from_vec(out, (n, cols), &Device::Cpu)?)
    }

    /// Rows `rows` of a 2-D tensor in f32, written into `out` (`rows.len() * cols`
    /// values): the frozen linear layer decodes into a buffer it reuses.
    pub fn dequantize_rows_into(&self, rows: Range<usize>, out: &mut [f32]) -> Result<()> {
        let (n_rows, cols) = self.shape.dims2().map_err(|_| QloraError::NotAMatrix(self.shape.clone()))?;
        if rows.start > rows.end || rows.end > n_rows {
            return Err(QloraError::RowsOutOfRange { start: rows.start, end: rows.end, rows: n_rows });
        }
        if out.len() != rows.len() * cols {
            return Err(QloraError::BufferSize { expected: rows.len() * cols, got: out.len() });
        }
        // In parallel, in chunks of whole blocks (the decode is memory-bound and
        // runs three times per layer and micro-batch in training).
        const CHUNK: usize = BLOCK * 1024;
        let start = rows.start * cols;
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(k, o)| {
            let s = start + k * CHUNK;
            self.dequantize_into(s..s + o.len(), o);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Inverse of the standard normal CDF (Acklam's rational approximation,
    /// relative error below 1.2e-9): an independent reference for the table.
    fn norm_ppf(p: f64) -> f64 {
        const A: [f64; 6] = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
        const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
        const C: [f64; 6] = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
        const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
        let pl = 0.02425;
        if p < pl {
            let q = (-2.0 * p.ln()).sqrt();
            (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
        } else if p <= 1.0 - pl {
            let q = p - 0.5;
            let r = q * q;
            (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
        } else {
            -norm_ppf(1.0 - p)
        }
    }

    /// The paper's construction: 8 positive quantiles from linspace(delta, 0.5, 9),
    /// 7 negative from linspace(delta, 0.5, 8), delta = 0.9677, a zero, normalised.
    #[test]
    fn levels_are_the_normal_quantiles_of_the_paper() {
        let delta = 0.967_708_333_333_333_3_f64; // (1 - 1/(2*15) + 1 - 1/(2*16)) / 2
        let lin = |n: usize, i: usize| delta + (0.5 - delta) * i as f64 / (n - 1) as f64;
        let pos: Vec<f64> = (0..8).map(|i| norm_ppf(lin(9, i))).collect();
        let neg: Vec<f64> = (0..7).map(|i| -norm_ppf(lin(8, i))).collect();
        let mut v: Vec<f64> = pos.into_iter().chain(neg).chain([0.0]).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let max = v.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (i, (&r, &l)) in v.iter().zip(NF4_LEVELS.iter()).enumerate() {
            assert!((r / max - l as f64).abs() < 1e-6, "level {i}: reference {} vs table {l}", r / max);
        }
    }

    #[test]
    fn nearest_level_picks_each_level_exactly() {
        for (i, &l) in NF4_LEVELS.iter().enumerate() {
            assert_eq!(nearest_level(l) as usize, i);
        }
        assert_eq!(nearest_level(1.5), 15);
        assert_eq!(nearest_level(-1.5), 0);
    }

    #[test]
    fn levels_round_trip_exactly() -> Result<()> {
        // Every block holds all 16 levels, so every absmax is 1 and the double
        // quantization is exact (offset 1, zero deviation).
        let vals: Vec<f32> = (0..4 * BLOCK * SCALE_BLOCK + 32).map(|i| NF4_LEVELS[i % 16]).collect();
        let t = Tensor::from_vec(vals.clone(), vals.len(), &Device::Cpu)?;
        let back: Vec<f32> = Nf4Tensor::quantize(&t)?.dequantize()?.to_vec1()?;
        assert_eq!(back, vals);
        Ok(())
    }

    fn gaussian_with_varied_scales(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..rows * cols)
            .map(|i| {
                // Box-Muller; scale varies by row like real weights do.
                let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (z * 0.02 * (1.0 + (i / cols % 7) as f64)) as f32
            })
            .collect()
    }

    #[test]
    fn round_trip_error_is_small_against_f32() -> Result<()> {
        let (rows, cols) = (96, 576);
        let vals = gaussian_with_varied_scales(rows, cols, 1);
        let t = Tensor::from_vec(vals.clone(), (rows, cols), &Device::Cpu)?;
        let q = Nf4Tensor::quantize(&t)?;
        let back: Vec<f32> = q.dequantize()?.flatten_all()?.to_vec1()?;
        let mut sq_err = 0f64;
        let mut sq_absmax = 0f64;
        for (b, (orig, deq)) in vals.chunks(BLOCK).zip(back.chunks(BLOCK)).enumerate() {
            let absmax = orig.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (o, d) in orig.iter().zip(deq) {
                let e = (o - d).abs();
                // Worst case: half the widest gap between levels (0.152) plus the
                // absmax error of the 8-bit second quantization.
                assert!(e <= 0.16 * absmax, "block {b}: error {e} vs absmax {absmax}");
                sq_err += (e as f64).powi(2);
            }
            sq_absmax += (absmax as f64).powi(2) * BLOCK as f64;
        }
        let rel_rms = (sq_err / sq_absmax).sqrt();
        println!("NF4 round trip: RMS error / RMS block absmax = {rel_rms:.5}");
        // A symmetric int4 absmax grid (step absmax/7, worst case absmax/14) has a
        // nominal RMS error of absmax/7/sqrt(12) = 0.041 absmax; NF4 on normal data
        // does better (0.035 measured here).
        assert!(rel_rms < 0.04, "RMS error relative to absmax: {rel_rms}");
        Ok(())
    }

    #[test]
    fn rows_match_the_full_dequantization() -> Result<()> {
        let (rows, cols) = (10, 70); // blocks straddle rows; last block partial
        let vals = gaussian_with_varied_scales(rows, cols, 2);
        let q = Nf4Tensor::quantize(&Tensor::from_vec(vals, (rows, cols), &Device::Cpu)?)?;
        let full = q.dequantize()?;
        let tile = q.dequantize_rows(3..7)?;
        let diff = (full.narrow(0, 3, 4)? - tile)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        assert!(q.dequantize_rows(5..11).is_err());
        Ok(())
    }

    #[test]
    fn memory_is_about_4_127_bits_per_weight() -> Result<()> {
        let t = Tensor::zeros((576, 1536), DType::F32, &Device::Cpu)?;
        let q = Nf4Tensor::quantize(&t)?;
        let bits = q.bits_per_weight();
        assert!((bits - 4.127).abs() < 0.001, "{bits} bits per weight");
        assert_eq!(q.dequantize()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() -> Result<()> {
        let t = Tensor::new(&[1f32, f32::NAN], &Device::Cpu)?;
        assert!(matches!(Nf4Tensor::quantize(&t), Err(QloraError::NonFinite { index: 1, .. })));
        let v = Tensor::new(&[1f32, 2.0], &Device::Cpu)?;
        assert!(matches!(Nf4Tensor::quantize(&v)?.dequantize_rows(0..1), Err(QloraError::NotAMatrix(_))));
        Ok(())
    }
}
