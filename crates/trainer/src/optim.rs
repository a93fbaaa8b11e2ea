//! AdamW (Loshchilov & Hutter), written out so that its state can be saved and
//! restored exactly; the update follows PyTorch's `torch.optim.AdamW` step for
//! step, which the PEFT cross-check relies on. Plus the learning-rate schedule
//! (linear warmup, then cosine decay to zero) and global-norm gradient clipping.

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// One parameter and its moment estimates.
pub struct Slot {
    pub name: String,
    pub var: Var,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
}

pub struct AdamW {
    pub config: AdamWConfig,
    pub slots: Vec<Slot>,
    /// Optimizer steps taken.
    pub step: usize,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let z = var.as_tensor().zeros_like()?;
                Ok(Slot { name, var, exp_avg: z.clone(), exp_avg_sq: z })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { config, slots, step: 0 })
    }

    /// Applies one update with gradients `grads` (same order as the slots).
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for (s, g) in self.slots.iter_mut().zip(grads) {
            let p = s.var.as_tensor();
            let p = if c.weight_decay != 0.0 { (p * (1.0 - lr * c.weight_decay))? } else { p.clone() };
            s.exp_avg = ((&s.exp_avg * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            s.exp_avg_sq = ((&s.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((s.exp_avg_sq.sqrt()? / bias2.sqrt())? + c.eps)?;
            let update = (s.exp_avg.div(&denom)? * (lr / bias1))?;
            s.var.set(&(p - update)?)?;
        }
        Ok(())
    }
}

/// Learning rate at optimizer step `step` (0-based) of `total`: linear warmup
/// over `warmup` steps to `peak`, then cosine decay to zero at `total`.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// The global L2 norm of `grads`, and the grads scaled down to `max_norm` when
/// above it (PyTorch's `clip_grad_norm_`: factor `max / (norm + 1e-6)`).
pub fn clip_global_norm(grads: Vec<Tensor>, max_norm: Option<f64>) -> Result<(Vec<Tensor>, f64)> {
    let mut sq = 0f64;
    for g in &grads {
        sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sq.sqrt();
    match max_norm {
        Some(m) if norm.is_finite() && norm > m => {
            let f = m / (norm + 1e-6);
            Ok((grads.iter().map(|g| g * f).collect::<candle_core::Result<Vec<_>>>()?, norm))
        }
        _ => Ok((grads, norm)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((lr_at(0, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!((lr_at(9, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(55, 100, 10, 1.0) - 0.5).abs() < 1e-12);
        assert!(lr_at(99, 100, 10, 1.0) < 0.001);
        assert!((lr_at(0, 10, 0, 2.0) - 2.0).abs() < 1e-12);
    }

    /// Two AdamW steps on one scalar, against the update written out by hand
    /// from PyTorch's documented algorithm.
    #[test]
    fn adamw_matches_the_written_out_update() {
        let c = AdamWConfig { beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1 };
        let v = Var::from_tensor(&Tensor::new(&[1.0f32], &Device::Cpu).unwrap()).unwrap();
        let mut opt = AdamW::new(vec![("p".into(), v.clone())], c).unwrap();
        let (mut p, mut m, mut s) = (1.0f64, 0.0f64, 0.0f64);
        for (t, (g, lr)) in [(0.5f64, 0.01f64), (-0.25, 0.02)].into_iter().enumerate() {
            opt.step(&[Tensor::new(&[g as f32], &Device::Cpu).unwrap()], lr).unwrap();
            let t = (t + 1) as i32;
            p *= 1.0 - lr * c.weight_decay;
            m = c.beta1 * m + (1.0 - c.beta1) * g;
            s = c.beta2 * s + (1.0 - c.beta2) * g * g;
            let mhat = m / (1.0 - c.beta1.powi(t));
            let shat = s / (1.0 - c.beta2.powi(t));
            p -= lr * mhat / (shat.sqrt() + c.eps);
            let got = v.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
            assert!((got - p).abs() < 1e-6, "step {t}: {got} vs {p}");
        }
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let g = vec![Tensor::new(&[3.0f32], &Device::Cpu).unwrap(), Tensor::new(&[4.0f32], &Device::Cpu).unwrap()];
        let (c, n) = clip_global_norm(g.clone(), Some(1.0)).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        let s: f32 = c.iter().map(|t| t.to_vec1::<f32>().unwrap()[0].powi(2)).sum();
        assert!((s.sqrt() - 1.0).abs() < 1e-5);
        let (u, _) = clip_global_norm(g, Some(10.0)).unwrap();
        assert_eq!(u[0].to_vec1::<f32>().unwrap()[0], 3.0);
    }
}
