//! The `residency` binary end to end, on the default model (SmolLM2 fixture).

use std::process::{Command, Output};

use fixtures::Fixture;

fn residency(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residency")).args(args).output().expect("the residency binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn smollm2() -> String {
    fixtures::path(Fixture::SmolLm2).display().to_string()
}

#[test]
fn generate_names_paris() {
    let m = smollm2();
    let o = residency(&["generate", "--model", &m, "--prompt", "The capital of France is", "--max-tokens", "8", "--temperature", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("Paris"), "{}", stdout(&o));
}

#[test]
fn greedy_generation_is_deterministic_and_seeded_sampling_repeats() {
    let m = smollm2();
    let run = |extra: &[&str]| {
        let mut args = vec!["generate", "--model", &m, "--prompt", "Once upon a time", "--max-tokens", "16"];
        args.extend_from_slice(extra);
        let o = residency(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
    };
    assert_eq!(run(&["--temperature", "0"]), run(&["--temperature", "0"]));
    let a = run(&["--temperature", "1.0", "--seed", "3"]);
    assert_eq!(a, run(&["--temperature", "1.0", "--seed", "3"]));
    assert!(!a.trim().is_empty());
}

/// `chat` renders SmolLM2's own template; llama.cpp, given the same conversation
/// written out (tests/data/llamacpp/smollm2/greedy.json, prompt "chat"), replies
/// with exactly this text.
#[test]
fn chat_message_replies_like_llama_cpp() {
    let m = smollm2();
    let refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures::test_data("llamacpp/smollm2/greedy.json")).unwrap()).unwrap();
    let chat = refs["prompts"].as_array().unwrap().iter().find(|p| p["name"] == "chat").unwrap();
    assert!(chat["text"].as_str().unwrap().contains("You are a helpful assistant.<|im_end|>"));
    let o = residency(&[
        "chat", "--model", &m, "--system", "You are a helpful assistant.", "--message", "What is the capital of France?",
        "--temperature", "0", "--max-tokens", "24",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reply = stdout(&o);
    assert_eq!(reply.trim(), chat["generated_text"].as_str().unwrap().trim());
    // The template's control tokens never leak into the reply.
    assert!(!reply.contains("<|im_start|>") && !reply.contains("<|im_end|>"), "{reply}");
}

#[test]
fn info_json_describes_the_model() {
    let m = smollm2();
    let o = residency(&["info", "--model", &m, "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["arch"], "llama");
    assert_eq!(v["config"]["layers"], 30);
    assert_eq!(v["config"]["hidden"], 576);
    assert_eq!(v["chat_template_is_fallback"], false);
}

#[test]
fn a_text_file_is_refused_in_one_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("notes.gguf");
    std::fs::write(&p, "not a model at all\n").unwrap();
    let o = residency(&["generate", "--model", p.to_str().unwrap(), "--prompt", "hi"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error:") && err.contains("notes.gguf") && err.contains("not a model"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_sampling_settings_are_explained() {
    let m = smollm2();
    let o = residency(&["generate", "--model", &m, "--prompt", "hi", "--top-p", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("top-p"));
}
