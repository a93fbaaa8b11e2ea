//! The chat on a real model (the SmolLM2 fixture): streaming, stop, both sides' token tax,
//! adherence, saving and reopening, a bad adapter folder, a failed reply that keeps the message.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use chat::{ChatError, ChatSession, Ending, Settings, Setup, Side};
use engine::adapter::{attach_new, save, AdapterConfig};
use engine::{Device, Model};
use rand::{rngs::StdRng, SeedableRng};

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/coffee-roaster")
}

fn setup(conversations: &Path, adapter: Option<PathBuf>) -> Setup {
    Setup {
        model: fixtures::path(fixtures::Fixture::SmolLm2),
        adapter,
        persona: Some(dataset::Persona::load(&demo().join("persona.toml")).unwrap()),
        examples: vec![demo()],
        conversations: conversations.to_path_buf(),
    }
}

/// A small adapter for SmolLM2 with random (non-zero) matrices, written in PEFT's format.
fn make_adapter(dir: &Path) {
    let mut model = Model::load(&fixtures::path(fixtures::Fixture::SmolLm2), &Device::Cpu).unwrap();
    let lora = qlora::LoraConfig { rank: 4, alpha: 8.0, dropout: 0.0, rslora: false };
    let targets = vec!["q_proj".to_string(), "v_proj".to_string()];
    attach_new(&mut model, &lora, &targets, &mut StdRng::seed_from_u64(7)).unwrap();
    save(&model, dir, &AdapterConfig::new(&lora, &targets, "SmolLM2-135M-Instruct")).unwrap();
}

/// Equal up to the last bit of the float fields (JSON keeps about 16 digits).
fn same_conversation(a: &chat::Conversation, b: &chat::Conversation) {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1.0);
    assert_eq!((&a.id, &a.title, &a.settings, &a.system_prompt, a.turns.len()), (&b.id, &b.title, &b.settings, &b.system_prompt, b.turns.len()));
    for (ta, tb) in a.turns.iter().zip(&b.turns) {
        assert_eq!((&ta.user, &ta.error, ta.replies.len()), (&tb.user, &tb.error, tb.replies.len()));
        for (ra, rb) in ta.replies.iter().zip(&tb.replies) {
            assert_eq!((ra.side, &ra.text, ra.ending, ra.prompt_tokens, ra.prefilled_tokens, ra.generated_tokens), (rb.side, &rb.text, rb.ending, rb.prompt_tokens, rb.prefilled_tokens, rb.generated_tokens));
            assert!(close(ra.prefill_secs, rb.prefill_secs) && close(ra.tokens_per_sec, rb.tokens_per_sec));
            let (sa, sb) = (ra.adherence.as_ref().unwrap(), rb.adherence.as_ref().unwrap());
            assert!(close(sa.score, sb.score) && sa.rules_passed == sb.rules_passed);
        }
    }
}

fn greedy(max_tokens: usize, side_by_side: bool) -> Settings {
    Settings { temperature: 0.0, max_tokens, side_by_side, ..Default::default() }
}

#[test]
fn both_sides_stream_their_replies_with_token_counts_and_scores_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let adapter = tmp.path().join("adapter");
    make_adapter(&adapter);
    let chats = tmp.path().join("chats");
    let mut s = ChatSession::open(&setup(&chats, Some(adapter.clone()))).unwrap();
    assert_eq!(s.sides(), [Side::Adapter]);
    s.set_settings(greedy(24, true)).unwrap();
    assert_eq!(s.sides(), [Side::Adapter, Side::Prompted]);
    let view = s.view().unwrap();
    assert!(view.voice.ready, "{}", view.voice.note);
    assert!(view.system_prompt_tokens > 20, "{}", view.system_prompt_tokens);

    let stop = AtomicBool::new(false);
    let mut streamed: Vec<(Side, String)> = Vec::new();
    let turn = s.send("Hi! What coffee would you recommend for a French press?", &stop, |side, piece| streamed.push((side, piece.to_string()))).unwrap();
    assert_eq!(turn.replies.len(), 2);
    for r in &turn.replies {
        let text: String = streamed.iter().filter(|(side, _)| *side == r.side).map(|(_, p)| p.as_str()).collect();
        assert_eq!(text, r.text, "{:?}: the streamed pieces make the final reply", r.side);
        assert!(streamed.iter().filter(|(side, _)| *side == r.side).count() > 1, "the reply came in more than one piece");
        assert!(r.generated_tokens > 0 && r.generated_tokens <= 24);
        assert_eq!(r.prefilled_tokens, r.prompt_tokens, "the first reply computes its whole prompt");
        assert!(r.prefill_secs > 0.0 && r.tokens_per_sec > 0.0);
        let a = r.adherence.as_ref().expect("every reply is scored");
        assert!((0.0..=100.0).contains(&a.score) && a.rules_checked > 0);
    }
    // The streamed order: every adapter piece before the first prompted one.
    let first_prompted = streamed.iter().position(|(s, _)| *s == Side::Prompted).unwrap();
    assert!(streamed[first_prompted..].iter().all(|(s, _)| *s == Side::Prompted));
    let (a, p) = (turn.reply(Side::Adapter).unwrap(), turn.reply(Side::Prompted).unwrap());
    assert_eq!(a.adapter.as_deref(), Some(adapter.display().to_string().as_str()));
    assert!(
        p.prompt_tokens >= a.prompt_tokens + 20,
        "the persona prompt is paid for in every prompt: {} vs {}",
        p.prompt_tokens,
        a.prompt_tokens
    );

    // The second message reuses each side's cache: only the new part is computed.
    let turn2 = s.send("And how should I store the beans?", &stop, |_, _| {}).unwrap();
    for r in &turn2.replies {
        let first = turn.reply(r.side).unwrap();
        assert!(r.prompt_tokens > first.prompt_tokens + first.generated_tokens / 2, "{:?}: the history is in the prompt", r.side);
        assert!(r.prefilled_tokens < r.prompt_tokens / 2, "{:?}: {} of {} prefilled", r.side, r.prefilled_tokens, r.prompt_tokens);
    }
    let id = s.conversation().id.clone();
    let saved = s.conversation().clone();
    drop(s);

    // A restart: the conversation is reopened as it was, settings included.
    let s = ChatSession::open(&setup(&chats, Some(adapter))).unwrap();
    same_conversation(s.conversation(), &saved);
    assert_eq!(s.conversation().id, id);
    assert_eq!(s.conversation().settings, greedy(24, true));
    assert_eq!(s.list().unwrap().conversations.len(), 1);
}

