//! A frozen linear layer `y = x W^T + b` that passes gradients to `x` without
//! keeping a dequantized copy of W (see the crate docs for why).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use candle_core::quantized::{QStorage, QTensor};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use crate::nf4::Nf4Tensor;
use crate::{QloraError, Result};

/// Rows of W dequantized at once by default.
pub const DEFAULT_TILE_ROWS: usize = 256;

/// A frozen `[out, in]` weight in one of the storages we train on top of.
#[derive(Debug)]
pub enum FrozenWeight {
    Nf4(Nf4Tensor),
    /// A GGUF tensor in its own quantization (Q8_0, Q4K, ...), on the CPU.
    Quantized(Arc<QTensor>),
    /// An f32 `[out, in]` tensor on the CPU.
    Dense(Tensor),
}

impl FrozenWeight {
    /// `(out, in)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        let shape = match self {
            FrozenWeight::Nf4(q) => q.shape().clone(),
            FrozenWeight::Quantized(q) => q.shape().clone(),
            FrozenWeight::Dense(t) => t.shape().clone(),
        };
        shape.dims2().map_err(|_| QloraError::NotAMatrix(shape))
    }

    /// Bytes the weight occupies.
    pub fn bytes(&self) -> usize {
        match self {
            FrozenWeight::Nf4(q) => q.bytes(),
            FrozenWeight::Quantized(q) => q.storage_size_in_bytes(),
            FrozenWeight::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
        }
    }

    /// Rows `rows` of W in f32, `[rows.len(), in]`, on the CPU.
    pub fn rows(&self, rows: Range<usize>) -> Result<Tensor> {
        let (out, cols) = self.dims()?;
        if rows.start > rows.end || rows.end > out {
            return Err(QloraError::RowsOutOfRange { start: rows.start, end: rows.end, rows: out });
        }
        match self {
            FrozenWeight::Nf4(q) => q.dequantize_rows(rows),
            FrozenWeight::Dense(t) => Ok(t.narrow(0, rows.start, rows.len())?.to_dtype(DType::F32)?),
            FrozenWeight::Quantized(q) => {
                let dtype = q.dtype();
                // Checked at construction: rows hold whole blocks, so a row range is
                // a byte range (and stays aligned for the block type).
                let row_bytes = cols / dtype.block_size() * dtype.type_size();
                let data = q.data()?;
                let tile = &data[rows.start * row_bytes..rows.end * row_bytes];
                let storage = QStorage::from_data(Cow::Borrowed(tile), &Device::Cpu, dtype)?;
                Ok(QTensor::new(storage, (rows.len(), cols))?.dequantize(&Device::Cpu)?)
            }
        }
    }

    fn check(&self) -> Result<()> {
        let (_, cols) = self.dims()?;
        match self {
            FrozenWeight::Quantized(q) if cols % q.dtype().block_size() != 0 => Err(QloraError::RowNotBlockAligned {
                cols,
                dtype: format!("{:?}", q.dtype()),
                block: q.dtype().block_size(),
            }),
            FrozenWeight::Quantized(q) if !q.device().is_cpu() => {
                Err(candle_core::Error::Msg("frozen quantized weights must be on the CPU".into()).into())
            }
            FrozenWeight::Dense(t) if !t.device().is_cpu() => {
                Err(candle_core::Error::Msg("frozen weights must be on the CPU".into()).into())
            }
            _ => Ok(()),
        }
    }
}

/// `y = x W^T + b` with W frozen. Only `x` (and whatever produced it) gets gradients.
#[derive(Debug, Clone)]
pub struct FrozenLinear {
    weight: Arc<FrozenWeight>,
    bias: Option<Tensor>,
    tile_rows: usize,
}

impl FrozenLinear {
    pub fn new(weight: FrozenWeight, bias: Option<Tensor>) -> Result<Self> {
        weight.check()?;
        let (out, _) = weight.dims()?;
        if let Some(b) = &bias {
            if b.elem_count() != out {
                return Err(QloraError::BiasSize { expected: out, got: b.elem_count() });
            }
        }
        let bias = bias.map(|b| b.detach().to_dtype(DType::F32)).transpose()?;
        Ok(Self { weight: Arc::new(weight), bias, tile_rows: DEFAULT_TILE_ROWS })
    }

    /// Rows of W dequantized at once (at least 1).
    pub fn with_tile_rows(mut self, tile_rows: usize) -> Self {
        self.tile_rows = tile_rows.max(1);
        self
    }

    pub fn weight(&self) -> &FrozenWeight {
        &self.weight
    }

    pub fn in_dim(&self) -> usize {
        self.weight.dims().map(|d| d.1).unwrap_or(0)
    }

    pub fn out_dim(&self) -> usize {
        self.weight.dims().map(|d| d.0).unwrap_or(0)
    }

