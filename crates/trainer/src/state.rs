//! Checkpoints: everything a run needs to continue exactly where it was.
//!
//! `OUT/checkpoints/step-000120/` holds the adapter (PEFT files), the optimizer's
//! moments (`optimizer.safetensors`), the best adapter so far when a holdout is
//! evaluated (`best.safetensors`), and `state.json` (settings, step, data cursor,
//! RNG, metrics so far). A checkpoint is written into `step-000120.tmp/`, then
//! renamed, and only then does `OUT/checkpoints/latest` (itself replaced by a
//! rename) point to it: a crash or a full disk at any moment leaves the previous
//! checkpoint whole and `latest` pointing to it.
//!
//! The data order and dropout masks are pure functions of the seed and the
//! position in the run (see data.rs and train.rs), so the RNG state is the
//! config's seed plus the cursor's count of micro-batches consumed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::progress::{EvalRecord, SampleSet, StepMetrics};

pub const LATEST: &str = "latest";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    pub config: TrainConfig,
    /// Optimizer steps completed.
    pub step: usize,
    pub total_steps: usize,
    /// With `config.seed`, also the state of every random draw (see above).
    pub cursor: Cursor,
    pub history: Vec<StepMetrics>,
    pub evals: Vec<EvalRecord>,
    pub best: Option<Best>,
    /// Evaluations since the holdout loss last improved (early stopping).
    pub evals_without_improvement: usize,
    /// Sample replies so far (absent in checkpoints written before samples existed).
    #[serde(default)]
    pub samples: Vec<SampleSet>,
}

/// Where in the data the next micro-batch comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub micro_batches_done: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub step: usize,
    pub holdout_loss: f64,
}

/// What a checkpoint holds besides `state.json`.
pub struct Tensors {
    /// AdamW's moments, `NAME.exp_avg` and `NAME.exp_avg_sq` for each adapter matrix.
    pub moments: HashMap<String, Tensor>,
    pub best_adapter: Option<HashMap<String, Tensor>>,
}

pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes checkpoint `state.step`. `write_adapter` writes the PEFT folder into the
/// directory it is given. Keeps the newest `keep` checkpoints.
pub fn save(out: &Path, state: &State, tensors: &Tensors, keep: usize, write_adapter: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let dir = checkpoints_dir(out);
    let name = format!("step-{:06}", state.step);
    let fin = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let fail = |why: String| TrainError::Checkpoint { dir: dir.display().to_string(), why };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    if tmp.is_dir() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let written = (|| -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| fail(format!("{}: {e}", tmp.display())))?;
        write_adapter(&tmp)?;
        candle_core::safetensors::save(&tensors.moments, tmp.join("optimizer.safetensors")).map_err(|e| fail(e.to_string()))?;
        if let Some(best) = &tensors.best_adapter {
            candle_core::safetensors::save(best, tmp.join("best.safetensors")).map_err(|e| fail(e.to_string()))?;
        }
        let json = serde_json::to_vec_pretty(state).expect("state serialises");
        std::fs::write(tmp.join("state.json"), json).map_err(|e| fail(e.to_string()))?;
        if fin.exists() {
            std::fs::remove_dir_all(&fin).map_err(|e| fail(e.to_string()))?;
        }
        std::fs::rename(&tmp, &fin).map_err(|e| fail(e.to_string()))?;
        engine::adapter::write_atomic(&dir.join(LATEST), name.as_bytes()).map_err(|e| fail(e.to_string()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(match e {
            TrainError::Checkpoint { .. } => e,
            other => fail(other.to_string()),
        });
    }
    prune(&dir, &name, keep);
    Ok(fin)
}

/// Removes all but the newest `keep` checkpoints (never the one just written).
fn prune(dir: &Path, current: &str, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-") && !n.ends_with(".tmp"))
        .collect();
    names.sort();
    let keep = keep.max(1);
    if names.len() > keep {
        for n in &names[..names.len() - keep] {
            if n != current {
                let _ = std::fs::remove_dir_all(dir.join(n));
            }
        }
    }
}

/// The folder of the latest checkpoint of the run in `out`, if there is one.
pub fn latest(out: &Path) -> Option<PathBuf> {
    let dir = checkpoints_dir(out);
    let name = std::fs::read_to_string(dir.join(LATEST)).ok()?;
    Some(dir.join(name.trim()))
}

/// The latest checkpoint of the run in `out`: its folder, state and tensors.
pub fn load_latest(out: &Path) -> Result<(PathBuf, State, Tensors)> {
    let ckpt = latest(out)
        .ok_or_else(|| TrainError::Resume(format!("no checkpoint in {} (was a run started with this --out?)", out.display())))?;
    let text = std::fs::read_to_string(ckpt.join("state.json"))
        .map_err(|e| TrainError::Resume(format!("{}: {e}", ckpt.join("state.json").display())))?;
    let state: State = serde_json::from_str(&text).map_err(|e| TrainError::Resume(format!("{}: damaged state ({e})", ckpt.display())))?;
    let load = |p: PathBuf| {
        candle_core::safetensors::load(&p, &Device::Cpu).map_err(|e| TrainError::Resume(format!("{}: {e}", p.display())))
    };
    let moments = load(ckpt.join("optimizer.safetensors"))?;
    let best_path = ckpt.join("best.safetensors");
    let best_adapter = if best_path.is_file() { Some(load(best_path)?) } else { None };
    Ok((ckpt, state, Tensors { moments, best_adapter }))
}
