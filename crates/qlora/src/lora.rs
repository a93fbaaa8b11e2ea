//! LoRA adapters on a frozen base: `y = base(x) + scale * dropout(x) A^T B^T`.

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;

use crate::qlinear::FrozenLinear;
use crate::{QloraError, Result};

/// Adapter settings, as PEFT names them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// r: the inner size of the low-rank update.
    pub rank: usize,
    /// alpha: scale numerator.
    pub alpha: f64,
    /// Probability of zeroing an input of the adapter path in training (0 = off).
    pub dropout: f32,
    /// rsLoRA: scale = alpha / sqrt(r) instead of alpha / r.
    pub rslora: bool,
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(QloraError::InvalidLora("the rank must be at least 1".into()));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(QloraError::InvalidLora(format!("alpha must be a positive number, got {}", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(QloraError::InvalidLora(format!("dropout must be in [0, 1), got {}", self.dropout)));
        }
        Ok(())
    }
}

/// A frozen linear layer plus a trainable low-rank update.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    base: FrozenLinear,
    /// `[r, in]`
    a: Var,
    /// `[out, r]`
    b: Var,
    scale: f64,
    dropout: f32,
}

impl LoraLinear {
    /// A fresh adapter initialised as PEFT does: A Kaiming-uniform (`a = sqrt(5)`,
    /// i.e. uniform in ±1/sqrt(in)), B zeros, so the layer starts equal to its base.
    pub fn new(base: FrozenLinear, config: &LoraConfig, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let (inp, out, r) = (base.in_dim(), base.out_dim(), config.rank);
        let bound = 1.0 / (inp as f32).sqrt();
        let a: Vec<f32> = (0..r * inp).map(|_| rng.random_range(-bound..bound)).collect();
        let a = Var::from_tensor(&Tensor::from_vec(a, (r, inp), &Device::Cpu)?)?;
        let b = Var::zeros((out, r), DType::F32, &Device::Cpu)?;
        Ok(Self { base, a, b, scale: config.scale(), dropout: config.dropout })
    }

    /// An adapter from given A `[r, in]` and B `[out, r]` (e.g. loaded from a file).
    pub fn from_parts(base: FrozenLinear, a: Var, b: Var, scale: f64, dropout: f32) -> Result<Self> {
        let (r, inp) = a.dims2()?;
        let (out, rb) = b.dims2()?;
        if inp != base.in_dim() || out != base.out_dim() || rb != r || r == 0 {
            return Err(QloraError::InvalidLora(format!(
                "A {:?} and B {:?} do not fit a layer of {} inputs and {} outputs",
                a.dims(),
                b.dims(),
                base.in_dim(),
                base.out_dim()
            )));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(QloraError::InvalidLora(format!("dropout must be in [0, 1), got {dropout}")));
        }
        Ok(Self { base, a, b, scale, dropout })
    }

