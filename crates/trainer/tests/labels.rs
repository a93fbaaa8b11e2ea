//! Loss goes on the assistant's words and the end-of-turn marker only, never on the
//! template's scaffolding (system turns, role headers), for the shapes records come in.

use trainer::data::{tokenize, IGNORE};
use vocab::Message;

fn msg(role: &str, content: &str) -> Message {
    Message { role: role.into(), content: content.into() }
}

/// The text of the trained tokens, special tokens written out.
fn trained_text(messages: &[Message]) -> String {
    let model = engine::Model::load(&fixtures::path(fixtures::Fixture::SmolLm2), &engine::Device::Cpu).unwrap();
    let ex = tokenize(messages, &model.vocab, &model.template).unwrap();
    let ids: Vec<u32> = ex.labels.iter().filter(|l| **l != IGNORE).map(|l| *l as u32).collect();
    model.vocab.decode_with_special(&ids).unwrap()
}

#[test]
fn a_reply_to_a_question_trains_on_the_reply_and_its_end_marker() {
    let t = trained_text(&[msg("user", "Do you have decaf?"), msg("assistant", "Hi friend, Sleepy Fox is our decaf.")]);
    assert!(t.starts_with("Hi friend, Sleepy Fox is our decaf.<|im_end|>"), "{t:?}");
    assert!(!t.contains("decaf?") && !t.contains("user") && !t.contains("system"), "{t:?}");
}

#[test]
fn a_reply_with_nothing_before_it_does_not_train_on_the_default_system_turn() {
    // SmolLM2's template adds "You are a helpful AI assistant named SmolLM…" as a system
    // turn when the conversation does not start with one.
    let t = trained_text(&[msg("assistant", "Roast days are Tuesday and Friday.")]);
    assert!(t.starts_with("Roast days are Tuesday and Friday.<|im_end|>"), "{t:?}");
    assert!(!t.contains("SmolLM") && !t.contains("<|im_start|>"), "{t:?}");
}

#[test]
fn every_assistant_turn_of_a_conversation_is_trained_and_nothing_else() {
    let t = trained_text(&[
        msg("system", "You are Maggie."),
        msg("user", "Hi"),
        msg("assistant", "Hi friend!"),
        msg("user", "Decaf?"),
        msg("assistant", "Sleepy Fox."),
    ]);
    assert!(t.starts_with("Hi friend!<|im_end|>"), "{t:?}");
    assert!(t.contains("Sleepy Fox.<|im_end|>"), "{t:?}");
    assert!(!t.contains("Maggie") && !t.contains("Decaf?") && !t.contains("<|im_start|>"), "{t:?}");
}
