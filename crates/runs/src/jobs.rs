//! [`Runs`]: a project's training runs as background jobs, one training at a time.
//!
//! - start: checks the settings and the memory estimate (a run that cannot fit
//!   is refused with the estimator's advice), writes the record, then on a
//!   background thread builds the training set and trains;
//! - pause: the trainer stops at the next step boundary and writes a
//!   checkpoint; resume continues from it (`Trainer::new(.., resume = true)`),
//!   bit for bit as if the run had not stopped;
//! - cancel: stops the same way but for good (the checkpoint is kept);
//! - at start-up, a record that says preparing or running has no job behind it
//!   any more: it is marked interrupted and offered for recovery (resume from
//!   its last checkpoint) or discarding.
//!
//! Every trainer event and every change of status goes to the [`Sink`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dataset::TokenCounter;
use serde::Serialize;
use trainer::progress::EvalRecord;
use trainer::{Event, SamplePrompt, SampleSet, Status, StepMetrics, TrainConfig, Trainer};

use crate::error::{Result, RunError};
use crate::preset::{Preset, Settings};
use crate::record::{self, now, RunRecord, RunStatus};

/// Where updates go: the window in the app, a list in tests. Called on the job's thread.
pub type Sink = Arc<dyn Fn(&Update) + Send + Sync>;

/// One update about a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub run_id: String,
    pub project_id: String,
    #[serde(flatten)]
    pub kind: UpdateKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum UpdateKind {
    /// A trainer event (started, step, eval, samples, checkpoint, finished).
    Train { event: Event },
    /// The record changed status (started, paused, finished, failed...).
    Status { record: Box<RunRecord> },
}

/// What a run is made from: the project's inputs, how its training set is built
/// (persona and accepted fixes), its model and the chosen settings.
pub struct RunSpec {
    pub project_id: String,
    pub model: Option<PathBuf>,
    pub paths: Vec<PathBuf>,
    /// The builder's options (persona, fixes); `out` is replaced by the run's own folder.
    pub build: dataset::BuildOptions,
    pub preset: Preset,
    pub settings: Settings,
    /// Measures record lengths when the training set is built (the model's tokenizer).
    pub counter: Arc<dyn TokenCounter>,
}

/// A run with its history for the chart: every step, every evaluation, the sample replies.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetail {
    pub record: RunRecord,
    pub steps: Vec<StepMetrics>,
    pub evals: Vec<EvalRecord>,
    pub samples: Vec<SampleSet>,
}

/// Whether a run fits in memory, before it starts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    pub need_bytes: u64,
    /// Memory free now (None when it cannot be measured).
    pub free_bytes: Option<u64>,
    pub fits: bool,
    /// What to change when it does not fit.
    pub advice: Option<String>,
}

/// The memory a run of `settings` on `model` needs, against what is free.
pub fn estimate(model: &Path, settings: &Settings) -> Result<Fit> {
    let cfg = settings.to_config(model.to_path_buf(), PathBuf::new(), PathBuf::new())?;
    let (shape, bytes) = engine::Model::peek_config(model).map_err(|e| RunError::Model(e.to_string()))?;
    let est = trainer::memory::estimate(&shape, bytes, &cfg);
    let free = trainer::memory::available();
    let fits = free.is_none_or(|f| est.total <= f);
    Ok(Fit { need_bytes: est.total, free_bytes: free, fits, advice: (!fits).then(|| trainer::memory::advice(&cfg, &est)) })
}

/// Why the job's stop flag was raised.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Pause,
    Cancel,
}

struct Job {
    run_id: String,
    stop: Arc<AtomicBool>,
    why: Arc<Mutex<Option<Stop>>>,
}

struct Inner {
    dir: PathBuf,
    sink: Sink,
    job: Mutex<Option<Job>>,
    /// Record writes one at a time (the job's thread and the commands both write).
    records: Mutex<()>,
}