    pub fn rank(&self) -> usize {
        self.a.dim(0).unwrap_or(0)
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn a(&self) -> &Var {
        &self.a
    }

    pub fn b(&self) -> &Var {
        &self.b
    }

    /// The trainable parameters: A then B.
    pub fn vars(&self) -> Vec<Var> {
        vec![self.a.clone(), self.b.clone()]
    }

    /// `x`: `[..., in]`. Dropout applies to the adapter path, and only when `train`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.base.forward(x)?;
        let x = x.to_dtype(DType::F32)?;
        let xa = if train && self.dropout > 0.0 { candle_nn::ops::dropout(&x, self.dropout)? } else { x };
        let update = xa.broadcast_matmul(&self.a.t()?)?.broadcast_matmul(&self.b.t()?)?;
        Ok((y + (update * self.scale)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nf4::Nf4Tensor;
    use crate::qlinear::FrozenWeight;
    use rand::{rngs::StdRng, SeedableRng};

    fn rand(shape: &[usize], rng: &mut StdRng) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        d / b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    fn cfg(rslora: bool) -> LoraConfig {
        LoraConfig { rank: 4, alpha: 8.0, dropout: 0.0, rslora }
    }

    fn nf4_base(rng: &mut StdRng) -> (FrozenLinear, Tensor) {
        let w = (rand(&[48, 64], rng) * 0.1).unwrap();
        let q = Nf4Tensor::quantize(&w).unwrap();
        let w_deq = q.dequantize().unwrap();
        (FrozenLinear::new(FrozenWeight::Nf4(q), None).unwrap().with_tile_rows(16), w_deq)
    }

    #[test]
    fn scale_follows_lora_or_rslora() {
        assert_eq!(cfg(false).scale(), 2.0);
        assert_eq!(cfg(true).scale(), 4.0);
        assert!(LoraConfig { rank: 0, ..cfg(false) }.validate().is_err());
        assert!(LoraConfig { dropout: 1.0, ..cfg(false) }.validate().is_err());
    }

    #[test]
    fn at_init_output_equals_base_and_a_is_kaiming_uniform() {
        let mut rng = StdRng::seed_from_u64(1);
        let (base, _) = nf4_base(&mut rng);
        let layer = LoraLinear::new(base.clone(), &cfg(false), &mut rng).unwrap();
        let x = rand(&[2, 3, 64], &mut rng);
        let diff = (layer.forward(&x, false).unwrap() - base.forward(&x).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0);
        let a: Vec<f32> = layer.a().flatten_all().unwrap().to_vec1().unwrap();
        let bound = 1.0 / 8.0; // 1/sqrt(64)
        assert!(a.iter().all(|v| v.abs() <= bound));
        assert!(a.iter().any(|v| v.abs() > 0.8 * bound), "values should spread over the range");
        assert_eq!(layer.b().dims(), &[48, 4]);
    }

    /// Gradients of A, B and x through the NF4 layer vs the same computation all
    /// in f32 with candle's own ops (W dequantized, plain matmuls).
    #[test]
    fn gradients_match_an_all_f32_reference() {
        let mut rng = StdRng::seed_from_u64(2);
        let (base, w_deq) = nf4_base(&mut rng);
        let a0 = (rand(&[4, 64], &mut rng) * 0.1).unwrap();
        let b0 = (rand(&[48, 4], &mut rng) * 0.1).unwrap();
        let x0 = rand(&[2, 5, 64], &mut rng);
        let probe = rand(&[48], &mut rng);
        let scale = cfg(true).scale();

        let (a, b, x) = (Var::from_tensor(&a0).unwrap(), Var::from_tensor(&b0).unwrap(), Var::from_tensor(&x0).unwrap());
        let layer = LoraLinear::from_parts(base, a.clone(), b.clone(), scale, 0.0).unwrap();
        let loss = layer.forward(&x, true).unwrap().broadcast_mul(&probe).unwrap().sqr().unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();

        let (ar, br, xr) = (Var::from_tensor(&a0).unwrap(), Var::from_tensor(&b0).unwrap(), Var::from_tensor(&x0).unwrap());
        let y_ref = (xr.broadcast_matmul(&w_deq.t().unwrap()).unwrap()
            + (xr.broadcast_matmul(&ar.t().unwrap()).unwrap().broadcast_matmul(&br.t().unwrap()).unwrap() * scale).unwrap())
        .unwrap();
        let loss_ref = y_ref.broadcast_mul(&probe).unwrap().sqr().unwrap().sum_all().unwrap();
        let gr = loss_ref.backward().unwrap();

        let lv = loss.to_scalar::<f32>().unwrap();
        let lr = loss_ref.to_scalar::<f32>().unwrap();
        assert!((lv - lr).abs() / lr < 1e-5, "loss {lv} vs {lr}");
        for (name, v, vr) in [("A", &a, &ar), ("B", &b, &br), ("x", &x, &xr)] {
            let e = max_rel(g.get(v).unwrap(), gr.get(vr).unwrap());
            assert!(e < 1e-4, "grad {name}: rel err {e}");
        }
    }

    /// One coordinate of A's gradient vs a central finite difference of the loss.
    #[test]
    fn gradient_of_a_matches_finite_difference() {
        let mut rng = StdRng::seed_from_u64(3);
        let (base, _) = nf4_base(&mut rng);
        let a0 = (rand(&[4, 64], &mut rng) * 0.1).unwrap();
        let b0 = (rand(&[48, 4], &mut rng) * 0.1).unwrap();
        let x = rand(&[3, 64], &mut rng);
        let loss = |a: &Tensor| {
            let l = LoraLinear::from_parts(base.clone(), Var::from_tensor(a).unwrap(), Var::from_tensor(&b0).unwrap(), 2.0, 0.0)
                .unwrap();
            l.forward(&x, false).unwrap().sqr().unwrap().sum_all().unwrap()
        };
        let a = Var::from_tensor(&a0).unwrap();
        let l = LoraLinear::from_parts(base.clone(), a.clone(), Var::from_tensor(&b0).unwrap(), 2.0, 0.0).unwrap();
        let grads = l.forward(&x, false).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let ga: Vec<Vec<f32>> = grads.get(&a).unwrap().to_vec2().unwrap();
        let h = 1e-2f64;
        for (i, j) in [(0usize, 0usize), (1, 17), (3, 63)] {
            let mut bump = vec![0f32; 4 * 64];
            bump[i * 64 + j] = h as f32;
            let bump = Tensor::from_vec(bump, (4, 64), &Device::Cpu).unwrap();
            let lp = loss(&(&a0 + &bump).unwrap()).to_scalar::<f32>().unwrap() as f64;
            let lm = loss(&(&a0 - &bump).unwrap()).to_scalar::<f32>().unwrap() as f64;
            let fd = (lp - lm) / (2.0 * h);
            let an = ga[i][j] as f64;
            assert!((fd - an).abs() <= 1e-2 * an.abs().max(1e-1), "A[{i},{j}]: finite difference {fd} vs gradient {an}");
        }
    }

    #[test]
    fn dropout_only_in_training() {
        let mut rng = StdRng::seed_from_u64(4);
        let (base, _) = nf4_base(&mut rng);
        let a = Var::from_tensor(&rand(&[4, 64], &mut rng)).unwrap();
        let b = Var::from_tensor(&rand(&[48, 4], &mut rng)).unwrap();
        let layer = LoraLinear::from_parts(base, a, b, 2.0, 0.5).unwrap();
        let x = rand(&[4, 64], &mut rng);
        let eval1 = layer.forward(&x, false).unwrap();
        let eval2 = layer.forward(&x, false).unwrap();
        let train = layer.forward(&x, true).unwrap();
        let d = |p: &Tensor, q: &Tensor| (p - q).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d(&eval1, &eval2), 0.0);
        assert!(d(&eval1, &train) > 1e-3);
    }
}
