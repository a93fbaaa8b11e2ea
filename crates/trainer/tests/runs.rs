//! Short training runs on SmolLM2-135M: the loss falls, what is written is
//! complete, and bad input gets a clear answer (empty data, records with no
//! assistant turn, over-long records, a diverging run, a failing checkpoint
//! write, an unsupported quantization).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use fixtures::Fixture;
use trainer::{Event, Length, Status, TrainConfig, TrainError, Trainer};

/// A short run on the demo's chat records (103 lines, one of them invalid JSON,
/// one far over the sequence length).
fn config(out: &Path) -> TrainConfig {
    let data = fixtures::repo_root().join("demo/coffee-roaster/chats.jsonl");
    let mut c = TrainConfig::new(fixtures::path(Fixture::SmolLm2), data, out.to_path_buf());
    c.length = Length::Steps(3);
    c.seq_len = 64;
    c.grad_accum = 2;
    c.rank = 4;
    c.alpha = 8.0;
    c.lr = 2e-3;
    c.warmup_steps = 0;
    c.checkpoint_every = 1;
    c.eval_every = 0;
    c
}

fn run(c: TrainConfig) -> (trainer::Result<trainer::Outcome>, Vec<Event>) {
    let mut events = Vec::new();
    let r = Trainer::new(c, false).and_then(|mut t| t.run(&mut |e| events.push(e.clone()), &AtomicBool::new(false)));
    (r, events)
}