/// The runs of every project, kept in one folder (`APP_DATA/runs`).
#[derive(Clone)]
pub struct Runs(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Runs {
    /// Opens the runs folder. Runs whose record says preparing or running have no
    /// job behind them (the app stopped): they are marked interrupted.
    pub fn open(dir: &Path, sink: Sink) -> Result<Runs> {
        std::fs::create_dir_all(dir).map_err(|e| RunError::Disk { path: dir.display().to_string(), why: e.to_string() })?;
        let runs = Runs(Arc::new(Inner { dir: dir.to_path_buf(), sink, job: Mutex::new(None), records: Mutex::new(()) }));
        for r in runs.all()? {
            if r.status.is_active() {
                runs.update(&r.id, |r| r.status = RunStatus::Interrupted)?;
            }
        }
        Ok(runs)
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.0.dir.join(id)
    }

    /// Every readable record, newest first. Damaged records are skipped here; the
    /// list shows what can be shown.
    fn all(&self) -> Result<Vec<RunRecord>> {
        let rd = std::fs::read_dir(&self.0.dir).map_err(|e| RunError::Disk { path: self.0.dir.display().to_string(), why: e.to_string() })?;
        let mut out: Vec<RunRecord> = rd.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).filter_map(|e| record::load(&e.path()).ok()).collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    /// The project's runs, newest first.
    pub fn list(&self, project_id: &str) -> Result<Vec<RunRecord>> {
        Ok(self.all()?.into_iter().filter(|r| r.project_id == project_id).collect())
    }

    /// The project's runs waiting for the person: interrupted by a restart, or paused.
    pub fn recoverable(&self, project_id: &str) -> Result<Vec<RunRecord>> {
        Ok(self.list(project_id)?.into_iter().filter(|r| r.status.is_resumable()).collect())
    }

    pub fn get(&self, id: &str) -> Result<RunRecord> {
        if !valid_id(id) || !self.run_dir(id).join(record::RECORD_FILE).is_file() {
            return Err(RunError::NoSuchRun(id.to_string()));
        }
        record::load(&self.run_dir(id))
    }

    /// The record with the history from the trainer's `run.json` (empty before the first step).
    pub fn detail(&self, id: &str) -> Result<RunDetail> {
        let record = self.get(id)?;
        let run: serde_json::Value = std::fs::read_to_string(record.config.out.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let field = |k: &str| run.get(k).cloned().unwrap_or(serde_json::Value::Array(vec![]));
        Ok(RunDetail {
            steps: serde_json::from_value(field("steps")).unwrap_or_default(),
            evals: serde_json::from_value(field("evals")).unwrap_or_default(),
            samples: serde_json::from_value(field("samples")).unwrap_or_default(),
            record,
        })
    }

    /// The id of the run training now, if any.
    pub fn active(&self) -> Option<String> {
        lock(&self.0.job).as_ref().map(|j| j.run_id.clone())
    }

    /// Starts a run of the project in the background. Refused when another run is
    /// training, when a setting is wrong, or when the run will not fit in memory.
    pub fn start(&self, spec: RunSpec) -> Result<RunRecord> {
        let model = spec.model.clone().ok_or(RunError::NoModel)?;
        if spec.paths.is_empty() {
            return Err(RunError::NoData);
        }
        if let Some(id) = self.active() {
            return Err(RunError::Busy(id));
        }
        let fit = estimate(&model, &spec.settings)?;
        if !fit.fits {
            return Err(RunError::WillNotFit {
                need_mib: fit.need_bytes >> 20,
                have_mib: fit.free_bytes.unwrap_or(0) >> 20,
                advice: fit.advice.unwrap_or_default(),
            });
        }
        let id = self.new_id();
        let dir = self.run_dir(&id);
        let config = spec.settings.to_config(model.clone(), dir.join("data/train.jsonl"), dir.join("out"))?;
        std::fs::create_dir_all(dir.join("data")).map_err(|e| RunError::Disk { path: dir.display().to_string(), why: e.to_string() })?;
        let rec = RunRecord {
            id: id.clone(),
            project_id: spec.project_id.clone(),
            preset: spec.preset,
            settings: spec.settings.clone(),
            status: RunStatus::Preparing,
            started_at: now(),
            finished_at: None,
            model: model.display().to_string(),
            config,
            train_examples: None,
            holdout_examples: None,
            total_steps: None,
            last: None,
            last_holdout_loss: None,
            adapter_dir: None,
            error: None,
        };
        record::save(&dir, &rec)?;
        self.launch(rec.clone(), Some(spec))?;
        Ok(rec)
    }

    /// Asks the run training now to stop at the next step boundary with a checkpoint.
    pub fn pause(&self, id: &str) -> Result<()> {
        self.signal(id, Stop::Pause, "paused")
    }

    /// Stops a run for good. A paused or interrupted run is marked cancelled at once;
    /// its last checkpoint is kept.
    pub fn cancel(&self, id: &str) -> Result<()> {
        let r = self.get(id)?;
        if r.status.is_resumable() {
            let r = self.update(id, |r| {
                r.status = RunStatus::Cancelled;
                r.finished_at = Some(now());
            })?;
            self.send_status(&r);
            return Ok(());
        }
        self.signal(id, Stop::Cancel, "cancelled")
    }

    fn signal(&self, id: &str, why: Stop, action: &'static str) -> Result<()> {
        let job = lock(&self.0.job);
        match job.as_ref() {
            Some(j) if j.run_id == id => {
                *lock(&j.why) = Some(why);
                j.stop.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(RunError::WrongState { action, status: self.get(id)?.status.word().into() }),
        }
    }

    /// Continues a paused or interrupted run from its latest checkpoint (from the
    /// start when it stopped before the first one).
    pub fn resume(&self, id: &str) -> Result<RunRecord> {
        let r = self.get(id)?;
        if !r.status.is_resumable() {
            return Err(RunError::WrongState { action: "resumed", status: r.status.word().into() });
        }
        if let Some(active) = self.active() {
            return Err(RunError::Busy(active));
        }
        if !r.config.data.is_file() {
            return Err(RunError::NothingToResume);
        }
        let r = self.update(id, |r| {
            r.status = RunStatus::Running;
            r.error = None;
        })?;
        self.launch(r.clone(), None)?;
        Ok(r)
    }

    /// Deletes a run that is not training: its record, training set, checkpoints and adapter.
    pub fn discard(&self, id: &str) -> Result<()> {
        let r = self.get(id)?;
        if self.active().as_deref() == Some(id) {
            return Err(RunError::WrongState { action: "discarded", status: r.status.word().into() });
        }
        let dir = self.run_dir(id);
        std::fs::remove_dir_all(&dir).map_err(|e| RunError::Disk { path: dir.display().to_string(), why: e.to_string() })
    }

    fn new_id(&self) -> String {
        let base = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0));
        let mut id = base.clone();
        let mut n = 1;
        while self.run_dir(&id).exists() {
            n += 1;
            id = format!("{base}-{n}");
        }
        id
    }

    /// Reads, changes and saves a record, one writer at a time.
    fn update(&self, id: &str, change: impl FnOnce(&mut RunRecord)) -> Result<RunRecord> {
        let _one = lock(&self.0.records);
        let dir = self.run_dir(id);
        let mut r = record::load(&dir)?;
        change(&mut r);
        record::save(&dir, &r)?;
        Ok(r)
    }

    fn send(&self, r: &RunRecord, kind: UpdateKind) {
        (self.0.sink)(&Update { run_id: r.id.clone(), project_id: r.project_id.clone(), kind });
    }

    fn send_status(&self, r: &RunRecord) {
        self.send(r, UpdateKind::Status { record: Box::new(r.clone()) });
    }

    /// Registers the job and starts its thread. `spec` is given for a new run (its
    /// training set is built first); a resumed run reuses the one it has.
    fn launch(&self, rec: RunRecord, spec: Option<RunSpec>) -> Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let why = Arc::new(Mutex::new(None));
        {
            let mut job = lock(&self.0.job);
            if let Some(j) = job.as_ref() {
                return Err(RunError::Busy(j.run_id.clone()));
            }
            *job = Some(Job { run_id: rec.id.clone(), stop: stop.clone(), why: why.clone() });
        }
        self.send_status(&rec);
        let runs = self.clone();
        let spawned = std::thread::Builder::new().name(format!("run-{}", rec.id)).spawn(move || {
            let id = rec.id.clone();
            let ended = runs.work(rec, spec, &stop, &why);
            let r = match ended {
                Ok(r) => Ok(r),
                Err(e) => runs.update(&id, |r| {
                    r.status = RunStatus::Failed;
                    r.error = Some(for_the_app(&e));
                    r.finished_at = Some(now());
                }),
            };
            *lock(&runs.0.job) = None;
            match r {
                Ok(r) => runs.send_status(&r),
                Err(e) => eprintln!("Residency could not save the end of run {id}: {e}"),
            }
        });
        if let Err(e) = spawned {
            *lock(&self.0.job) = None;
            return Err(RunError::Disk { path: self.0.dir.display().to_string(), why: format!("could not start the training thread: {e}") });
        }
        Ok(())
    }

    /// The job: build the data (new runs), train, and record how it ended.
    fn work(&self, rec: RunRecord, spec: Option<RunSpec>, stop: &AtomicBool, why: &Mutex<Option<Stop>>) -> std::result::Result<RunRecord, String> {
        let id = rec.id.clone();
        let mut config = rec.config.clone();
        let resume = match spec {
            Some(spec) => {
                let (train, holdout, prompts) = build_data(&spec, &config)?;
                config.sample_prompts = prompts.into_iter().take(spec.settings.samples).collect();
                let r = self
                    .update(&id, |r| {
                        r.train_examples = Some(train);
                        r.holdout_examples = Some(holdout);
                        r.config = config.clone();
                        r.status = RunStatus::Running;
                    })
                    .map_err(|e| e.to_string())?;
                self.send_status(&r);
                false
            }
            None => trainer::state::latest(&config.out).is_some(),
        };
        if stop.load(Ordering::Relaxed) {
            return self.stopped(&id, *lock(why)).map_err(|e| e.to_string());
        }
        let mut trainer = Trainer::new(config, resume).map_err(|e| e.to_string())?;
        let mut on_event = |e: &Event| {
            let changed = match e {
                Event::Started { total_steps, .. } => {
                    let t = *total_steps;
                    self.update(&id, |r| r.total_steps = Some(t)).ok()
                }
                Event::Step(m) => self.update(&id, |r| r.last = Some(m.clone())).ok(),
                Event::Eval(ev) => self.update(&id, |r| r.last_holdout_loss = Some(ev.holdout_loss)).ok(),
                _ => None,
            };
            if let Some(r) = changed {
                self.send(&r, UpdateKind::Train { event: e.clone() });
            } else {
                self.send(&rec, UpdateKind::Train { event: e.clone() });
            }
        };
        let outcome = trainer.run(&mut on_event, stop).map_err(|e| e.to_string())?;
        let ended = match outcome.status {
            Status::Cancelled => self.stopped(&id, *lock(why)),
            s => {
                let adapter = outcome.adapter.join("adapter_model.safetensors").is_file().then(|| outcome.adapter.display().to_string());
                self.update(&id, |r| {
                    r.status = if s == Status::EarlyStopped { RunStatus::EarlyStopped } else { RunStatus::Finished };
                    r.finished_at = Some(now());
                    r.adapter_dir = adapter;
                })
            }
        };
        ended.map_err(|e| e.to_string())
    }

    fn stopped(&self, id: &str, why: Option<Stop>) -> Result<RunRecord> {
        self.update(id, |r| match why {
            Some(Stop::Pause) => r.status = RunStatus::Paused,
            _ => {
                r.status = RunStatus::Cancelled;
                r.finished_at = Some(now());
            }
        })
    }
}

