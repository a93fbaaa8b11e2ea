//! The generation loop on the default model: streaming, stop strings, EOS,
//! cancellation, and KV-cache reuse giving the same tokens as a fresh start.

use std::sync::atomic::{AtomicBool, Ordering};

use engine::{generate, Device, GenerateOptions, Model, SamplingParams, StopReason};
use fixtures::Fixture;

fn smollm2() -> Model {
    Model::load(&fixtures::path(Fixture::SmolLm2), &Device::Cpu).unwrap()
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_tokens, sampling: SamplingParams::greedy(), stop: vec![], stop_at_eos: true }
}

#[test]
fn streamed_pieces_add_up_to_the_text_and_stop_strings_cut_it() {
    let m = smollm2();
    let ids = m.vocab.encode("The capital of France is", m.vocab.add_bos(), true).unwrap();
    let never = AtomicBool::new(false);

    let mut streamed = String::new();
    let full = generate(&m, &mut m.new_cache(), &ids, &greedy(24), &never, |p| streamed.push_str(p)).unwrap();
    assert_eq!(streamed, full.text);
    assert!(full.text.contains("Paris"), "{}", full.text);

    // Stop at the first full stop: text ends before it, and it is never streamed.
    let opts = GenerateOptions { stop: vec![".".into()], ..greedy(24) };
    let mut streamed = String::new();
    let cut = generate(&m, &mut m.new_cache(), &ids, &opts, &never, |p| streamed.push_str(p)).unwrap();
    assert_eq!(cut.stop_reason, StopReason::StopString);
    assert_eq!(cut.text, full.text[..full.text.find('.').unwrap()]);
    assert_eq!(streamed, cut.text);
}

#[test]
fn cancel_stops_mid_generation() {
    let m = smollm2();
    let ids = m.vocab.encode("Once upon a time", m.vocab.add_bos(), true).unwrap();
    let cancel = AtomicBool::new(false);
    let mut pieces = 0;
    let g = generate(&m, &mut m.new_cache(), &ids, &GenerateOptions { stop_at_eos: false, ..greedy(200) }, &cancel, |_| {
        pieces += 1;
        if pieces == 5 {
            cancel.store(true, Ordering::SeqCst);
        }
    })
    .unwrap();
    assert_eq!(g.stop_reason, StopReason::Cancelled);
    assert!(g.tokens.len() < 10, "{} tokens after cancelling", g.tokens.len());
}

#[test]
fn chat_turn_ends_at_end_of_turn() {
    let m = smollm2();
    let msgs = vec![vocab::Message::new("system", "You are a helpful assistant."), vocab::Message::new("user", "Say hello.")];
    let ids = m.template.render_for_model(&m.vocab, &msgs, true).unwrap().encode(&m.vocab).unwrap();
    let g = generate(&m, &mut m.new_cache(), &ids, &greedy(64), &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(g.stop_reason, StopReason::Eos, "{:?}", g.text);
    assert!(!g.text.contains("<|im_end|>"));
}

#[test]
fn cached_prefix_gives_the_same_tokens_as_a_fresh_cache() {
    let m = smollm2();
    let never = AtomicBool::new(false);
    let a = m.vocab.encode("Coffee is best brewed", m.vocab.add_bos(), true).unwrap();
    let mut cache = m.new_cache();
    let first = generate(&m, &mut cache, &a, &greedy(8), &never, |_| {}).unwrap();
    // A longer prompt sharing the prefix reuses the cache ...
    let b = m.vocab.encode("Coffee is best brewed with water at", m.vocab.add_bos(), true).unwrap();
    let reused = generate(&m, &mut cache, &b, &greedy(12), &never, |_| {}).unwrap();
    assert!(reused.prefilled_tokens < b.len(), "nothing was reused");
    // ... and produces what a fresh cache produces.
    let fresh = generate(&m, &mut m.new_cache(), &b, &greedy(12), &never, |_| {}).unwrap();
    assert_eq!(reused.tokens, fresh.tokens);
    assert!(!first.tokens.is_empty());
}
