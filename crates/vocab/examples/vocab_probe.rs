//! Shows what the vocab crate makes of a model: tokenizer kind, special ids, chat template,
//! the ids of a text, and the tokenizer's speed on that text.
//!
//! `cargo run -p vocab --example vocab_probe -- <model.gguf | hf-folder> [text]`

use std::path::Path;
use std::time::Instant;

use vocab::{ChatTemplate, Message, Vocab};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(model) = args.next() else {
        eprintln!("usage: vocab_probe <model.gguf | hf-folder> [text]");
        std::process::exit(2);
    };
    let text = args.next().unwrap_or_else(|| "Hello world! <|im_start|>user\nCafé 😀 12345".to_string());
    let path = Path::new(&model);

    let t0 = Instant::now();
    let (vocab, template) = if path.is_dir() {
        (Vocab::from_hf_dir(path)?, ChatTemplate::from_hf_dir(path)?)
    } else {
        let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
        let content = candle_core::quantized::gguf_file::Content::read(&mut f)?;
        (Vocab::from_gguf(&content)?, ChatTemplate::from_gguf(&content)?)
    };
    println!("loaded in {:.3}s: {vocab:?}", t0.elapsed().as_secs_f64());
    println!("template: {} (fallback: {})", template.name(), template.is_fallback());
    if let Some(notice) = template.fallback_notice() {
        println!("  {notice}");
    }

    for parse_special in [false, true] {
        let ids = vocab.encode(&text, false, parse_special)?;
        println!("parse_special={parse_special}: {ids:?}");
        let shown: Vec<&str> = ids.iter().map(|&i| vocab.token_str(i).unwrap_or("?")).collect();
        println!("  pieces: {shown:?}");
    }

    let prompt = template.render_for_model(&vocab, &[Message::user(text.clone())], true)?;
    println!("prompt (add_bos={}): {:?}", prompt.add_bos, prompt.text);

    // Speed on a long text made of the input repeated.
    let long = text.repeat((200_000 / text.len().max(1)).max(1));
    let t1 = Instant::now();
    let ids = vocab.encode(&long, false, false)?;
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "encode: {} bytes -> {} tokens in {secs:.3}s ({:.0} tokens/s)",
        long.len(),
        ids.len(),
        ids.len() as f64 / secs
    );
    Ok(())
}