    /// `x`: `[..., in]` f32 on the CPU; returns `[..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (out, inp) = self.weight.dims()?;
        let dims = x.dims();
        if dims.last() != Some(&inp) {
            return Err(QloraError::InputWidth { expected: inp, got: x.shape().clone() });
        }
        let n = x.elem_count() / inp;
        let x2 = x.to_dtype(DType::F32)?.contiguous()?.reshape((n, inp))?;
        let y = x2.apply_op1(TiledMatMul { weight: self.weight.clone(), tile_rows: self.tile_rows, transposed: false })?;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("checked non-empty") = out;
        let y = y.reshape(out_dims)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// `transposed == false`: `[n, in] -> [n, out]`, `x W^T`, with backward.
/// `transposed == true`:  `[n, out] -> [n, in]`, `g W` (the backward itself).
struct TiledMatMul {
    weight: Arc<FrozenWeight>,
    tile_rows: usize,
    transposed: bool,
}

impl TiledMatMul {
    fn run(&self, a: &Tensor) -> Result<Tensor> {
        let (out, inp) = self.weight.dims()?;
        let n = a.dim(0)?;
        if !self.transposed {
            let mut y = vec![0f32; n * out];
            for r0 in (0..out).step_by(self.tile_rows) {
                let rows = self.tile_rows.min(out - r0);
                let w = self.weight.rows(r0..r0 + rows)?;
                let tile: Vec<f32> = a.matmul(&w.t()?)?.flatten_all()?.to_vec1()?;
                for (i, t) in tile.chunks(rows).enumerate() {
                    y[i * out + r0..i * out + r0 + rows].copy_from_slice(t);
                }
            }
            Ok(Tensor::from_vec(y, (n, out), &Device::Cpu)?)
        } else {
            let mut acc: Option<Tensor> = None;
            for r0 in (0..out).step_by(self.tile_rows) {
                let rows = self.tile_rows.min(out - r0);
                let w = self.weight.rows(r0..r0 + rows)?;
                let part = a.narrow(1, r0, rows)?.contiguous()?.matmul(&w)?;
                acc = Some(match acc {
                    Some(s) => (s + part)?,
                    None => part,
                });
            }
            Ok(acc.unwrap_or(Tensor::zeros((n, inp), DType::F32, &Device::Cpu)?))
        }
    }
}

impl CustomOp1 for TiledMatMul {
    fn name(&self) -> &'static str {
        "qlora-frozen-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = match storage {
            CpuStorage::F32(v) => v,
            other => candle_core::bail!("{}: expected f32 input, got {:?}", self.name(), other.dtype()),
        };
        let (n, k) = layout.shape().dims2()?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: input must be contiguous", self.name())
        };
        let a = Tensor::from_slice(&data[start..end], (n, k), &Device::Cpu)?;
        let y = self.run(&a).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1()?), shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        if self.transposed {
            candle_core::bail!("{}: second-order gradients are not supported", self.name())
        }
        let op = TiledMatMul { weight: self.weight.clone(), tile_rows: self.tile_rows, transposed: true };
        Ok(Some(grad_res.to_dtype(DType::F32)?.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;
    use candle_core::Var;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        // Deterministic pseudo-random values in [-1, 1) (xorshift), no device RNG.
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let m = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        d / m.max(1e-30)
    }

    /// Forward and input gradient of the layer vs the f32 reference `x W^T`
    /// computed by candle's own differentiable matmul on the dequantized W.
    fn check_against_f32(layer: &FrozenLinear, w_deq: &Tensor, x_shape: &[usize]) {
        let x = Var::from_tensor(&rand(x_shape, 7)).unwrap();
        let out = w_deq.dim(0).unwrap();
        let probe = rand(&[out], 11); // a non-uniform loss so every output matters
        let y = layer.forward(&x).unwrap();
        let y_ref = x.broadcast_matmul(&w_deq.t().unwrap()).unwrap();
        assert_eq!(y.dims(), y_ref.dims());
        let e = rel_err(&y, &y_ref);
        assert!(e < 1e-4, "forward rel err {e}");

        let g = y.broadcast_mul(&probe).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g_ref = y_ref.broadcast_mul(&probe).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gx = g.get(&x).expect("x must get a gradient");
        let gx_ref = g_ref.get(&x).unwrap();
        let e = rel_err(gx, gx_ref);
        assert!(e < 1e-4, "grad x rel err {e}");
    }

    #[test]
    fn nf4_forward_and_input_gradient_match_f32() {
        let w = (rand(&[300, 128], 1) * 0.05).unwrap();
        let q = Nf4Tensor::quantize(&w).unwrap();
        let w_deq = q.dequantize().unwrap();
        // 64-row tiles with 300 rows: a partial last tile is exercised too.
        let layer = FrozenLinear::new(FrozenWeight::Nf4(q), None).unwrap().with_tile_rows(64);
        check_against_f32(&layer, &w_deq, &[2, 5, 128]);
        check_against_f32(&layer, &w_deq, &[9, 128]);
    }

    #[test]
    fn gguf_quantized_forward_and_input_gradient_match_f32() {
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4K] {
            let w = (rand(&[96, 512], 2) * 0.05).unwrap();
            let q = QTensor::quantize(&w, dtype).unwrap();
            let w_deq = q.dequantize(&Device::Cpu).unwrap();
            let layer = FrozenLinear::new(FrozenWeight::Quantized(Arc::new(q)), None).unwrap().with_tile_rows(40);
            check_against_f32(&layer, &w_deq, &[2, 3, 512]);
            check_against_f32(&layer, &w_deq, &[4, 512]);
        }
    }

    #[test]
    fn dense_with_bias_matches_f32() {
        let w = rand(&[33, 20], 3);
        let b = rand(&[33], 4);
        let layer = FrozenLinear::new(FrozenWeight::Dense(w.clone()), Some(b.clone())).unwrap().with_tile_rows(8);
        let x = rand(&[3, 20], 5);
        let y = layer.forward(&x).unwrap();
        let y_ref = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
        assert!(rel_err(&y, &y_ref) < 1e-5);
    }

    #[test]
    fn wrong_input_width_is_an_error() {
        let layer = FrozenLinear::new(FrozenWeight::Dense(rand(&[4, 8], 1)), None).unwrap();
        assert!(matches!(layer.forward(&rand(&[2, 7], 1)), Err(QloraError::InputWidth { expected: 8, .. })));
        assert!(matches!(
            FrozenLinear::new(FrozenWeight::Dense(rand(&[4, 8], 1)), Some(rand(&[3], 1))),
            Err(QloraError::BiasSize { .. })
        ));
    }
}
