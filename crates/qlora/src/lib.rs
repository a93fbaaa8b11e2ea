//! QLoRA building blocks in pure Rust on candle: a frozen 4-bit base weight and
//! trainable low-rank adapters (Dettmers et al. 2023, "QLoRA").
//!
//! - [`nf4`]: NF4 quantization (16 NormalFloat levels, absmax blocks of 64,
//!   double-quantized scales: 4.127 bits per weight).
//! - [`qlinear`]: [`FrozenLinear`], `y = x W^T (+ b)` with W frozen and stored as
//!   NF4, as a GGUF `QTensor`, or as f32, which gives correct gradients to `x`.
//! - [`lora`]: [`LoraAdapter`], the update `scale * (x A^T) B^T` with trainable A, B
//!   that the engine adds to a frozen linear layer.
//! - [`checkpoint`]: gradient checkpointing of a block (a decoder layer).
//! - [`fused`]: differentiable fused CPU kernels (RMS norm, rope, causal softmax,
//!   SwiGLU, cross-entropy) that training uses instead of candle's composed ops.
//!
//! # Why a custom op
//! candle 0.11's `QMatMul::forward` drops the gradient of its input silently, and
//! `x.apply_op1(qtensor)` fails at backward. Adapters below a quantized layer
//! would then train on wrong gradients. [`FrozenLinear`]'s forward is a
//! `CustomOp1` on `x` whose `bwd` returns `grad_x = grad_y W` (W itself gets no
//! gradient: it is frozen).
//!
//! # Memory: no dequantized weight is kept
//! Both passes dequantize W a tile of rows at a time into one buffer per thread
//! that is reused from call to call (up to [`qlinear::DEFAULT_TILE_VALUES`] f32
//! values: whole projections of small models, a few tiles for a large output
//! head), and multiply the tile straight into the output with `gemm` (the
//! kernels candle uses), accumulating over tiles in the backward pass. The graph
//! holds only an `Arc` of the quantized weight, so between forward and backward
//! the layer costs its quantized bytes plus the saved input `x` (which any
//! linear layer keeps); the one tile buffer is shared by all layers.
//!
//! The op runs on the CPU only for now (a CUDA/Metal tensor gives candle's
//! "no cuda implementation for qlora-frozen-linear" error); inputs are f32.

pub mod checkpoint;
pub mod fused;
pub mod gemm;
pub mod lora;
pub mod nf4;
pub mod qlinear;

pub use checkpoint::{checkpoint, Block, GradSink};
pub use lora::{LoraAdapter, LoraConfig};
pub use nf4::Nf4Tensor;
pub use qlinear::{FrozenLinear, FrozenWeight};

use candle_core::Shape;

#[derive(Debug, thiserror::Error)]
pub enum QloraError {
    #[error("The weight is empty: there is nothing to quantize.")]
    EmptyWeight,
    #[error("The weight holds a value that is not a finite number ({value} at position {index}); the model file is damaged.")]
    NonFinite { index: usize, value: f32 },
    #[error("Expected a weight matrix (2 dimensions), got shape {0:?}.")]
    NotAMatrix(Shape),
    #[error("Rows {start}..{end} were asked of a matrix with {rows} rows.")]
    RowsOutOfRange { start: usize, end: usize, rows: usize },
    #[error("The layer expects inputs of width {expected}, got shape {got:?}.")]
    InputWidth { expected: usize, got: Shape },
    #[error("The quantized weight's rows ({cols} values) are not a whole number of {dtype} blocks of {block}.")]
    RowNotBlockAligned { cols: usize, dtype: String, block: usize },
    #[error("The bias has {got} values but the layer has {expected} outputs.")]
    BiasSize { expected: usize, got: usize },
    #[error("A buffer of {got} values was given for {expected} values (a bug in the caller).")]
    BufferSize { expected: usize, got: usize },
    #[error("Invalid adapter settings: {0}")]
    InvalidLora(String),
    #[error("Computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, QloraError>;

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod testutil {
    use candle_core::{Device, Tensor};

    /// Deterministic pseudo-random values in [-1, 1) (xorshift), no device RNG.
    pub fn rand(shape: &[usize], seed: u64) -> Tensor {
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

    /// Largest absolute difference relative to the largest magnitude of `b`.
    pub fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        d / b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-30)
    }
}
