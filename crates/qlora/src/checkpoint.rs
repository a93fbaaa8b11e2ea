//! Gradient checkpointing: run a block (a decoder layer) without keeping its
//! intermediate tensors, and recompute them in the backward pass.
//!
//! candle has no checkpointing, and a custom op may only return the gradient of
//! its inputs. A block's LoRA matrices are not inputs, so [`checkpoint`]'s
//! backward recomputes the block with `x` as a fresh variable, back-propagates
//! through the recomputed graph, returns the gradient of `x`, and adds the
//! gradients of the block's trainable variables to a [`GradSink`] that the
//! training loop merges with candle's `GradStore` after `backward()`.
//!
//! The block must be deterministic given its input (dropout seeded, as
//! `LoraAdapter::delta` is), or the recomputed graph would differ from the one
//! whose output the loss saw.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor, TensorId, Var};

/// A block to checkpoint: `f(x) -> y`, with the trainable variables it uses.
pub type Block = Arc<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// Gradients of variables used inside checkpointed blocks, summed over blocks
/// and micro-batches until taken.
#[derive(Clone, Default)]
pub struct GradSink(Arc<Mutex<HashMap<TensorId, Tensor>>>);

impl GradSink {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, id: TensorId, g: Tensor) -> candle_core::Result<()> {
        let mut map = self.0.lock().expect("gradient sink poisoned");
        let sum = match map.remove(&id) {
            Some(prev) => (prev + g)?,
            None => g,
        };
        map.insert(id, sum);
        Ok(())
    }

    /// The gradient of `var`: what `grads` holds plus what the sink collected
    /// (and removes it from the sink).
    pub fn take(&self, var: &Var, grads: &GradStore) -> candle_core::Result<Option<Tensor>> {
        let inner = self.0.lock().expect("gradient sink poisoned").remove(&var.id());
        Ok(match (grads.get(var), inner) {
            (Some(a), Some(b)) => Some((a + b)?),
            (Some(a), None) => Some(a.clone()),
            (None, b) => b,
        })
    }

    pub fn clear(&self) {
        self.0.lock().expect("gradient sink poisoned").clear();
    }
}

struct Checkpoint {
    block: Block,
    vars: Vec<Var>,
    sink: GradSink,
}

impl CustomOp1 for Checkpoint {
    fn name(&self) -> &'static str {
        "checkpoint"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        // A copy of the input that is not part of any graph: the block's
        // intermediate tensors are dropped as soon as it returns.
        let data = match storage {
            CpuStorage::F32(v) => v,
            other => candle_core::bail!("checkpoint: expected f32 activations, got {:?}", other.dtype()),
        };
        let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("checkpoint: input must be contiguous") };
        let x = Tensor::from_slice(&data[start..end], layout.shape(), &Device::Cpu)?;
        let y = (self.block)(&x)?.detach().contiguous()?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1()?), shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let x = Var::from_tensor(&arg.detach())?;
        let y = (self.block)(x.as_tensor())?;
        let proxy = (y * grad_res.detach())?.sum_all()?;
        let grads = proxy.backward()?;
        for v in &self.vars {
            if let Some(g) = grads.get(v) {
                self.sink.add(v.id(), g.clone())?;
            }
        }
        Ok(grads.get(&x).cloned())
    }
}

/// `block(x)`, keeping only `x` for the backward pass. Gradients of `vars` land
/// in `sink`; the gradient of `x` flows on through candle's autograd.
pub fn checkpoint(x: &Tensor, block: Block, vars: Vec<Var>, sink: &GradSink) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        // No kernels to hide on other devices yet: run the block as is.
        return block(x);
    }
    x.contiguous()?.apply_op1(Checkpoint { block, vars, sink: sink.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-layer block with its own weights: gradients of x and of the
    /// weights through the checkpoint equal those of the plain graph.
    #[test]
    fn checkpointed_gradients_equal_plain_ones() {
        let d = Device::Cpu;
        let w1 = Var::from_tensor(&Tensor::randn(0f32, 0.5, (8, 6), &d).unwrap()).unwrap();
        let w2 = Var::from_tensor(&Tensor::randn(0f32, 0.5, (6, 8), &d).unwrap()).unwrap();
        let x0 = Tensor::randn(0f32, 1.0, (3, 6), &d).unwrap();
        let outer = Var::from_tensor(&Tensor::randn(0f32, 1.0, (6,), &d).unwrap()).unwrap();

        let (a, b) = (w1.clone(), w2.clone());
        let block: Block = Arc::new(move |x: &Tensor| x.matmul(&a.t()?)?.silu()?.matmul(&b.t()?)?.tanh());
        let run = |checkpointed: bool, sink: &GradSink| {
            let x = Var::from_tensor(&x0).unwrap();
            let h = x.broadcast_mul(&outer).unwrap();
            let y = if checkpointed {
                checkpoint(&h, block.clone(), vec![w1.clone(), w2.clone()], sink).unwrap()
            } else {
                block(&h).unwrap()
            };
            let loss = y.sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let gx = grads.get(&x).unwrap().clone();
            let go = grads.get(&outer).unwrap().clone();
            let g1 = sink.take(&w1, &grads).unwrap().unwrap();
            let g2 = sink.take(&w2, &grads).unwrap().unwrap();
            (loss.to_scalar::<f32>().unwrap(), [gx, go, g1, g2])
        };
        let sink = GradSink::new();
        let (l_plain, g_plain) = run(false, &sink);
        let (l_ckpt, g_ckpt) = run(true, &sink);
        assert_eq!(l_plain, l_ckpt);
        for (i, (p, c)) in g_plain.iter().zip(g_ckpt.iter()).enumerate() {
            let diff = (p - c).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-6, "gradient {i} differs by {diff}");
        }
    }
}
