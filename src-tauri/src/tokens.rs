//! Token counts under the project's model: its own tokenizer and chat template, so the Data
//! screen's lengths are the ones training will see. Without a model, the dataset crate's labelled
//! estimate is used.

use std::path::Path;
use std::sync::Arc;

use dataset::{Message, Role, TokenCounter};

/// The token counter of the model at `model` (a GGUF file or a Hugging Face folder).
pub fn counter_for(model: &Path) -> Result<Arc<dyn TokenCounter>, String> {
    let shown = model.display();
    let (vocab, template) = if model.is_dir() {
        let v = vocab::Vocab::from_hf_dir(model).map_err(|e| format!("The tokenizer in {shown} cannot be read: {e}"))?;
        let t = vocab::ChatTemplate::from_hf_dir(model)
            .or_else(|_| vocab::ChatTemplate::fallback("chatml"))
            .map_err(|e| format!("No chat template could be set up for {shown}: {e}"))?;
        (v, t)
    } else {
        let mut f = std::fs::File::open(model).map_err(|e| format!("The model {shown} cannot be opened: {e}. Was it moved?"))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut f)
            .map_err(|e| format!("{shown} is not a GGUF model file ({e}); choose the model again on the Model screen."))?;
        let v = vocab::Vocab::from_gguf(&content).map_err(|e| format!("The tokenizer in {shown} cannot be read: {e}"))?;
        let t = vocab::ChatTemplate::from_gguf(&content)
            .or_else(|_| vocab::ChatTemplate::fallback("chatml"))
            .map_err(|e| format!("No chat template could be set up for {shown}: {e}"))?;
        (v, t)
    };
    let file = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| shown.to_string());
    // A template stored in the model file is named after its metadata key: say so plainly.
    let name = if template.name().contains("chat_template") {
        format!("the {file} tokenizer and chat template")
    } else {
        format!("the {file} tokenizer with the {} chat template", template.name())
    };
    let count = move |msgs: &[Message]| -> usize {
        let turns: Vec<vocab::Message> = msgs
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                vocab::Message::new(role, m.content.clone())
            })
            .collect();
        match template.render_for_model(&vocab, &turns, false).and_then(|p| p.encode(&vocab)) {
            Ok(ids) => ids.len(),
            // A template that refuses a shape (a lone writing sample, say): the turns' own
            // tokens plus a few for the turn markers.
            Err(_) => msgs
                .iter()
                .map(|m| vocab.encode(&m.content, false, false).map(|ids| ids.len()).unwrap_or(m.content.len() / 4) + 4)
                .sum(),
        }
    };
    Ok(Arc::new(dataset::FnCounter { f: count, name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_counts_real_tokens_with_its_template() {
        let c = counter_for(&fixtures::path(fixtures::Fixture::SmolLm2)).unwrap();
        assert!(!c.is_estimate());
        assert!(c.describe().contains("SmolLM2"), "{}", c.describe());
        let short = c.count(&[Message::user("Hi"), Message::assistant("Hello!")]);
        let long = c.count(&[Message::user("Hi"), Message::assistant("Hello! ".repeat(50))]);
        // ChatML wraps each turn in <|im_start|>role ... <|im_end|>, and SmolLM2's template adds
        // its default system prompt when there is none (measured: 35 tokens for these two words).
        assert!((10..60).contains(&short), "{short}");
        // 50 more "Hello! ": two tokens each ("Hello", "!"), give or take the spaces.
        assert!((short + 50..=short + 150).contains(&long), "{long} vs {short}");
    }

    #[test]
    fn a_file_that_is_not_a_model_is_an_error_with_the_way_out() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("notes.gguf");
        std::fs::write(&f, "just text").unwrap();
        let e = counter_for(&f).err().unwrap();
        assert!(e.contains("is not a GGUF model file") && e.contains("Model screen"), "{e}");
        let e = counter_for(&d.path().join("gone.gguf")).err().unwrap();
        assert!(e.contains("cannot be opened"), "{e}");
    }
}