/// Builds the run's training set from the project's inputs. Returns the numbers of
/// training and held-out records, and prompts from the held-out records for the
/// sample replies.
fn build_data(spec: &RunSpec, config: &TrainConfig) -> std::result::Result<(usize, usize, Vec<SamplePrompt>), String> {
    let mut b = spec.build.clone();
    b.out = config.data.clone();
    b.persona_mode = spec.preset.persona_mode();
    let opts = dataset::Options { seq_len: config.seq_len, ..dataset::Options::default() };
    let (summary, _report) =
        dataset::build(&spec.paths, &opts, spec.counter.as_ref(), &b).map_err(|e| format!("The training set could not be built: {e}"))?;
    if summary.train == 0 {
        return Err("No training example could be built from this project's data. Open the Data screen to see what is wrong with it.".into());
    }
    let prompts = sample_prompts(&summary.holdout_path, &summary.train_path);
    Ok((summary.train + summary.replay, summary.holdout, prompts))
}

/// The first user turns of the held-out records (of the training records when
/// nothing was held out), with their system turn.
fn sample_prompts(holdout: &Path, train: &Path) -> Vec<SamplePrompt> {
    let from = |p: &Path| -> Vec<SamplePrompt> {
        let Ok(text) = std::fs::read_to_string(p) else { return Vec::new() };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                let msgs = v.get("messages")?.as_array()?.clone();
                let text_of = |role: &str| msgs.iter().find(|m| m["role"] == role).and_then(|m| m["content"].as_str()).map(str::to_string);
                let user = text_of("user").filter(|u| !u.trim().is_empty())?;
                Some(SamplePrompt { system: text_of("system"), user })
            })
            .take(crate::preset::MAX_SAMPLES)
            .collect()
    };
    let held = from(holdout);
    if held.is_empty() {
        from(train)
    } else {
        held
    }
}

