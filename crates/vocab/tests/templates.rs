//! Chat templates of the real fixtures, rendered and compared with strings written by hand
//! from each template's semantics (system + user + assistant + user, with and without the
//! generation prompt), plus the BOS bookkeeping of `render_for_model`.

use fixtures::Fixture;
use vocab::{ChatTemplate, Message, Vocab};

fn convo() -> Vec<Message> {
    vec![
        Message::system("Be brief."),
        Message::user("Hi!"),
        Message::assistant("Hello."),
        Message::user("  What is 2+2?  "),
    ]
}

/// The ChatML text SmolLM2's and Qwen's templates produce for [`convo`].
const CHATML_CONVO: &str = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n  What is 2+2?  <|im_end|>\n";

fn gguf(f: Fixture) -> candle_core::quantized::gguf_file::Content {
    let mut file = std::io::BufReader::new(std::fs::File::open(fixtures::path(f)).unwrap());
    candle_core::quantized::gguf_file::Content::read(&mut file).unwrap()
}

#[test]
fn smollm2_gguf_template() {
    let c = gguf(Fixture::SmolLm2);
    let t = ChatTemplate::from_gguf(&c).unwrap();
    assert!(!t.is_fallback());
    assert_eq!(t.name(), "tokenizer.chat_template");
    assert_eq!(t.render(&convo(), true).unwrap(), format!("{CHATML_CONVO}<|im_start|>assistant\n"));
    assert_eq!(t.render(&convo(), false).unwrap(), CHATML_CONVO);
    // Without a system message the template supplies its own.
    assert_eq!(
        t.render(&[Message::user("Hi!")], true).unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    );

    // SmolLM2 adds no BOS; the prompt's first token is <|im_start|> (id 1), parsed as special.
    let v = Vocab::from_gguf(&c).unwrap();
    let p = t.render_for_model(&v, &convo(), true).unwrap();
    assert!(!p.add_bos);
    let ids = p.encode(&v).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 5, "five <|im_start|> markers");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 4, "four <|im_end|> markers");
}

#[test]
fn qwen25_gguf_template() {
    let c = gguf(Fixture::QwenCoder);
    let t = ChatTemplate::from_gguf(&c).unwrap();
    assert!(!t.is_fallback());
    assert_eq!(t.render(&convo(), true).unwrap(), format!("{CHATML_CONVO}<|im_start|>assistant\n"));
    assert_eq!(t.render(&convo(), false).unwrap(), CHATML_CONVO);
    assert_eq!(
        t.render(&[Message::user("Hi!")], true).unwrap(),
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    );
    let v = Vocab::from_gguf(&c).unwrap();
    let p = t.render_for_model(&v, &convo(), true).unwrap();
    assert!(!p.add_bos);
    let ids = p.encode(&v).unwrap();
    assert_eq!(ids[0], 151644, "<|im_start|>");
    assert!(v.is_eos(151645), "<|im_end|> ends a reply");
}

#[test]
fn llama3_tokenizer_config_template() {
    let dir = fixtures::path(Fixture::Llama3Tokenizer);
    let t = ChatTemplate::from_hf_dir(&dir).unwrap();
    assert!(!t.is_fallback());
    assert_eq!(t.bos_token(), "<|begin_of_text|>");
    // This template trims contents, writes BOS itself and always opens the assistant turn.
    let want = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>\
<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>\
<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>\
<|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(t.render(&convo(), true).unwrap(), want);

    let v = Vocab::from_hf_dir(&dir).unwrap();
    let p = t.render_for_model(&v, &convo(), true).unwrap();
    assert!(!p.add_bos, "the template already wrote BOS");
    let ids = p.encode(&v).unwrap();
    assert_eq!(ids[0], 128000);
    assert_eq!(ids.iter().filter(|&&i| i == 128000).count(), 1, "exactly one BOS");
    assert_eq!(ids.iter().filter(|&&i| i == 128009).count(), 4, "four <|eot_id|>");
}

#[test]
fn qwen3_tokenizer_config_template() {
    let dir = fixtures::path(Fixture::Qwen3Tokenizer);
    let t = ChatTemplate::from_hf_dir(&dir).unwrap();
    assert!(!t.is_fallback());
    assert_eq!(t.render(&convo(), true).unwrap(), format!("{CHATML_CONVO}<|im_start|>assistant\n"));
    assert_eq!(t.render(&convo(), false).unwrap(), CHATML_CONVO);

    // Reasoning of turns before the last user query is dropped; the last turn keeps it.
    let msgs = vec![
        Message::user("Q1"),
        Message::assistant("<think>\nfirst thoughts\n</think>\n\nA1"),
        Message::user("Q2"),
        Message::assistant("<think>\nsecond\n</think>\n\nA2"),
    ];
    assert_eq!(
        t.render(&msgs, false).unwrap(),
        "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n\
<|im_start|>assistant\n<think>\nsecond\n</think>\n\nA2<|im_end|>\n"
    );
}

#[test]
fn gemma3_base_has_no_template_and_gets_the_gemma_fallback() {
    let c = gguf(Fixture::Gemma3);
    assert!(!c.metadata.contains_key("tokenizer.chat_template"), "Gemma 3 270M base ships no template");
    let t = ChatTemplate::from_gguf(&c).unwrap();
    assert!(t.is_fallback());
    assert_eq!(t.name(), "gemma");
    assert_eq!(t.fallback_notice().unwrap(), "This model has no chat template; using Gemma's turn format.");
    let want = "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n";
    assert_eq!(t.render(&convo(), true).unwrap(), want);

    // Gemma wants BOS, but the fallback writes it: exactly one BOS (id 2) in the tokens.
    let v = Vocab::from_gguf(&c).unwrap();
    assert!(v.add_bos());
    let p = t.render_for_model(&v, &convo(), true).unwrap();
    assert!(!p.add_bos);
    let ids = p.encode(&v).unwrap();
    assert_eq!(&ids[..2], &[2, 105], "<bos><start_of_turn>");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 1);
    assert!(v.is_eos(106), "<end_of_turn> ends a reply");
}

#[test]
fn chatml_fallback_on_a_model_that_has_a_template_is_still_available() {
    let t = ChatTemplate::fallback("chatml").unwrap();
    let c = gguf(Fixture::SmolLm2);
    let v = Vocab::from_gguf(&c).unwrap();
    let p = t.render_for_model(&v, &convo(), true).unwrap();
    assert_eq!(p.text, format!("{CHATML_CONVO}<|im_start|>assistant\n"));
}