#[test]
fn stop_keeps_the_partial_reply_marked_stopped_and_skips_the_other_side() {
    let tmp = tempfile::tempdir().unwrap();
    let adapter = tmp.path().join("adapter");
    make_adapter(&adapter);
    let mut s = ChatSession::open(&setup(&tmp.path().join("chats"), Some(adapter))).unwrap();
    s.set_settings(greedy(200, true)).unwrap();
    let stop = AtomicBool::new(true); // cleared by send: a stale stop must not end the new reply
    let mut pieces = 0;
    let mut text = String::new();
    let turn = s
        .send("Tell me everything about your coffee roasting, in detail.", &stop, |_, piece| {
            pieces += 1;
            text.push_str(piece);
            if pieces == 5 {
                stop.store(true, Ordering::SeqCst);
            }
        })
        .unwrap();
    assert_eq!(turn.replies.len(), 1, "the other side does not start after a stop");
    let r = &turn.replies[0];
    assert_eq!(r.side, Side::Adapter);
    assert_eq!(r.ending, Ending::Stopped);
    assert_eq!(r.text, text, "the partial reply is what was streamed");
    assert!(r.generated_tokens >= 5 && r.generated_tokens < 20, "{}", r.generated_tokens);
    // The stopped reply is kept in the saved conversation.
    let saved = chat::ConversationStore::new(&tmp.path().join("chats")).load(&s.conversation().id).unwrap();
    assert_eq!(saved.turns[0].replies[0].ending, Ending::Stopped);

    // Without an adapter, the base model with the persona prompt answers.
    s.new_conversation();
    s.configure(&setup(&tmp.path().join("chats"), None)).unwrap();
    assert_eq!(s.sides(), [Side::Prompted]);
    s.set_settings(greedy(8, true)).unwrap();
    let t = s.send("Hello", &stop, |_, _| {}).unwrap();
    assert_eq!(t.replies.len(), 1);
    assert_eq!(t.replies[0].side, Side::Prompted);
    assert_eq!(s.list().unwrap().conversations.len(), 2);
}

#[test]
fn a_bad_adapter_folder_says_what_to_choose_and_the_chat_goes_on_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    let missing = tmp.path().join("no-such-run");
    let e = ChatSession::open(&setup(&chats, Some(missing.clone()))).err().expect("a missing folder is refused");
    let msg = e.to_string();
    assert!(matches!(e, ChatError::Adapter { .. }), "{msg}");
    assert!(msg.contains(&missing.display().to_string()) && msg.contains("finished training run"), "{msg}");

    let not_adapter = tmp.path().join("notes");
    std::fs::create_dir(&not_adapter).unwrap();
    std::fs::write(not_adapter.join("adapter_config.json"), "{\"hello\": 1}").unwrap();
    let mut s = ChatSession::open(&setup(&chats, None)).unwrap();
    let msg = s.configure(&setup(&chats, Some(not_adapter))).unwrap_err().to_string();
    assert!(msg.contains("not a LoRA adapter configuration"), "{msg}");
    assert_eq!(s.adapter(), None);
    assert_eq!(s.sides(), [Side::Prompted], "the chat goes on with the base model");
}

#[test]
fn a_failed_reply_keeps_the_message_and_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    let mut s = ChatSession::open(&setup(&chats, None)).unwrap();
    let stop = AtomicBool::new(false);
    assert!(matches!(s.send("   ", &stop, |_, _| {}), Err(ChatError::EmptyMessage)));
    let long = "coffee ".repeat(9000);
    let e = s.send(&long, &stop, |_, _| {}).unwrap_err();
    assert!(matches!(e, ChatError::MessageTooLong { .. }), "{e}");
    let saved = chat::ConversationStore::new(&chats).load(&s.conversation().id).unwrap();
    assert_eq!(saved.turns.len(), 1);
    assert_eq!(saved.turns[0].user, long.trim());
    assert!(saved.turns[0].error.as_deref().unwrap().contains("Shorten it"));
    assert!(s.set_settings(Settings { top_p: 2.0, ..Default::default() }).is_err());
}
