//! `residency train` killed with SIGKILL and resumed with `--resume` ends with
//! the same adapter, bit for bit, as a run that was never interrupted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_residency"))
}

fn train_args(out: &Path) -> Vec<String> {
    let data = fixtures::repo_root().join("demo/coffee-roaster/chats.jsonl");
    let model = fixtures::path(fixtures::Fixture::SmolLm2);
    [
        "--threads", "2", "train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(),
        "--steps", "5", "--seq-len", "48", "--grad-accum", "2", "--rank", "4", "--alpha", "8", "--lr", "2e-3", "--warmup", "2",
        "--dropout", "0.1", "--checkpoint-every", "1", "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn adapter(out: &Path) -> Vec<(String, Vec<u8>)> {
    let t = candle_core::safetensors::load(out.join("adapter_model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = t
        .into_iter()
        .map(|(k, t)| {
            let bytes: Vec<u8> = t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect();
            (k, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn killed_and_resumed_run_ends_with_the_same_adapter_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("uninterrupted"), dir.path().join("killed"));

    let st = Command::new(bin()).args(train_args(&a)).stdout(Stdio::null()).status().unwrap();
    assert!(st.success(), "the uninterrupted run failed");

    // Kill the second run with SIGKILL once it has written checkpoint 2.
    let mut child = Command::new(bin()).args(train_args(&b)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let latest = b.join("checkpoints/latest");
    let t0 = Instant::now();
    loop {
        if std::fs::read_to_string(&latest).is_ok_and(|s| s.trim() >= "step-000002") {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before it could be killed");
        }
        assert!(t0.elapsed() < Duration::from_secs(900), "no checkpoint after 15 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix: no chance to save anything
    child.wait().unwrap();
    let killed_at = std::fs::read_to_string(&latest).unwrap();
    assert!(!b.join("adapter_model.safetensors").exists(), "the killed run must not have finished ({killed_at})");

    let out = Command::new(bin()).args(train_args(&b)).arg("--resume").output().unwrap();
    assert!(out.status.success(), "resume failed: {}", String::from_utf8_lossy(&out.stderr));
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("\"resumed_from\":"), "{events}");
    assert!(!events.contains("\"resumed_from\":null"), "{events}");

    let (ta, tb) = (adapter(&a), adapter(&b));
    assert_eq!(ta.len(), 30 * 7 * 2);
    assert_eq!(ta.len(), tb.len());
    for ((na, va), (nb, vb)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after kill -9 at {killed_at} and resume");
    }
    // The resumed run's record holds every step once.
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(b.join("run.json")).unwrap()).unwrap();
    let steps: Vec<u64> = run["steps"].as_array().unwrap().iter().map(|s| s["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5]);
}