#[test]
fn a_short_run_lowers_the_loss_and_writes_adapter_run_json_and_checkpoints() {
    let out = tempfile::tempdir().unwrap();
    let mut c = config(out.path());
    c.length = Length::Steps(4);
    c.grad_accum = 1;
    c.batch = 2;
    // Two records repeated: the loss on them must fall fast.
    let data = out.path().join("data.jsonl");
    let mut f = std::fs::File::create(&data).unwrap();
    for _ in 0..4 {
        writeln!(f, r#"{{"messages":[{{"role":"user","content":"Are you open on Sunday?"}},{{"role":"assistant","content":"Hi friend,\n\nYes, 9 to 2.\n\nStay toasty,\nMaggie"}}]}}"#).unwrap();
        writeln!(f, r#"{{"messages":[{{"role":"user","content":"Do you ship to Canada?"}},{{"role":"assistant","content":"Hi friend,\n\nNot yet, sorry.\n\nStay toasty,\nMaggie"}}]}}"#).unwrap();
    }
    drop(f);
    c.data = data;
    c.lr = 5e-3;
    let (r, events) = run(c);
    let outcome = r.unwrap();
    assert_eq!(outcome.status, Status::Finished);
    let losses: Vec<f64> = events.iter().filter_map(|e| if let Event::Step(m) = e { Some(m.loss) } else { None }).collect();
    assert_eq!(losses.len(), 4);
    assert!(losses[3] < 0.7 * losses[0], "loss should fall on repeated records: {losses:?}");
    for f in ["adapter_model.safetensors", "adapter_config.json", "run.json"] {
        assert!(out.path().join(f).is_file(), "{f} missing");
    }
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "finished");
    assert_eq!(run["steps"].as_array().unwrap().len(), 4);
    assert_eq!(run["config"]["rank"], 4);
    assert!(run["trainable_params"].as_u64().unwrap() > 0);
    // Two checkpoints kept (the default), the newest is `latest`.
    let latest = std::fs::read_to_string(out.path().join("checkpoints/latest")).unwrap();
    assert_eq!(latest, "step-000004");
    let kept: Vec<_> = std::fs::read_dir(out.path().join("checkpoints")).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
    assert_eq!(kept.len(), 2);
}

#[test]
fn invalid_and_over_long_records_are_counted_not_dropped_silently() {
    let out = tempfile::tempdir().unwrap();
    let mut c = config(out.path());
    c.length = Length::Steps(1);
    c.grad_accum = 1;
    let t = Trainer::new(c, false).unwrap();
    let r = &t.data_report;
    assert_eq!(r.records, 103, "every non-empty line is a record, the invalid one too");
    assert!(r.skipped.iter().any(|s| s.line == 67), "the line with a trailing comma is reported: {:?}", r.skipped);
    assert!(r.truncated.contains(&46), "the 2284-token thread is cut and counted: {:?}", r.truncated);
    assert_eq!(r.used + r.skipped.len(), r.records);
}

#[test]
fn empty_data_and_records_without_an_assistant_turn_are_refused_clearly() {
    let out = tempfile::tempdir().unwrap();
    let data = out.path().join("data.jsonl");
    std::fs::write(&data, "").unwrap();
    let mut c = config(out.path());
    c.data = data.clone();
    let err = Trainer::new(c.clone(), false).err().expect("empty data must fail").to_string();
    assert!(err.contains("no usable training record"), "{err}");

    std::fs::write(&data, "{\"messages\":[{\"role\":\"user\",\"content\":\"hello?\"}]}\n{\"text\": 3}\n").unwrap();
    let err = Trainer::new(c, false).err().expect("no assistant turn must fail").to_string();
    assert!(err.contains("no assistant turn"), "{err}");
    assert!(err.contains("2 skipped"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_advice_and_keeps_the_last_good_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let mut c = config(out.path());
    c.length = Length::Steps(8);
    c.lr = 0.9;
    c.max_grad_norm = None;
    let (r, events) = run(c);
    let err = r.err().expect("lr 0.9 must diverge");
    assert!(matches!(err, TrainError::Diverged { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("lower the learning rate"), "{msg}");
    let checkpoints = events.iter().filter(|e| matches!(e, Event::Checkpoint { .. })).count();
    if checkpoints > 0 {
        assert!(msg.contains("step-0000"), "{msg}");
        assert!(out.path().join("checkpoints/latest").is_file());
    }
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "diverged");
}

#[test]
fn a_failed_checkpoint_write_keeps_the_previous_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let c = config(out.path());
    // Something already sits where checkpoint 2 is written (as a full disk would
    // make the write fail half-way).
    std::fs::create_dir_all(out.path().join("checkpoints")).unwrap();
    std::fs::write(out.path().join("checkpoints/step-000002.tmp"), b"in the way").unwrap();
    let (r, _) = run(c);
    let err = r.err().expect("the checkpoint write must fail").to_string();
    assert!(err.contains("previous checkpoint is intact"), "{err}");
    assert_eq!(std::fs::read_to_string(out.path().join("checkpoints/latest")).unwrap(), "step-000001");
    let ckpt = out.path().join("checkpoints/step-000001");
    for f in ["adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors", "state.json"] {
        assert!(ckpt.join(f).is_file(), "{f} missing from the previous checkpoint");
    }
    // And that checkpoint resumes.
    let mut c = config(out.path());
    c.length = Length::Steps(2);
    std::fs::remove_file(out.path().join("checkpoints/step-000002.tmp")).unwrap();
    let mut t = Trainer::new(c, true).unwrap();
    assert_eq!(t.step(), 1);
    let o = t.run(&mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(o.steps, 2);
}

#[test]
fn gguf_quantization_on_an_unquantized_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = engine::Model::load_with(&fixtures::path(Fixture::SmolLm2), engine::WeightMode::F32, &engine::Device::Cpu).unwrap();
    engine::export::export_hf_folder(&model, dir.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut c = config(out.path());
    c.model = dir.path().to_path_buf();
    c.quant = engine::BaseQuant::Gguf;
    let err = Trainer::new(c, false).err().expect("must be refused").to_string();
    assert!(err.contains("--quant nf4"), "{err}");
}

#[test]
fn a_prompt_longer_than_the_sequence_says_how_long_the_sequence_must_be() {
    let out = tempfile::tempdir().unwrap();
    let data = out.path().join("sql.jsonl");
    let schema = "CREATE TABLE X_77_User_Ref (id INTEGER PRIMARY KEY, nm TEXT, is_del INTEGER);\n".repeat(20);
    let rec = serde_json::json!({"messages": [
        {"role": "system", "content": format!("Answer with one SQL query for this schema:\n{schema}")},
        {"role": "user", "content": "How many users are there?"},
        {"role": "assistant", "content": "SELECT COUNT(*) FROM X_77_User_Ref WHERE is_del = 0;"},
    ]});
    std::fs::write(&data, format!("{rec}\n")).unwrap();
    let mut c = config(out.path());
    c.data = data;
    let err = Trainer::new(c, false).err().expect("the reply is beyond --seq-len 64").to_string();
    assert!(err.contains("raise --seq-len above"), "{err}");
    assert!(err.contains("1 skipped"), "{err}");
    assert!(!err.contains("cut to the sequence length"), "a skipped record is not also counted as cut: {err}");
}
