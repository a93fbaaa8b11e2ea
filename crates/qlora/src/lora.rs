//! LoRA adapters on a frozen base: `y = base(x) + scale * dropout(x) A^T B^T`
//! (Hu et al. 2021; rsLoRA scale from Kalajdzievski 2023).

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// The trainable low-rank update of one linear layer: `delta(x) = scale * dropout(x) A^T B^T`.
/// The frozen base it is added to lives with the model (see `engine::Linear`).
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    /// `[r, in]`
    a: Var,
    /// `[out, r]`
    b: Var,
    scale: f64,
    dropout: f32,
}

impl LoraAdapter {
    /// A fresh adapter initialised as PEFT does: A Kaiming-uniform (`a = sqrt(5)`,
    /// i.e. uniform in ±1/sqrt(in)), B zeros, so the layer starts equal to its base.
    pub fn new(in_dim: usize, out_dim: usize, config: &LoraConfig, device: &Device, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let r = config.rank;
        let bound = 1.0 / (in_dim as f32).sqrt();
        let a: Vec<f32> = (0..r * in_dim).map(|_| rng.random_range(-bound..bound)).collect();
        let a = Var::from_tensor(&Tensor::from_vec(a, (r, in_dim), device)?)?;
        let b = Var::zeros((out_dim, r), DType::F32, device)?;
        Ok(Self { a, b, scale: config.scale(), dropout: config.dropout })
    }

    /// An adapter from given A `[r, in]` and B `[out, r]` (e.g. loaded from a file).
    pub fn from_parts(a: Var, b: Var, scale: f64, dropout: f32) -> Result<Self> {
        let (r, _) = a.dims2()?;
        let (_, rb) = b.dims2()?;
        if rb != r || r == 0 {
            return Err(QloraError::InvalidLora(format!("A {:?} and B {:?} do not share a rank", a.dims(), b.dims())));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(QloraError::InvalidLora(format!("dropout must be in [0, 1), got {dropout}")));
        }
        Ok(Self { a, b, scale, dropout })
    }

    /// Checks that the adapter fits a layer of `in_dim` inputs and `out_dim` outputs.
    pub fn check_fits(&self, in_dim: usize, out_dim: usize) -> Result<()> {
        if self.a.dim(1)? != in_dim || self.b.dim(0)? != out_dim {
            return Err(QloraError::InvalidLora(format!(
                "A {:?} and B {:?} do not fit a layer of {in_dim} inputs and {out_dim} outputs",
                self.a.dims(),
                self.b.dims()
            )));
        }
        Ok(())
    }