/// The trainer names its CLI flags (`--seq-len`); the app has fields in the advanced settings.
fn for_the_app(msg: &str) -> String {
    [("--seq-len", "Sequence length"), ("--lr", "Learning rate"), ("--quant nf4", "4-bit base precision"), ("--steps", "Steps"), ("--epochs", "Epochs")]
        .iter()
        .fold(msg.to_string(), |m, (flag, field)| m.replace(flag, &format!("the {field} setting")))
}

/// Ids this crate makes: letters, digits and dashes (never a path).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trainer_messages_name_the_settings_not_cli_flags() {
        let m = for_the_app("beyond the sequence length of 64: raise --seq-len above 561");
        assert_eq!(m, "beyond the sequence length of 64: raise the Sequence length setting above 561");
    }

    #[test]
    fn ids_that_could_be_paths_are_refused() {
        assert!(valid_id("19a2b3c-2"));
        for bad in ["", "../x", "a/b", "..", "x y"] {
            assert!(!valid_id(bad), "{bad}");
        }
        let d = tempfile::tempdir().unwrap();
        let runs = Runs::open(d.path(), Arc::new(|_: &Update| {})).unwrap();
        assert!(matches!(runs.get("../etc"), Err(RunError::NoSuchRun(_))));
        assert!(matches!(runs.pause("nope"), Err(RunError::NoSuchRun(_))));
    }

    #[test]
    fn sample_prompts_come_from_the_holdout_with_their_system_turn() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("h.jsonl");
        let t = d.path().join("t.jsonl");
        std::fs::write(&h, "{\"messages\":[{\"role\":\"system\",\"content\":\"You are Maggie.\"},{\"role\":\"user\",\"content\":\"Open Sunday?\"},{\"role\":\"assistant\",\"content\":\"Yes.\"}]}\nnot json\n").unwrap();
        std::fs::write(&t, "{\"messages\":[{\"role\":\"user\",\"content\":\"Ship to Canada?\"}]}\n").unwrap();
        let p = sample_prompts(&h, &t);
        assert_eq!(p, [SamplePrompt { system: Some("You are Maggie.".into()), user: "Open Sunday?".into() }]);
        let p = sample_prompts(&d.path().join("missing.jsonl"), &t);
        assert_eq!(p[0].user, "Ship to Canada?");
        assert!(p[0].system.is_none());
    }

    #[test]
    fn a_record_left_running_is_interrupted_after_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let settings = Preset::PersonaAndStyle.settings();
        let rec = RunRecord {
            id: "r1".into(),
            project_id: "p".into(),
            preset: Preset::PersonaAndStyle,
            config: settings.to_config("m".into(), "d".into(), "o".into()).unwrap(),
            settings,
            status: RunStatus::Running,
            started_at: 1,
            finished_at: None,
            model: "m".into(),
            train_examples: None,
            holdout_examples: None,
            total_steps: None,
            last: None,
            last_holdout_loss: None,
            adapter_dir: None,
            error: None,
        };
        std::fs::create_dir_all(d.path().join("r1")).unwrap();
        record::save(&d.path().join("r1"), &rec).unwrap();
        let runs = Runs::open(d.path(), Arc::new(|_: &Update| {})).unwrap();
        assert_eq!(runs.get("r1").unwrap().status, RunStatus::Interrupted);
        assert_eq!(runs.recoverable("p").unwrap().len(), 1);
        assert!(runs.recoverable("other").unwrap().is_empty());
        // Its training set was never built: nothing to resume, but it can be discarded.
        assert!(matches!(runs.resume("r1"), Err(RunError::NothingToResume)));
        runs.discard("r1").unwrap();
        assert!(runs.list("p").unwrap().is_empty());
    }
}
