//! Memory and time of a frozen linear layer, NF4 vs f32, for one SmolLM2-135M
//! MLP projection: W `[1536, 576]`, x `[1, 512, 576]`, forward + backward to x.
//!
//! Run: `cargo run -p qlora --example qlinear_bench` (dev profile: candle's
//! kernels are optimised, this crate's NF4 decode is at opt-level 1).
//! `-- nf4` or `-- f32` runs only that path, so the process's peak RSS above its
//! set-up (`VmHWM` of /proc/self/status) is the working memory of that path.
//!
//! Measured 2026-11-29 on the shared 2-core dev machine, busy (load average ~3.8),
//! so times are rough:
//! - weight bytes: f32 3,538,944; NF4 456,412 (4.127 bits/weight); Q8_0 940,032;
//!   one dequantized 256-row tile 589,824.
//! - fwd+bwd median of 5: NF4 77 ms, Q8_0 84 ms, f32 through FrozenLinear 84 ms,
//!   plain candle f32 matmul 91 ms (`-- nf4` alone: 89 ms; `-- f32` alone: 91 ms).
//! - peak RSS growth during the runs: NF4 +29,192 KiB, f32 matmul +31,200 KiB
//!   (activations, gradients and gemm buffers dominate; no extra full-size W).

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor, Var};
use qlora::{FrozenLinear, FrozenWeight, Nf4Tensor};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Median seconds of forward + backward (loss = sum of squares), after one warm-up.
fn time_fwd_bwd(f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>, x: &Var, reps: usize) -> candle_core::Result<f64> {
    let mut times = Vec::new();
    for i in 0..=reps {
        let t = Instant::now();
        let g = f(x)?.sqr()?.sum_all()?.backward()?;
        let gx = g.get(x).expect("x gets a gradient");
        gx.sum_all()?.to_scalar::<f32>()?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(times[times.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let (out, inp) = (1536, 576);
    let w = (Tensor::randn(0f32, 1.0, (out, inp), &dev)? * 0.02)?;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, 512, inp), &dev)?)?;
    let reps = 5;
    let only = std::env::args().nth(1);
    if let Some(which) = only.as_deref() {
        let layer = match which {
            "nf4" => FrozenLinear::new(FrozenWeight::Nf4(Nf4Tensor::quantize(&w)?), None)?,
            "f32" => FrozenLinear::new(FrozenWeight::Dense(w.clone()), None)?,
            other => return Err(format!("unknown path {other:?}: use nf4 or f32").into()),
        };
        let wt = w.t()?;
        let rss0 = peak_rss_kib();
        let t = if which == "f32" {
            time_fwd_bwd(&|x| x.broadcast_matmul(&wt), &x, reps)?
        } else {
            time_fwd_bwd(&|x| layer.forward(x).map_err(|e| candle_core::Error::Msg(e.to_string())), &x, reps)?
        };
        let rss1 = peak_rss_kib();
        println!("{which}: fwd+bwd median {:.2} ms; peak RSS {rss0} KiB after set-up, {rss1} KiB after the runs (+{} KiB)", t * 1e3, rss1 - rss0);
        return Ok(());
    }

    let nf4 = Nf4Tensor::quantize(&w)?;
    println!("weight [{out}, {inp}]: f32 {} bytes, NF4 {} bytes ({:.3} bits/weight)", out * inp * 4, nf4.bytes(), nf4.bits_per_weight());
    let q8 = QTensor::quantize(&w, GgmlDType::Q8_0)?;
    println!("                     Q8_0 {} bytes", q8.storage_size_in_bytes());
    println!("dequantized tile of 256 rows: {} bytes", 256 * inp * 4);

    let rss0 = peak_rss_kib();
    let layer = FrozenLinear::new(FrozenWeight::Nf4(nf4), None)?;
    let t_nf4 = time_fwd_bwd(&|x| layer.forward(x).map_err(|e| candle_core::Error::Msg(e.to_string())), &x, reps)?;
    let rss_nf4 = peak_rss_kib();
    let layer_q8 = FrozenLinear::new(FrozenWeight::Quantized(std::sync::Arc::new(q8)), None)?;
    let t_q8 = time_fwd_bwd(&|x| layer_q8.forward(x).map_err(|e| candle_core::Error::Msg(e.to_string())), &x, reps)?;
    let dense = FrozenLinear::new(FrozenWeight::Dense(w.clone()), None)?;
    let t_dense_tiled = time_fwd_bwd(&|x| dense.forward(x).map_err(|e| candle_core::Error::Msg(e.to_string())), &x, reps)?;
    let wt = w.t()?;
    let t_f32 = time_fwd_bwd(&|x| x.broadcast_matmul(&wt), &x, reps)?;

    println!("forward+backward of x [1, 512, {inp}] through W^T, median of {reps}:");
    println!("  NF4 FrozenLinear        {:8.2} ms", t_nf4 * 1e3);
    println!("  Q8_0 FrozenLinear       {:8.2} ms", t_q8 * 1e3);
    println!("  f32 FrozenLinear(tiled) {:8.2} ms", t_dense_tiled * 1e3);
    println!("  f32 candle matmul       {:8.2} ms", t_f32 * 1e3);
    println!("peak RSS: {} KiB before the NF4 runs, {} KiB after (process-wide high-water mark)", rss0, rss_nf4);
    Ok(())
}
