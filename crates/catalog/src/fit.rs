//! "Does it fit, and about how long would training take?" for one model on
//! this computer, as the Model screen shows it on each model card.
//!
//! The memory a run needs comes from the trainer's estimate
//! (`trainer::memory::estimate`, through `runs::estimate` for the app's
//! default preset): `trainer` depends on this crate, so this crate takes the
//! number instead of calling it. Here it is compared with the computer's
//! memory, and the run's length is turned into a time.
//!
//! The time is a rough estimate, and the screen says so: a training speed
//! measured once on a reference model and machine ([`REFERENCE`]), scaled by
//! parameter count (the work per token of a transformer grows with its
//! parameters: about 6 multiply-adds per parameter per trained token) and by
//! the cores available (see [`tokens_per_second`]).

use serde::Serialize;

use crate::hardware::Hardware;

/// A training speed measured on a known model and machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// Trained tokens per second (forward and backward, LoRA on all projections).
    pub tokens_per_second: f64,
    /// Parameters of the model it was measured on.
    pub params: u64,
    /// Cores (threads) the figure is for: the speed is per this many.
    pub threads: usize,
}

/// SmolLM2-135M-Instruct (Q4_1 GGUF fixture, 134,515,008 parameters) trained
/// with LoRA r 16 on all seven projections over an NF4 base (sequence 1024,
/// gradient checkpointing: the Persona and style preset's shape before
/// daf5f57 made it 384), per core: measured
/// 2026-11-29 on this project's 2-core Sapphire Rapids VM with
/// `/usr/bin/time -v residency --threads 2 bench train --model
/// SmolLM2-135M-Instruct.Q4_1.gguf --seq-len 1024 --accum 1 --steps 1`:
/// one warm-up and one measured step of 1,024 tokens each (2,048 trained
/// tokens) took 108 CPU seconds (94.4 user + 13.7 system, model loading and
/// NF4 quantization included), so 19 tokens per CPU second. The wall-clock
/// figure of that run (3.8 tokens/s) is not used: other sessions' builds left
/// the process 13% of a core. Counting loading as training time makes the
/// figure low; assuming every core is fully used (no parallel overhead)
/// makes it high.
pub const REFERENCE: Throughput = Throughput { tokens_per_second: REFERENCE_TOKENS_PER_SECOND, params: 134_515_008, threads: 1 };
const REFERENCE_TOKENS_PER_SECOND: f64 = 2048.0 / 108.0;

/// Tokens the Persona and style preset trains on a data set the size of the
/// demo persona folder (`demo/coffee-roaster`, about 200 examples), before
/// the person has added their own: an assumed size, not a measurement. Since
/// daf5f57 the preset trains without the persona as a system prompt (sequence
/// 384, 2 epochs): a customer message and a reply of one to four sentences,
/// about 150 tokens an example; 200 examples times 2 passes is 60,000 tokens.
/// The throughput above was measured at sequence 1024, whose attention costs
/// more per token than 384's, so the time errs on the long side.
pub const TYPICAL_RUN_TOKENS: u64 = 200 * 150 * 2;

/// Threads beyond this many are not counted: memory bandwidth and the
/// trainer's serial parts stop the speed-up well before a workstation's cores.
const MAX_SCALED_THREADS: usize = 8;

/// Below this share of the memory free now, a run fits comfortably.
const COMFORT: f64 = 0.75;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Fits in the memory free now, with room to spare.
    Fits,
    /// Fits only just, or only once other programs are closed.
    Tight,
    /// Needs more memory than this computer has.
    DoesNotFit,
}

/// The answer shown on a model card.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FitEstimate {
    pub verdict: Verdict,
    /// Peak memory of the run (the trainer's estimate).
    pub need_bytes: u64,
    pub available_bytes: u64,
    pub total_bytes: u64,
    /// Trained tokens per second expected for this model here.
    pub tokens_per_second: f64,
    /// Tokens the run trains (examples' tokens times passes).
    pub run_tokens: u64,
    /// About how long the run takes, in seconds.
    pub seconds: f64,
    /// One sentence for the card.
    pub summary: String,
}

/// Fits / tight / does not fit: `need` against the memory free now and the
/// computer's total (what closing other programs could give).
pub fn verdict(need: u64, available: u64, total: u64) -> Verdict {
    if need as f64 <= available as f64 * COMFORT {
        Verdict::Fits
    } else if need <= available || need as f64 <= total as f64 * COMFORT {
        Verdict::Tight
    } else {
        Verdict::DoesNotFit
    }
}

/// Expected training speed of a model with `params` parameters on `threads`
/// threads: the reference speed times the parameter ratio, times the thread
/// ratio (threads counted up to [`MAX_SCALED_THREADS`]).
pub fn tokens_per_second(reference: &Throughput, params: u64, threads: usize) -> f64 {
    let by_size = reference.params as f64 / params.max(1) as f64;
    let by_threads = threads.clamp(1, MAX_SCALED_THREADS) as f64 / reference.threads.max(1) as f64;
    reference.tokens_per_second * by_size * by_threads
}

