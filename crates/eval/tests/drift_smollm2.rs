//! The drift runner on the real SmolLM2 model: a few turns, few tokens.

mod common;

use std::sync::atomic::AtomicBool;

use engine::{Device, Model, Network};
use eval::{read_script, run_drift, DriftOptions};
use fixtures::Fixture;

fn smollm2() -> Model {
    Model::load(&fixtures::path(Fixture::SmolLm2), &Device::Cpu).unwrap()
}

#[test]
fn three_turns_with_the_persona_as_system_prompt() {
    let model = smollm2();
    let scorer = common::scorer();
    let script = read_script(&common::demo("coffee-roaster-eval/drift-script.txt")).unwrap();
    assert_eq!(script.len(), 30);
    let opts = DriftOptions {
        label: "base + persona prompt".into(),
        turns: 3,
        max_tokens: 12,
        system_prompt: Some(common::maggie().system_prompt()),
        ..Default::default()
    };
    let mut seen = 0;
    let run = run_drift(&model, &model.vocab, &model.template, &script, &scorer, &opts, &AtomicBool::new(false), |_| seen += 1).unwrap();
    assert_eq!((run.turns.len(), seen), (3, 3));
    assert!(run.notes.is_empty(), "{:?}", run.notes);
    assert!(run.system_prompt_tokens > 200, "{}", run.system_prompt_tokens);
    for (i, t) in run.turns.iter().enumerate() {
        eprintln!("turn {}: {:.1} | {} prompt tokens, {} prefilled in {:.2}s | {:?}", t.turn, t.adherence.score, t.prompt_tokens, t.prefilled_tokens, t.prefill_secs, t.reply);
        assert_eq!(t.turn, i + 1);
        assert_eq!(t.user, script[i]);
        assert!(!t.reply.is_empty());
        assert!(t.generated_tokens <= 12);
        assert!((0.0..=100.0).contains(&t.adherence.score));
        assert!(t.adherence.rules.is_some());
        assert_eq!(t.dropped_exchanges, 0);
    }
    // The whole history is in every prompt, and earlier turns come from the cache.
    assert!(run.turns[0].prompt_tokens > run.system_prompt_tokens);
    assert!(run.turns[1].prompt_tokens > run.turns[0].prompt_tokens + run.turns[0].generated_tokens);
    assert!(run.turns[2].prompt_tokens > run.turns[1].prompt_tokens);
    assert!(run.turns[1].prefilled_tokens < run.turns[1].prompt_tokens / 2, "{:?}", run.turns[1]);
    // The reply to turn 3, generated from scratch with a fresh cache, is the one the run got
    // while reusing the cache from turn to turn.
    let mut messages = vec![vocab::Message::system(opts.system_prompt.clone().unwrap())];
    for t in &run.turns[..2] {
        messages.push(vocab::Message::user(t.user.as_str()));
        messages.push(vocab::Message::assistant(t.reply.as_str()));
    }
    messages.push(vocab::Message::user(run.turns[2].user.as_str()));
    let ids = eval::chat::prompt_ids(&model.vocab, &model.template, &messages).unwrap();
    assert_eq!(ids.len(), run.turns[2].prompt_tokens);
    let gen = engine::GenerateOptions { max_tokens: 12, sampling: opts.sampling.clone(), stop: vec![], stop_at_eos: true };
    let fresh = eval::chat::reply_to(&model, &mut model.new_cache(), &ids, &gen, &AtomicBool::new(false)).unwrap();
    assert_eq!(fresh.text, run.turns[2].reply);
    assert_eq!(fresh.prefilled_tokens, fresh.prompt_tokens);

    // Greedy decoding: the same run gives the same replies.
    let again = run_drift(&model, &model.vocab, &model.template, &script, &scorer, &opts, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(run.turns.iter().map(|t| &t.reply).collect::<Vec<_>>(), again.turns.iter().map(|t| &t.reply).collect::<Vec<_>>());
}

#[test]
fn a_full_context_drops_the_oldest_exchanges_and_says_so() {
    let mut model = smollm2();
    // Pretend the model has a tiny context window.
    match &mut model.net {
        Network::Llama(m) => m.cfg.context_length = 96,
        Network::Gemma3(m) => m.cfg.context_length = 96,
    }
    let scorer = common::scorer();
    let script = read_script(&common::demo("coffee-roaster-eval/drift-script.txt")).unwrap();
    let opts = DriftOptions { turns: 4, max_tokens: 16, ..Default::default() };
    let run = run_drift(&model, &model.vocab, &model.template, &script, &scorer, &opts, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(run.turns.len(), 4);
    let last = run.turns.last().unwrap();
    assert!(last.dropped_exchanges > 0, "{:?}", run.turns.iter().map(|t| (t.prompt_tokens, t.dropped_exchanges)).collect::<Vec<_>>());
    assert!(run.turns.iter().all(|t| t.prompt_tokens <= 96 - 16));
    assert!(run.notes.iter().any(|n| n.contains("no longer fits")), "{:?}", run.notes);

    // A single message longer than the whole context is an error, not a panic.
    let long = vec!["coffee ".repeat(200)];
    let e = run_drift(&model, &model.vocab, &model.template, &long, &scorer, &opts, &AtomicBool::new(false), |_| {}).unwrap_err();
    assert!(e.to_string().contains("turn 1"), "{e}");
}

#[test]
fn a_short_script_plays_what_it_has_and_says_so() {
    let model = smollm2();
    let scorer = common::scorer();
    let opts = DriftOptions { turns: 30, max_tokens: 4, ..Default::default() };
    let run = run_drift(&model, &model.vocab, &model.template, &["Hi!".to_string()], &scorer, &opts, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(run.turns.len(), 1);
    assert!(run.notes[0].contains("1 turns were played instead of 30"), "{:?}", run.notes);
}
