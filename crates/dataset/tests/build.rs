//! Building the training set: fixes applied to the output only, persona, holdout, replay.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use dataset::{build, BuildOptions, CharEstimate, Kind, Options, PersonaMode, Record, Role};

fn sample(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/samples").join(rel)
}

fn read_jsonl(p: &Path) -> Vec<Record> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn snapshot(dir: &Path) -> HashMap<PathBuf, Vec<u8>> {
    walk(dir).into_iter().map(|p| {
        let b = std::fs::read(&p).unwrap();
        (p, b)
    }).collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn build_applies_fixes_to_the_output_and_never_to_the_sources() {
    let src = tempfile::tempdir().unwrap();
    for f in ["chat/openai.jsonl", "chat/qa.csv", "email/support.mbox", "email/question.eml", "email/reply.eml", "persona.toml"] {
        let to = src.path().join(f.replace('/', "_"));
        std::fs::copy(sample(f), to).unwrap();
    }
    let before = snapshot(src.path());
    let out = tempfile::tempdir().unwrap();
    let mut b = BuildOptions::new(out.path().join("dataset.jsonl"));
    b.drop_duplicates = true;
    b.redact = true;
    b.holdout = 0.0;
    let (s, report) = build(&[src.path().to_path_buf()], &Options::default(), &CharEstimate, &b).unwrap();
    assert_eq!(snapshot(src.path()), before, "source files untouched");
    assert_eq!(s.dropped.get("exact-duplicate"), Some(&1));
    assert!(s.redacted >= 2, "{s:?}");
    let recs = read_jsonl(&s.train_path);
    assert_eq!(recs.len(), s.train);
    let all: String = recs.iter().map(|r| r.all_text()).collect();
    assert!(!all.contains("maggie@emberoak.example"), "redacted");
    assert!(all.contains("[EMAIL]") && all.contains("[PHONE]"));
    // The persona found among the inputs is the system turn of every non-replay record.
    assert_eq!(s.persona.as_deref(), Some("Maggie of Ember & Oak Roasters"));
    assert!(recs.iter().all(|r| r.messages[0].role == Role::System && r.messages[0].content.starts_with("You are Maggie")));
    // The data's own system prompt follows the persona's.
    assert!(recs.iter().any(|r| r.messages[0].content.contains("You answer for Ember & Oak Roasters.")));
    // The report file holds the build summary and the findings.
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.report_path).unwrap()).unwrap();
    assert_eq!(rep["build"]["train"], s.train);
    assert_eq!(rep["report"]["findings"].as_array().unwrap().len(), report.findings.len());
    // Output lines are in the trainer's shape.
    let first: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&s.train_path).unwrap().lines().next().unwrap()).unwrap();
    assert!(first["messages"][0]["role"].is_string() && first["messages"][0]["content"].is_string());
}

