//! A frozen linear layer `y = x W^T + b` that passes gradients to `x` without
//! keeping a dequantized copy of W (see the crate docs for why).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use candle_core::quantized::{QStorage, QTensor};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use crate::gemm;
use crate::nf4::Nf4Tensor;
use crate::{QloraError, Result};

/// Values of W dequantized at once by default (16 MiB of f32): whole projections
/// of small models in one tile, the output head of a large vocabulary in a few.
/// Bigger tiles give the matrix multiply larger, faster shapes.
pub const DEFAULT_TILE_VALUES: usize = 4 << 20;

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

    /// Rows `rows` of W in f32 written into `out` (`rows.len() * in` values).
    pub fn rows_into(&self, rows: Range<usize>, out: &mut [f32]) -> Result<()> {
        match self {
            FrozenWeight::Nf4(q) => q.dequantize_rows_into(rows, out),
            _ => {
                let (_, cols) = self.dims()?;
                if out.len() != rows.len() * cols {
                    return Err(QloraError::BufferSize { expected: rows.len() * cols, got: out.len() });
                }
                let t = self.rows(rows)?.flatten_all()?;
                let (storage, layout) = t.storage_and_layout();
                match (&*storage, layout.contiguous_offsets()) {
                    (candle_core::Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => out.copy_from_slice(&v[a..b]),
                    _ => out.copy_from_slice(&t.to_vec1::<f32>()?),
                }
                Ok(())
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
    /// Rows per tile; `None`: as many as fit in [`DEFAULT_TILE_VALUES`].
    tile_rows: Option<usize>,
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
        Ok(Self { weight: Arc::new(weight), bias, tile_rows: None })
    }

    /// Rows of W dequantized at once (at least 1).
    pub fn with_tile_rows(mut self, tile_rows: usize) -> Self {
        self.tile_rows = Some(tile_rows.max(1));
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
        let tile_rows = self.tile_rows.unwrap_or((DEFAULT_TILE_VALUES / inp.max(1)).max(1));
        let y = x2.apply_op1(TiledMatMul { weight: self.weight.clone(), tile_rows, transposed: false })?;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("checked non-empty") = out;
        let y = y.reshape(out_dims)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

impl FrozenLinear {
    /// `x W^T (+ b) + scale (x A^T) B^T`: the frozen base and a LoRA adapter
    /// without dropout in one op, whose backward gives the gradients of `x`, A
    /// and B. Every product is one `gemm` call (into the output, or accumulated
    /// into it), so the adapter adds no elementwise pass over the activations.
    /// CPU and f32 only; `engine::Linear` uses it in training when it applies.
    pub fn forward_with_lora(&self, x: &Tensor, adapter: &crate::LoraAdapter) -> Result<Tensor> {
        let (out, inp) = self.weight.dims()?;
        let dims = x.dims();
        if dims.last() != Some(&inp) {
            return Err(QloraError::InputWidth { expected: inp, got: x.shape().clone() });
        }
        adapter.check_fits(inp, out)?;
        let n = x.elem_count() / inp;
        let x2 = x.to_dtype(DType::F32)?.contiguous()?.reshape((n, inp))?;
        let tile_rows = self.tile_rows.unwrap_or((DEFAULT_TILE_VALUES / inp.max(1)).max(1));
        let base = TiledMatMul { weight: self.weight.clone(), tile_rows, transposed: false };
        let op = LoraMatMul { base, scale: adapter.scale() as f32 };
        let (a, b) = (adapter.a().as_tensor().contiguous()?, adapter.b().as_tensor().contiguous()?);
        let y = x2.apply_op3(&a, &b, op)?;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("checked non-empty") = out;
        let y = y.reshape(out_dims)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// `x W^T + scale (x A^T) B^T` on `(x [n, in], A [r, in], B [out, r])`.
struct LoraMatMul {
    base: TiledMatMul,
    scale: f32,
}

fn f32_of(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

impl LoraMatMul {
    /// `scale * x A^T`, `[n, r]`.
    fn down(&self, x: &[f32], a: &[f32], n: usize, r: usize, inp: usize) -> Vec<f32> {
        let mut t = vec![0f32; n * r];
        gemm::matmul(n, r, inp, &mut t, r, false, x, (inp, 1), a, (1, inp));
        t.iter_mut().for_each(|v| *v *= self.scale);
        t
    }
}

impl candle_core::CustomOp3 for LoraMatMul {
    fn name(&self) -> &'static str {
        "qlora-frozen-linear-lora"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let slice = |s: &'_ CpuStorage, l: &Layout| -> candle_core::Result<Vec<f32>> {
            let CpuStorage::F32(v) = s else { candle_core::bail!("{}: expected f32, got {:?}", self.name(), s.dtype()) };
            let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{}: inputs must be contiguous", self.name()) };
            Ok(v[a..b].to_vec())
        };
        let CpuStorage::F32(xv) = s1 else { candle_core::bail!("{}: expected f32 input, got {:?}", self.name(), s1.dtype()) };
        let Some((x0, x1)) = l1.contiguous_offsets() else { candle_core::bail!("{}: input must be contiguous", self.name()) };
        let x = &xv[x0..x1];
        let (a, b) = (slice(s2, l2)?, slice(s3, l3)?);
        let (n, inp) = l1.shape().dims2()?;
        let (r, _) = l2.shape().dims2()?;
        let (out, _) = l3.shape().dims2()?;
        let msg = |e: QloraError| candle_core::Error::Msg(e.to_string());
        let mut y = self.base.run(x, n).map_err(msg)?;
        let t = self.down(x, &a, n, r, inp);
        // y += t B^T
        gemm::matmul(n, out, r, &mut y, out, true, &t, (r, 1), &b, (1, r));
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(&self, x: &Tensor, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, inp) = x.dims2()?;
        let (r, _) = a.dims2()?;
        let (out, _) = b.dims2()?;
        let (xv, av, bv, g) = (f32_of(x)?, f32_of(a)?, f32_of(b)?, f32_of(grad)?);
        let msg = |e: QloraError| candle_core::Error::Msg(e.to_string());
        // dx = g W (frozen base) + scale (g B) A
        let back = TiledMatMul { weight: self.base.weight.clone(), tile_rows: self.base.tile_rows, transposed: true };
        let mut dx = back.run(&g, n).map_err(msg)?;
        let mut u = vec![0f32; n * r];
        gemm::matmul(n, r, out, &mut u, r, false, &g, (out, 1), &bv, (r, 1));
        u.iter_mut().for_each(|v| *v *= self.scale);
        gemm::matmul(n, inp, r, &mut dx, inp, true, &u, (r, 1), &av, (inp, 1));
        // dA = u^T x, dB = g^T (scale x A^T)
        let mut da = vec![0f32; r * inp];
        gemm::matmul(r, inp, n, &mut da, inp, false, &u, (1, r), &xv, (inp, 1));
        let t = self.down(&xv, &av, n, r, inp);
        let mut db = vec![0f32; out * r];
        gemm::matmul(out, r, n, &mut db, r, false, &g, (1, out), &t, (r, 1));
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (n, inp), dev)?),
            Some(Tensor::from_vec(da, (r, inp), dev)?),
            Some(Tensor::from_vec(db, (out, r), dev)?),
        ))
    }
}

/// `transposed == false`: `[n, in] -> [n, out]`, `x W^T`, with backward.
/// `transposed == true`:  `[n, out] -> [n, in]`, `g W` (the backward itself).
struct TiledMatMul {
    weight: Arc<FrozenWeight>,
    tile_rows: usize,
    transposed: bool,
}

thread_local! {
    /// The dequantized tile, reused from call to call (one per thread that runs
    /// the op): no allocation per tile, and no dequantized weight outlives a call.
    static TILE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl TiledMatMul {
    /// `a`: the op's input, `[n, in]` (forward) or `[n, out]` (backward), row-major.
    fn run(&self, a: &[f32], n: usize) -> Result<Vec<f32>> {
        let (out, inp) = self.weight.dims()?;
        let (a_width, y_width) = if self.transposed { (out, inp) } else { (inp, out) };
        if a.len() != n * a_width {
            return Err(QloraError::BufferSize { expected: n * a_width, got: a.len() });
        }
        let mut y = vec![0f32; n * y_width];
        TILE.with(|tile| -> Result<()> {
            let mut tile = tile.borrow_mut();
            for r0 in (0..out).step_by(self.tile_rows) {
                let rows = self.tile_rows.min(out - r0);
                tile.resize(rows * inp, 0.0);
                let w = &mut tile[..rows * inp];
                self.weight.rows_into(r0..r0 + rows, w)?;
                if !self.transposed {
                    // y[:, r0..r0+rows] = a W_tile^T
                    gemm::matmul(n, rows, inp, &mut y[r0..], y_width, false, a, (a_width, 1), w, (1, inp));
                } else {
                    // y += a[:, r0..r0+rows] W_tile
                    gemm::matmul(n, inp, rows, &mut y, y_width, r0 > 0, &a[r0..], (a_width, 1), w, (inp, 1));
                }
            }
            Ok(())
        })?;
        Ok(y)
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
        let (n, _) = layout.shape().dims2()?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: input must be contiguous", self.name())
        };
        let y = self.run(&data[start..end], n).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let (out, inp) = self.weight.dims().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok((CpuStorage::F32(y), Shape::from((n, if self.transposed { inp } else { out }))))
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
    use crate::testutil::{max_rel as rel_err, rand};
    use candle_core::Var;


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
