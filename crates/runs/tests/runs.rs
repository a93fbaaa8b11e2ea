//! Real short runs on the SmolLM2 fixture over a small folder of chats: a run finishes
//! with an adapter and sample replies; pause then resume ends exactly where an
//! uninterrupted run ends; a record left running is recovered after a restart;
//! cancel keeps the checkpoint; a run that cannot fit is refused with advice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runs::{Preset, RunSpec, RunStatus, Runs, Settings, Update, UpdateKind};
use trainer::Event;

#[derive(Default)]
struct Recorder(Mutex<Vec<Update>>);

impl Recorder {
    fn sink(self: &Arc<Self>) -> runs::Sink {
        let me = self.clone();
        Arc::new(move |u: &Update| me.0.lock().unwrap().push(u.clone()))
    }

    /// Waits (up to 10 minutes: the machine may be loaded) for an update that matches.
    fn wait_for(&self, what: &str, pred: impl Fn(&Update) -> bool) -> Update {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(600) {
            if let Some(u) = self.0.lock().unwrap().iter().find(|u| pred(u)) {
                return u.clone();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {what} within 10 minutes");
    }

    /// Waits for the run to reach status `s`; a run that fails instead fails the test at once, with its reason.
    fn status(&self, run: &str, s: RunStatus) -> Update {
        let u = self.wait_for(&format!("{s:?}"), |u| {
            u.run_id == run && matches!(&u.kind, UpdateKind::Status { record } if record.status == s || (record.status == RunStatus::Failed && s != RunStatus::Failed))
        });
        if let UpdateKind::Status { record } = &u.kind {
            assert_eq!(record.status, s, "the run ended {:?}: {:?}", record.status, record.error);
        }
        u
    }

    fn steps(&self, run: &str) -> Vec<usize> {
        let ups = self.0.lock().unwrap();
        ups.iter()
            .filter(|u| u.run_id == run)
            .filter_map(|u| match &u.kind {
                UpdateKind::Train { event: Event::Step(m) } => Some(m.step),
                _ => None,
            })
            .collect()
    }
}

/// A small project folder: short chats in three files (no persona, so records stay short).
fn small_data() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let qa = [
        ("Are you open on Sunday?", "Hi friend, yes: nine to two. Stay toasty!"),
        ("Do you ship to Canada?", "Hi friend, not yet, sorry. Stay toasty!"),
        ("Is the Kenya roast in stock?", "Hi friend, yes, fresh this week. Stay toasty!"),
        ("Can I grind my beans there?", "Hi friend, of course, free. Stay toasty!"),
    ];
    for f in ["a", "b", "c"] {
        let mut text = String::new();
        for (q, a) in qa {
            let q = format!("{q} ({f})");
            text.push_str(&serde_json::json!({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}).to_string());
            text.push('\n');
        }
        std::fs::write(d.path().join(format!("{f}.jsonl")), text).unwrap();
    }
    d
}

/// A few steps of short sequences: minutes at most on a loaded 2-core machine.
fn settings(steps: usize, samples: usize) -> Settings {
    Settings {
        rank: 4,
        alpha: 8.0,
        lr: 2e-3,
        epochs: 1.0,
        steps: Some(steps),
        seq_len: 128,
        batch: 1,
        grad_accum: 1,
        quant: "nf4".into(),
        seed: 7,
        eval_every: 2,
        samples,
    }
}

fn spec(data: &Path, settings: Settings) -> RunSpec {
    RunSpec {
        project_id: "p1".into(),
        model: Some(fixtures::path(fixtures::Fixture::SmolLm2)),
        paths: vec![data.to_path_buf()],
        build: dataset::BuildOptions::new("ignored.jsonl"),
        preset: Preset::PersonaAndStyle,
        settings,
        counter: Arc::new(dataset::CharEstimate),
    }
}

fn open(dir: &Path) -> (Arc<Recorder>, Runs) {
    let rec = Arc::new(Recorder::default());
    let runs = Runs::open(dir, rec.sink()).unwrap();
    (rec, runs)
}

#[test]
fn a_short_run_finishes_with_an_adapter_history_and_sample_replies() {
    let app = tempfile::tempdir().unwrap();
    let data = small_data();
    let (rec, runs) = open(app.path());
    let r = runs.start(spec(data.path(), settings(2, 1))).unwrap();
    assert_eq!(r.status, RunStatus::Preparing);
    // One training at a time.
    let again = runs.start(spec(data.path(), settings(2, 1))).unwrap_err().to_string();
    assert!(again.contains("already training"), "{again}");
    let done = rec.status(&r.id, RunStatus::Finished);
    let UpdateKind::Status { record } = done.kind else { unreachable!() };
    assert_eq!(record.project_id, "p1");
    assert_eq!(record.steps_done(), 2);
    assert!(record.train_examples.unwrap() >= 8, "{:?}", record.train_examples);
    assert!(record.finished_at.unwrap() >= record.started_at);
    let adapter = PathBuf::from(record.adapter_dir.as_deref().expect("an adapter"));
    assert!(adapter.join("adapter_model.safetensors").is_file());
    assert_eq!(rec.steps(&r.id), [1, 2]);
    let samples = rec.wait_for("samples", |u| matches!(&u.kind, UpdateKind::Train { event: Event::Samples(_) }));
    let UpdateKind::Train { event: Event::Samples(set) } = samples.kind else { unreachable!() };
    assert_eq!(set.step, 2);
    assert_eq!(set.samples.len(), 1);
    assert!(!set.samples[0].prompt.is_empty());

    // The history for the chart, from disk.
    let d = runs.detail(&r.id).unwrap();
    assert_eq!(d.steps.len(), 2);
    assert!(d.steps.iter().all(|m| m.loss.is_finite()));
    assert_eq!(d.evals.is_empty(), record.holdout_examples == Some(0), "the holdout is evaluated when there is one");
    assert_eq!(d.samples.len(), 1);
    assert_eq!(runs.list("p1").unwrap()[0].id, r.id);
    assert!(runs.list("p2").unwrap().is_empty());
    assert!(runs.active().is_none());
    // The list as the app sends it.
    let json = serde_json::to_value(&runs.list("p1").unwrap()[0]).unwrap();
    assert_eq!(json["status"], "finished");
    assert!(json["adapterDir"].is_string() && json["startedAt"].is_u64() && json["finishedAt"].is_u64());
    // A finished run is not resumed, paused or cancelled; it can be discarded.
    assert!(runs.resume(&r.id).unwrap_err().to_string().contains("it is finished"));
    assert!(runs.pause(&r.id).is_err());
    runs.discard(&r.id).unwrap();
    assert!(runs.get(&r.id).is_err());
}

/// The adapter a run ends with, and its losses.
fn result(runs: &Runs, id: &str) -> (Vec<u8>, Vec<f64>) {
    let r = runs.get(id).unwrap();
    let bytes = std::fs::read(Path::new(r.adapter_dir.as_deref().unwrap()).join("adapter_model.safetensors")).unwrap();
    let losses = runs.detail(id).unwrap().steps.iter().map(|m| m.loss).collect();
    (bytes, losses)
}

#[test]
fn pause_then_resume_ends_exactly_where_an_uninterrupted_run_ends() {
    let app = tempfile::tempdir().unwrap();
    let data = small_data();
    let (rec, runs) = open(app.path());
    let straight = runs.start(spec(data.path(), settings(4, 0))).unwrap();
    rec.status(&straight.id, RunStatus::Finished);

    let paused = runs.start(spec(data.path(), settings(4, 0))).unwrap();
    rec.wait_for("step 1", |u| u.run_id == paused.id && matches!(&u.kind, UpdateKind::Train { event: Event::Step(m) } if m.step == 1));
    runs.pause(&paused.id).unwrap();
    let p = rec.status(&paused.id, RunStatus::Paused);
    let UpdateKind::Status { record } = p.kind else { unreachable!() };
    let at = record.steps_done();
    assert!((1..4).contains(&at), "paused at step {at}");
    assert!(record.adapter_dir.is_none());
    assert_eq!(runs.recoverable("p1").unwrap()[0].id, paused.id);
    runs.resume(&paused.id).unwrap();
    rec.status(&paused.id, RunStatus::Finished);
    let resumed = rec.wait_for("resumed start", |u| {
        u.run_id == paused.id && matches!(&u.kind, UpdateKind::Train { event: Event::Started { resumed_from: Some(_), .. } })
    });
    let UpdateKind::Train { event: Event::Started { resumed_from, .. } } = resumed.kind else { unreachable!() };
    assert_eq!(resumed_from, Some(at));

    let (a, la) = result(&runs, &straight.id);
    let (b, lb) = result(&runs, &paused.id);
    assert_eq!(la.len(), 4);
    assert_eq!(la, lb, "the same losses, bit for bit");
    assert!(a == b, "the same adapter bytes");
}

#[test]
fn a_run_left_running_is_recovered_after_a_restart_and_cancel_keeps_the_checkpoint() {
    let app = tempfile::tempdir().unwrap();
    let data = small_data();
    let id = {
        let (rec, runs) = open(app.path());
        let r = runs.start(spec(data.path(), settings(3, 0))).unwrap();
        rec.wait_for("step 1", |u| u.run_id == r.id && matches!(&u.kind, UpdateKind::Train { event: Event::Step(_) }));
        runs.pause(&r.id).unwrap();
        rec.status(&r.id, RunStatus::Paused);
        r.id
    };
    // As if the app had died mid-run: the record still says running.
    let file = app.path().join(&id).join("record.json");
    let text = std::fs::read_to_string(&file).unwrap().replace("\"status\": \"paused\"", "\"status\": \"running\"");
    std::fs::write(&file, text).unwrap();

    let (rec, runs) = open(app.path());
    let r = runs.get(&id).unwrap();
    assert_eq!(r.status, RunStatus::Interrupted);
    assert_eq!(runs.recoverable("p1").unwrap().len(), 1);
    runs.resume(&id).unwrap();
    let done = rec.status(&id, RunStatus::Finished);
    let UpdateKind::Status { record } = done.kind else { unreachable!() };
    assert_eq!(record.steps_done(), 3);
    assert!(record.adapter_dir.is_some());
    assert_eq!(runs.detail(&id).unwrap().steps.len(), 3);

    // Cancel: stops for good, keeps the checkpoint, no adapter.
    let c = runs.start(spec(data.path(), settings(50, 0))).unwrap();
    rec.wait_for("a step", |u| u.run_id == c.id && matches!(&u.kind, UpdateKind::Train { event: Event::Step(_) }));
    runs.cancel(&c.id).unwrap();
    let cancelled = rec.status(&c.id, RunStatus::Cancelled);
    let UpdateKind::Status { record } = cancelled.kind else { unreachable!() };
    assert!(record.adapter_dir.is_none() && record.finished_at.is_some());
    assert!(record.config.out.join("checkpoints/latest").is_file(), "the checkpoint is kept");
    assert!(runs.resume(&c.id).unwrap_err().to_string().contains("cancelled"));
    assert!(runs.active().is_none());
}

#[test]
fn a_run_that_cannot_fit_is_refused_with_advice_and_bad_input_is_explained() {
    let app = tempfile::tempdir().unwrap();
    let data = small_data();
    let (_rec, runs) = open(app.path());
    let mut s = settings(2, 0);
    s.seq_len = 1 << 20;
    let fit = runs::estimate(&fixtures::path(fixtures::Fixture::SmolLm2), &s).unwrap();
    assert!(!fit.fits);
    let err = runs.start(spec(data.path(), s)).unwrap_err().to_string();
    assert!(err.contains("MiB of memory") && err.contains("shorter sequence length"), "{err}");
    let ok = runs::estimate(&fixtures::path(fixtures::Fixture::SmolLm2), &settings(2, 0)).unwrap();
    assert!(ok.fits && ok.need_bytes > 50 << 20 && ok.advice.is_none());

    let mut no_model = spec(data.path(), settings(2, 0));
    no_model.model = None;
    assert!(runs.start(no_model).unwrap_err().to_string().contains("Choose a model"));
    let mut no_data = spec(data.path(), settings(2, 0));
    no_data.paths.clear();
    assert!(runs.start(no_data).unwrap_err().to_string().contains("Add a folder"));
    let mut not_a_model = spec(data.path(), settings(2, 0));
    let junk = app.path().join("junk.gguf");
    std::fs::write(&junk, "nope").unwrap();
    not_a_model.model = Some(junk);
    assert!(runs.start(not_a_model).unwrap_err().to_string().starts_with("The model cannot be read"));
    // An empty folder: the run starts, then fails with the reason.
    let (rec, runs) = open(app.path());
    let empty = tempfile::tempdir().unwrap();
    let mut nothing = spec(data.path(), settings(2, 0));
    nothing.paths = vec![empty.path().to_path_buf()];
    let r = runs.start(nothing).unwrap();
    let failed = rec.status(&r.id, RunStatus::Failed);
    let UpdateKind::Status { record } = failed.kind else { unreachable!() };
    assert!(record.error.unwrap().contains("No training example"), "it says why");
    assert!(runs.list("p1").unwrap().iter().all(|r| r.status != RunStatus::Preparing));
}