/// The whole answer for a model of `params` parameters whose run needs
/// `need_bytes` at its peak and trains `run_tokens` tokens.
pub fn assess(need_bytes: u64, params: u64, run_tokens: u64, hw: &Hardware) -> FitEstimate {
    let verdict = verdict(need_bytes, hw.available_memory_bytes, hw.total_memory_bytes);
    let threads = hw.physical_cores.unwrap_or(hw.logical_cores).max(1);
    let tps = tokens_per_second(&REFERENCE, params, threads);
    let seconds = run_tokens as f64 / tps;
    let need = gib(need_bytes);
    let summary = match verdict {
        Verdict::Fits => format!("Fits: training needs about {need} of the {} free. About {} (estimate).", gib(hw.available_memory_bytes), duration(seconds)),
        Verdict::Tight => format!(
            "Tight: training needs about {need} and {} is free now; close other programs first. About {} (estimate).",
            gib(hw.available_memory_bytes),
            duration(seconds)
        ),
        Verdict::DoesNotFit => format!(
            "Does not fit: training needs about {need}, this computer has {}. Pick a smaller model.",
            gib(hw.total_memory_bytes)
        ),
    };
    FitEstimate {
        verdict,
        need_bytes,
        available_bytes: hw.available_memory_bytes,
        total_bytes: hw.total_memory_bytes,
        tokens_per_second: tps,
        run_tokens,
        seconds,
        summary,
    }
}

/// Sizes as the rest of the app writes them (binary units: MiB, GiB).
fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g < 1.0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{g:.1} GiB")
    }
}

/// "about 40 minutes", "about 3 hours", rounded the way a person says it.
pub fn duration(seconds: f64) -> String {
    let m = (seconds / 60.0).round();
    if !seconds.is_finite() {
        "an unknown time".into()
    } else if m < 1.0 {
        "under a minute".into()
    } else if m < 90.0 {
        format!("{m} minute{}", if m == 1.0 { "" } else { "s" })
    } else if seconds < 48.0 * 3600.0 {
        format!("{:.0} hours", seconds / 3600.0)
    } else {
        format!("{:.0} days", seconds / 86400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hw(total_gib: u64, free_gib: u64, cores: usize) -> Hardware {
        Hardware {
            cpu_model: "test".into(),
            cpu_arch: "x86_64".into(),
            logical_cores: cores * 2,
            physical_cores: Some(cores),
            cpu_features: vec![],
            total_memory_bytes: total_gib << 30,
            available_memory_bytes: free_gib << 30,
            os: None,
            gpus: vec![],
        }
    }

    #[test]
    fn verdict_compares_with_free_memory_then_total() {
        let g = 1u64 << 30;
        assert_eq!(verdict(2 * g, 8 * g, 16 * g), Verdict::Fits);
        assert_eq!(verdict(7 * g, 8 * g, 16 * g), Verdict::Tight, "fits in free memory, but only just");
        assert_eq!(verdict(10 * g, 4 * g, 16 * g), Verdict::Tight, "fits once other programs close");
        assert_eq!(verdict(14 * g, 4 * g, 16 * g), Verdict::DoesNotFit);
        assert_eq!(verdict(0, 0, 0), Verdict::Fits);
    }

    #[test]
    fn speed_scales_down_with_parameters_and_up_with_cores_to_a_limit() {
        let r = Throughput { tokens_per_second: 100.0, params: 100, threads: 2 };
        assert_eq!(tokens_per_second(&r, 100, 2), 100.0);
        assert_eq!(tokens_per_second(&r, 400, 2), 25.0, "4x the parameters, a quarter of the speed");
        assert_eq!(tokens_per_second(&r, 100, 4), 200.0);
        assert_eq!(tokens_per_second(&r, 100, 64), 400.0, "counted up to 8 threads");
        assert_eq!(tokens_per_second(&r, 0, 0), 100.0 * 100.0 / 2.0, "no division by zero");
    }

    #[test]
    fn assess_gives_time_from_tokens_and_a_sentence_that_says_estimate() {
        let e = assess(500 << 20, REFERENCE.params, 36_000, &hw(16, 8, 2));
        assert_eq!(e.verdict, Verdict::Fits);
        // Two cores, one thread counted per physical core: twice the per-core figure.
        assert_eq!(e.tokens_per_second, 2.0 * REFERENCE.tokens_per_second);
        assert!((e.seconds - 36_000.0 / e.tokens_per_second).abs() < 1e-9);
        assert!(e.summary.starts_with("Fits: training needs about 500 MiB of the 8.0 GiB free."), "{}", e.summary);
        assert!(e.summary.ends_with("(estimate)."), "{}", e.summary);

        let big = assess(40 << 30, 7_000_000_000, 36_000, &hw(16, 8, 2));
        assert_eq!(big.verdict, Verdict::DoesNotFit);
        assert!(big.summary.contains("this computer has 16.0 GiB"), "{}", big.summary);
        assert!(big.seconds > e.seconds * 50.0, "a 7B model is much slower than a 135M one");
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(duration(20.0), "under a minute");
        assert_eq!(duration(60.0), "1 minute");
        assert_eq!(duration(45.0 * 60.0), "45 minutes");
        assert_eq!(duration(3.0 * 3600.0), "3 hours");
        assert_eq!(duration(5.0 * 86400.0), "5 days");
        assert_eq!(duration(f64::INFINITY), "an unknown time");
    }

    /// The reference's parameter count is the fixture's, as the scanner reads it.
    #[test]
    fn reference_parameters_match_the_smollm2_fixture() {
        let path = fixtures::path(fixtures::Fixture::SmolLm2);
        let s = crate::read_summary(&path).unwrap();
        assert_eq!(s.parameter_count, REFERENCE.params);
    }
}
