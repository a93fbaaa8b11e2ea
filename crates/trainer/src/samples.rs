//! Sample replies: short greedy answers to a few held-out prompts, generated at
//! evaluation time so that a person sees what the numbers mean ("it now signs
//! with Stay toasty"). Greedy decoding draws no random numbers and the adapters
//! are only read, so sampling never changes how the run trains.

use std::sync::atomic::AtomicBool;

use engine::{generate, GenerateOptions, Model, SamplingParams};
use vocab::Message;

use crate::config::SamplePrompt;
use crate::error::{Result, TrainError};
use crate::progress::{Sample, SampleSet};

/// The replies of `model` (with its current adapters) to `prompts`, at `step`.
pub fn replies(model: &Model, prompts: &[SamplePrompt], max_tokens: usize, step: usize) -> Result<SampleSet> {
    let opts = GenerateOptions { max_tokens, sampling: SamplingParams::greedy(), stop: Vec::new(), stop_at_eos: true };
    let never = AtomicBool::new(false);
    let mut samples = Vec::with_capacity(prompts.len());
    for p in prompts {
        let mut turns = Vec::new();
        if let Some(s) = p.system.as_deref().filter(|s| !s.trim().is_empty()) {
            turns.push(Message::new("system", s.to_string()));
        }
        turns.push(Message::new("user", p.user.clone()));
        let ids = model
            .template
            .render_for_model(&model.vocab, &turns, true)
            .and_then(|r| r.encode(&model.vocab))
            .map_err(|e| TrainError::Data(format!("a sample prompt cannot be written with the model's chat template: {e}")))?;
        let mut cache = model.new_cache();
        let g = generate(model, &mut cache, &ids, &opts, &never, |_| {})?;
        samples.push(Sample { prompt: p.user.clone(), reply: g.text.trim().to_string() });
    }
    Ok(SampleSet { step, samples })
}