    pub fn rank(&self) -> usize {
        self.a.dim(0).unwrap_or(0)
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn dropout(&self) -> f32 {
        self.dropout
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

    /// `scale * dropout(x) A^T B^T` for `x`: `[..., in]`. Dropout applies only with
    /// a seed (training), and the same seed gives the same mask: a recomputed
    /// forward pass (gradient checkpointing) and a resumed run see the same
    /// dropout as the first.
    pub fn delta(&self, x: &Tensor, dropout_seed: Option<u64>) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?;
        let x = match dropout_seed {
            Some(seed) if self.dropout > 0.0 => {
                let keep = 1.0 - self.dropout;
                let mut rng = StdRng::seed_from_u64(seed);
                let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.random::<f32>() < keep { 1.0 / keep } else { 0.0 }).collect();
                {
                    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
                    (x * mask)?
                }
            }
            _ => x,
        };
        Ok((x.broadcast_matmul(&self.a.t()?)?.broadcast_matmul(&self.b.t()?)? * self.scale)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nf4::Nf4Tensor;
    use crate::qlinear::{FrozenLinear, FrozenWeight};

    /// What the engine's `Linear` computes: frozen base plus the adapter's update.
    fn layer(base: &FrozenLinear, adapter: &LoraAdapter, x: &Tensor, seed: Option<u64>) -> Tensor {
        (base.forward(x).unwrap() + adapter.delta(x, seed).unwrap()).unwrap()
    }

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
        let layer = LoraAdapter::new(64, 48, &cfg(false), &Device::Cpu, &mut rng).unwrap();
        let x = rand(&[2, 3, 64], &mut rng);
        let diff = (super::tests::layer(&base, &layer, &x, None) - base.forward(&x).unwrap())
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
        let adapter = LoraAdapter::from_parts(a.clone(), b.clone(), scale, 0.0).unwrap();
        let loss = layer(&base, &adapter, &x, Some(9)).broadcast_mul(&probe).unwrap().sqr().unwrap().sum_all().unwrap();
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

    /// The fused base + adapter op (`FrozenLinear::forward_with_lora`) against
    /// the composed one: output and the gradients of A, B and x.
    #[test]
    fn fused_base_and_adapter_match_the_composed_layer() {
        let mut rng = StdRng::seed_from_u64(5);
        let (nf4, _) = nf4_base(&mut rng);
        let bias = rand(&[48], &mut rng);
        let dense = FrozenLinear::new(nf4.weight().rows(0..48).map(FrozenWeight::Dense).unwrap(), Some(bias)).unwrap().with_tile_rows(20);
        for base in [nf4, dense] {
        let a0 = (rand(&[4, 64], &mut rng) * 0.1).unwrap();
        let b0 = (rand(&[48, 4], &mut rng) * 0.1).unwrap();
        let x0 = rand(&[2, 5, 64], &mut rng);
        let probe = rand(&[48], &mut rng);
        let run = |fused: bool| {
            let (a, b, x) = (Var::from_tensor(&a0).unwrap(), Var::from_tensor(&b0).unwrap(), Var::from_tensor(&x0).unwrap());
            let adapter = LoraAdapter::from_parts(a.clone(), b.clone(), 2.5, 0.0).unwrap();
            let y = if fused { base.forward_with_lora(&x, &adapter).unwrap() } else { layer(&base, &adapter, &x, None) };
            let g = y.broadcast_mul(&probe).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let grads: Vec<Tensor> = [&a, &b, &x].iter().map(|v| g.get(v).unwrap().clone()).collect();
            (y, grads)
        };
        let ((y, g), (y_ref, g_ref)) = (run(true), run(false));
        assert!(max_rel(&y, &y_ref) < 1e-5, "forward");
        for (name, (p, q)) in ["A", "B", "x"].iter().zip(g.iter().zip(&g_ref)) {
            let e = max_rel(p, q);
            assert!(e < 1e-4, "grad {name}: rel err {e}");
        }
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
            let l = LoraAdapter::from_parts(Var::from_tensor(a).unwrap(), Var::from_tensor(&b0).unwrap(), 2.0, 0.0).unwrap();
            layer(&base, &l, &x, None).sqr().unwrap().sum_all().unwrap()
        };
        let a = Var::from_tensor(&a0).unwrap();
        let l = LoraAdapter::from_parts(a.clone(), Var::from_tensor(&b0).unwrap(), 2.0, 0.0).unwrap();
        let grads = layer(&base, &l, &x, None).sqr().unwrap().sum_all().unwrap().backward().unwrap();
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
    fn dropout_only_with_a_seed_and_the_same_seed_gives_the_same_mask() {
        let mut rng = StdRng::seed_from_u64(4);
        let (base, _) = nf4_base(&mut rng);
        let a = Var::from_tensor(&rand(&[4, 64], &mut rng)).unwrap();
        let b = Var::from_tensor(&rand(&[48, 4], &mut rng)).unwrap();
        let adapter = LoraAdapter::from_parts(a, b, 2.0, 0.5).unwrap();
        let x = rand(&[4, 64], &mut rng);
        let eval1 = layer(&base, &adapter, &x, None);
        let eval2 = layer(&base, &adapter, &x, None);
        let train1 = layer(&base, &adapter, &x, Some(42));
        let train2 = layer(&base, &adapter, &x, Some(42));
        let train3 = layer(&base, &adapter, &x, Some(43));
        let d = |p: &Tensor, q: &Tensor| (p - q).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d(&eval1, &eval2), 0.0);
        assert!(d(&eval1, &train1) > 1e-3);
        assert_eq!(d(&train1, &train2), 0.0);
        assert!(d(&train1, &train3) > 1e-3);
    }

    #[test]
    fn adapters_that_do_not_fit_are_refused() {
        let a = Var::zeros((4, 64), DType::F32, &Device::Cpu).unwrap();
        let b = Var::zeros((48, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(LoraAdapter::from_parts(a.clone(), b, 1.0, 0.0).is_err());
        let b = Var::zeros((48, 4), DType::F32, &Device::Cpu).unwrap();
        let ad = LoraAdapter::from_parts(a, b, 1.0, 0.0).unwrap();
        assert!(ad.check_fits(64, 48).is_ok());
        assert!(ad.check_fits(64, 47).is_err());
    }
}
