//! The record of one run, `runs/ID/record.json`: what the list of runs shows and
//! what the app needs to recover a run after a restart. Written to a temporary
//! file, flushed, then renamed, so a crash leaves the previous version whole.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use trainer::{StepMetrics, TrainConfig};

use crate::error::{Result, RunError};
use crate::preset::{Preset, Settings};

pub const RECORD_FILE: &str = "record.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunStatus {
    /// Building the training set from the project's data.
    Preparing,
    Running,
    /// Stopped by the person at a step boundary, with a checkpoint: can be resumed.
    Paused,
    Finished,
    /// Finished early: the holdout loss stopped improving.
    EarlyStopped,
    /// Stopped by the person for good (the last checkpoint is kept).
    Cancelled,
    Failed,
    /// Was preparing or training when the app stopped: can be resumed or discarded.
    Interrupted,
}

impl RunStatus {
    /// Training or about to: a job owns the run.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Preparing | RunStatus::Running)
    }

    /// Waiting for the person: resume or discard.
    pub fn is_resumable(self) -> bool {
        matches!(self, RunStatus::Paused | RunStatus::Interrupted)
    }

    pub fn word(self) -> &'static str {
        match self {
            RunStatus::Preparing => "preparing",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Finished => "finished",
            RunStatus::EarlyStopped => "finished early",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub id: String,
    pub project_id: String,
    pub preset: Preset,
    pub settings: Settings,
    pub status: RunStatus,
    /// Seconds since 1970, UTC.
    pub started_at: u64,
    pub finished_at: Option<u64>,
    /// The base model.
    pub model: String,
    /// The trainer's configuration (its data and output paths inside the run's folder).
    pub config: TrainConfig,
    /// Training and held-out examples in the built training set.
    pub train_examples: Option<usize>,
    pub holdout_examples: Option<usize>,
    pub total_steps: Option<usize>,
    /// The latest step's metrics (the full history is in the trainer's run.json).
    pub last: Option<StepMetrics>,
    pub last_holdout_loss: Option<f64>,
    /// The trained adapter's folder: set only once an adapter has been written.
    pub adapter_dir: Option<String>,
    /// Why the run failed, in words.
    pub error: Option<String>,
}

impl RunRecord {
    pub fn label(&self) -> String {
        format!("{} · {}", self.preset.label(), self.status.word())
    }

    pub fn steps_done(&self) -> usize {
        self.last.as_ref().map(|m| m.step).unwrap_or(0)
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn save(dir: &Path, r: &RunRecord) -> Result<()> {
    let path = dir.join(RECORD_FILE);
    let json = serde_json::to_vec_pretty(r).expect("a run record always serialises");
    engine::files::write_atomic(&path, &json).map_err(|e| RunError::Disk { path: path.display().to_string(), why: e.to_string() })
}

pub fn load(dir: &Path) -> Result<RunRecord> {
    let path = dir.join(RECORD_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::Damaged { path: path.display().to_string(), why: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| RunError::Damaged { path: path.display().to_string(), why: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_damaged_one_is_named() {
        let d = tempfile::tempdir().unwrap();
        let settings = Preset::TextToSql.settings();
        let config = settings.to_config("m.gguf".into(), "d.jsonl".into(), "o".into()).unwrap();
        let r = RunRecord {
            id: "r1".into(),
            project_id: "p1".into(),
            preset: Preset::TextToSql,
            settings,
            status: RunStatus::Running,
            started_at: now(),
            finished_at: None,
            model: "m.gguf".into(),
            config,
            train_examples: Some(3),
            holdout_examples: Some(1),
            total_steps: Some(2),
            last: None,
            last_holdout_loss: None,
            adapter_dir: None,
            error: None,
        };
        save(d.path(), &r).unwrap();
        assert_eq!(load(d.path()).unwrap(), r);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join(RECORD_FILE)).unwrap()).unwrap();
        assert_eq!(json["status"], "running");
        assert_eq!(json["preset"], "textToSql");
        assert!(json["adapterDir"].is_null() && json["startedAt"].is_u64() && json["finishedAt"].is_null());
        std::fs::write(d.path().join(RECORD_FILE), "{").unwrap();
        assert!(matches!(load(d.path()), Err(RunError::Damaged { .. })));
        assert_eq!(r.label(), "Text-to-SQL · running");
    }
}