#[test]
fn holdout_is_seeded_and_grouped() {
    let src = tempfile::tempdir().unwrap();
    // 60 threads of 3 records each (the thread column groups them).
    let mut csv = String::from("question,answer,thread\n");
    for t in 0..60 {
        for k in 0..3 {
            csv.push_str(&format!("Question {k} about order {t} and its {} beans?,Answer {k} for order {t}: it ships on roast day {} with tracking.,t{t}\n", t * 7 + k, t % 5));
        }
    }
    std::fs::write(src.path().join("threads.csv"), csv).unwrap();
    let run = |seed: u64, dir: &Path| {
        let mut b = BuildOptions::new(dir.join("d.jsonl"));
        b.holdout = 0.2;
        b.seed = seed;
        let (s, _) = build(&[src.path().to_path_buf()], &Options::default(), &CharEstimate, &b).unwrap();
        (read_jsonl(&s.train_path), read_jsonl(&s.holdout_path))
    };
    let (o1, o2, o3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (train, hold) = run(1, o1.path());
    assert_eq!(train.len() + hold.len(), 180);
    assert!(!hold.is_empty() && hold.len() < 90, "{}", hold.len());
    let tg: HashSet<&str> = train.iter().map(|r| r.group.as_str()).collect();
    let hg: HashSet<&str> = hold.iter().map(|r| r.group.as_str()).collect();
    assert!(tg.is_disjoint(&hg), "no thread on both sides");
    assert_eq!(hold.len() % 3, 0, "whole threads are held out");
    let (train2, hold2) = run(1, o2.path());
    assert_eq!((train2, hold2.clone()), (train, hold.clone()), "same seed, same split");
    let (_, hold3) = run(2, o3.path());
    assert_ne!(hold3, hold, "another seed, another split");
    assert!(o1.path().join("d.holdout.jsonl").exists() && o1.path().join("d.report.json").exists());
}

#[test]
fn persona_baked_in_means_no_system_prompt() {
    let out = tempfile::tempdir().unwrap();
    let mut b = BuildOptions::new(out.path().join("d.jsonl"));
    b.persona = Some(dataset::Persona::load(&sample("persona.toml")).unwrap());
    b.persona_mode = PersonaMode::Bake;
    b.holdout = 0.0;
    let (s, _) = build(&[sample("chat/openai.jsonl"), sample("sql")], &Options::default(), &CharEstimate, &b).unwrap();
    let recs = read_jsonl(&s.train_path);
    for r in &recs {
        match r.kind {
            Kind::Sql => assert!(r.messages[0].content.contains("CREATE TABLE"), "the schema stays"),
            _ => assert!(r.messages.iter().all(|m| m.role != Role::System), "{r:?}"),
        }
    }
}

#[test]
fn forbidden_outputs_are_dropped_unless_kept() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("c.jsonl"),
        "{\"prompt\":\"Late order?\",\"completion\":\"We apologize for any inconvenience, valued customer.\"}\n{\"prompt\":\"Hours?\",\"completion\":\"Seven to three, friend.\"}\n",
    )
    .unwrap();
    std::fs::copy(sample("persona.toml"), src.path().join("persona.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut b = BuildOptions::new(out.path().join("d.jsonl"));
    b.holdout = 0.0;
    let (s, rep) = build(&[src.path().to_path_buf()], &Options::default(), &CharEstimate, &b).unwrap();
    assert_eq!(s.train, 1);
    assert_eq!(s.dropped.get("forbidden-output"), Some(&1));
    assert!(rep.findings.iter().any(|f| f.code == "forbidden-output" && f.line == Some(1)));
    b.keep_forbidden = true;
    let (s, _) = build(&[src.path().to_path_buf()], &Options::default(), &CharEstimate, &b).unwrap();
    assert_eq!(s.train, 2);
}

#[test]
fn replay_mix_from_the_chatterbot_corpus() {
    let corpus = fixtures::path(fixtures::Fixture::ChatterbotCorpus).join("english");
    let out = tempfile::tempdir().unwrap();
    let mut b = BuildOptions::new(out.path().join("d.jsonl"));
    b.holdout = 0.0;
    b.replay = vec![corpus];
    b.replay_share = 0.25;
    let (s, _) = build(&[sample("chat"), sample("email")], &Options::default(), &CharEstimate, &b).unwrap();
    let recs = read_jsonl(&s.train_path);
    let replay = recs.iter().filter(|r| r.kind == Kind::Replay).count();
    assert_eq!(replay, s.replay);
    let share = replay as f64 / recs.len() as f64;
    assert!((0.2..0.3).contains(&share), "{share}");
    // Spread through the file, not all at the end.
    let first = recs.iter().position(|r| r.kind == Kind::Replay).unwrap();
    assert!(first < recs.len() / 2, "{first} of {}", recs.len());
    assert!(recs.iter().filter(|r| r.kind == Kind::Replay).all(|r| r.messages.iter().all(|m| m.role != Role::System)));
}

#[test]
fn refuses_to_overwrite_a_file_it_did_not_write() {
    let d = tempfile::tempdir().unwrap();
    let precious = d.path().join("notes.jsonl");
    std::fs::write(&precious, "{\"text\": \"my own notes\"}\n").unwrap();
    let b = BuildOptions::new(&precious);
    let err = build(&[sample("chat/text.jsonl")], &Options::default(), &CharEstimate, &b).unwrap_err();
    assert!(err.to_string().contains("not a dataset this app wrote"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "{\"text\": \"my own notes\"}\n");
    // Building into a folder that is also an input does not read its own output back.
    let mut b = BuildOptions::new(d.path().join("out.jsonl"));
    b.holdout = 0.0;
    let (s1, _) = build(&[d.path().to_path_buf()], &Options::default(), &CharEstimate, &b).unwrap();
    let (s2, _) = build(&[d.path().to_path_buf()], &Options::default(), &CharEstimate, &b).unwrap();
    assert_eq!(s1.train, s2.train);
    assert_eq!(s1.train, 1);
}
