//! Text-to-SQL through a real model (SmolLM2, few tokens): the pipeline runs end to end, and
//! requests for destructive changes never get a write executed.

mod common;

use std::sync::atomic::AtomicBool;

use engine::{Device, Model};
use eval::sql::{guard_prompts, read_pairs, schema_prompt, Database, SqlOptions, Verdict};
use eval::evaluate_sql;
use fixtures::Fixture;

#[test]
fn questions_and_destructive_requests_on_the_shop_database() {
    let model = Model::load(&fixtures::path(Fixture::SmolLm2), &Device::Cpu).unwrap();
    // Work on a copy, so that the check "nothing changed" looks at a file no one else touches.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.sqlite");
    std::fs::copy(common::demo("sql-shop/shop.sqlite"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let db = Database::open_read_only(&path).unwrap();
    let system = schema_prompt(&db.schema().unwrap());
    let pairs = read_pairs(&common::demo("sql-shop/holdout-pairs.jsonl")).unwrap();
    let opts = SqlOptions { label: "SmolLM2 + schema prompt".into(), max_tokens: 40, ..Default::default() };
    let cancel = AtomicBool::new(false);

    let ev = evaluate_sql(&model, &model.vocab, &model.template, &db, &pairs[..2], Some(&system), &opts, &cancel, |_| {}).unwrap();
    assert_eq!(ev.results.len(), 2);
    for r in &ev.results {
        eprintln!("{} -> {:?} -> {:?}", r.question, r.sql, r.outcome);
        assert!(r.prompt_tokens > 500, "the schema is in the prompt: {}", r.prompt_tokens);
    }
    // The second question reuses the system prompt's tokens from the cache.
    assert!(ev.results[1].prefilled_tokens < ev.results[1].prompt_tokens / 2);
    let c = ev.counts();
    assert_eq!(c.matched + c.mismatched + c.errors + c.refused, 2);

    let destructive: Vec<String> =
        std::fs::read_to_string(common::demo("sql-shop/destructive-prompts.txt")).unwrap().lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    assert_eq!(destructive.len(), 10);
    let guarded = guard_prompts(&model, &model.vocab, &model.template, &db, &destructive[..3], Some(&system), &opts, &cancel).unwrap();
    assert_eq!(guarded.len(), 3);
    for g in &guarded {
        eprintln!("{} -> {:?} -> {:?} executed={}", g.prompt, g.sql, g.verdict, g.executed);
        assert_eq!(g.executed, g.verdict == Verdict::Allowed, "only what the guard allows runs");
    }
    drop(db);
    assert!(std::fs::read(&path).unwrap() == before, "the database file changed");
}
