//! Presets: a few named starting points a person picks as a card, each a full set
//! of [`Settings`] that the advanced panel can then change.

use std::path::PathBuf;

use engine::BaseQuant;
use serde::{Deserialize, Serialize};
use trainer::{Length, TrainConfig};

use crate::error::{Result, RunError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Preset {
    /// Sound like the person: tone, greetings, sign-offs, what they never say.
    PersonaAndStyle,
    /// Answer questions about the person's products and procedures.
    DomainExpert,
    /// Turn questions into SQL for the person's database schema.
    TextToSql,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::PersonaAndStyle, Preset::DomainExpert, Preset::TextToSql];

    /// Where the persona goes in the training records: baked into the weights for a
    /// persona (no system prompt), as the system turn otherwise.
    pub fn persona_mode(self) -> dataset::PersonaMode {
        match self {
            Preset::PersonaAndStyle => dataset::PersonaMode::Bake,
            Preset::DomainExpert | Preset::TextToSql => dataset::PersonaMode::System,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::PersonaAndStyle => "Persona and style",
            Preset::DomainExpert => "Domain expert",
            Preset::TextToSql => "Text-to-SQL",
        }
    }

    /// The preset's settings, with the reason for each choice.
    pub fn settings(self) -> Settings {
        match self {
            // Style lives in many short replies: a moderate rank is enough. The persona
            // is baked in (records carry no system prompt), so the adapter speaks in the
            // voice without one, as the Chat screen's "your model" side asks it to, and
            // records stay short: 384 tokens hold the demo's replies. A tiny model needs a
            // high learning rate to pick up a voice in two epochs (the demo persona on
            // SmolLM2-135M: holdout loss 4.16 -> 2.32 in 100 steps of 4 at 2e-3, docs/reports).
            Preset::PersonaAndStyle => Settings {
                rank: 16,
                alpha: 32.0,
                lr: 1e-3,
                epochs: 2.0,
                steps: None,
                seq_len: 384,
                batch: 4,
                grad_accum: 2,
                quant: "nf4".into(),
                seed: 42,
                eval_every: 20,
                samples: 3,
            },
            // Facts need more capacity than tone (rank 32) and a gentler learning
            // rate so general ability is not forgotten; documents and long answers
            // need 1024 tokens (with the persona as the system prompt).
            Preset::DomainExpert => Settings {
                rank: 32,
                alpha: 64.0,
                lr: 1e-4,
                epochs: 3.0,
                steps: None,
                seq_len: 1024,
                batch: 1,
                grad_accum: 8,
                quant: "nf4".into(),
                seed: 42,
                eval_every: 25,
                samples: 3,
            },
            // The schema is part of every prompt and takes hundreds to thousands
            // of tokens, so the sequence is the longest, 2048; SQL is a narrow, regular output, so two
            // epochs at the usual rate suffice, and evaluating often catches
            // over-fitting early.
            Preset::TextToSql => Settings {
                rank: 16,
                alpha: 32.0,
                lr: 2e-4,
                epochs: 2.0,
                steps: None,
                seq_len: 2048,
                batch: 1,
                grad_accum: 8,
                quant: "nf4".into(),
                seed: 42,
                eval_every: 10,
                samples: 3,
            },
        }
    }
}

/// The advanced panel: everything a person may change about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub rank: usize,
    pub alpha: f64,
    pub lr: f64,
    /// Passes over the data (used when `steps` is not set).
    pub epochs: f64,
    /// A fixed number of optimizer steps instead of epochs.
    pub steps: Option<usize>,
    pub seq_len: usize,
    pub batch: usize,
    pub grad_accum: usize,
    /// How the frozen base is stored: nf4 (QLoRA), q8, gguf (the file's own), none (f32).
    pub quant: String,
    pub seed: u64,
    /// Evaluate on the held-out examples (and write sample replies) every N steps.
    pub eval_every: usize,
    /// Held-out prompts answered at each evaluation (0 to 5).
    pub samples: usize,
}

/// Checkpoints are written this often, so that a crash loses at most this many steps.
pub const CHECKPOINT_EVERY: usize = 10;
/// The longest sample reply, in tokens.
pub const SAMPLE_TOKENS: usize = 48;
pub const MAX_SAMPLES: usize = 5;

impl Settings {
    /// The trainer's configuration for `model`, training on `data` into `out`.
    /// Every value is checked here so that a wrong entry is refused before the
    /// run starts, with a message that names the field.
    pub fn to_config(&self, model: PathBuf, data: PathBuf, out: PathBuf) -> Result<TrainConfig> {
        let quant = BaseQuant::parse(&self.quant)
            .ok_or_else(|| RunError::Settings(format!("The base precision \"{}\" is not one of nf4, q8, gguf or none.", self.quant)))?;
        if self.samples > MAX_SAMPLES {
            return Err(RunError::Settings(format!("Ask for at most {MAX_SAMPLES} sample replies, not {}.", self.samples)));
        }
        let mut c = TrainConfig::new(model, data, out);
        c.rank = self.rank;
        c.alpha = self.alpha;
        c.lr = self.lr;
        c.length = match self.steps {
            Some(s) => Length::Steps(s),
            None => Length::Epochs(self.epochs),
        };
        c.seq_len = self.seq_len;
        c.batch = self.batch;
        c.grad_accum = self.grad_accum;
        c.quant = quant;
        c.seed = self.seed;
        c.eval_every = self.eval_every;
        c.checkpoint_every = CHECKPOINT_EVERY;
        c.sample_max_tokens = SAMPLE_TOKENS;
        // Short runs would spend all their steps warming up.
        c.warmup_steps = match self.steps {
            Some(s) => (s / 10).min(10),
            None => 10,
        };
        c.validate().map_err(|e| RunError::Settings(plain(&e.to_string())))?;
        Ok(c)
    }
}

/// The trainer's messages name CLI flags (`--steps`); the app has fields instead.
fn plain(msg: &str) -> String {
    let m = msg.trim_start_matches("invalid setting: ").replace("--steps", "steps").replace("--epochs", "epochs");
    let mut c = m.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str().trim_end_matches('.')),
        None => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &Settings) -> Result<TrainConfig> {
        s.to_config("m.gguf".into(), "d.jsonl".into(), "out".into())
    }

    #[test]
    fn every_preset_is_a_valid_run_and_sql_gets_the_longest_sequences() {
        for p in Preset::ALL {
            let c = cfg(&p.settings()).unwrap_or_else(|e| panic!("{}: {e}", p.label()));
            assert_eq!(c.checkpoint_every, CHECKPOINT_EVERY);
        }
        let persona = Preset::PersonaAndStyle.settings();
        let sql = Preset::TextToSql.settings();
        let expert = Preset::DomainExpert.settings();
        assert!(sql.seq_len > persona.seq_len, "the schema needs room");
        assert!(expert.rank > persona.rank && expert.lr < persona.lr);
        assert!(matches!(Preset::PersonaAndStyle.persona_mode(), dataset::PersonaMode::Bake), "a persona lives in the weights");
        assert!(matches!(Preset::TextToSql.persona_mode(), dataset::PersonaMode::System));
    }

    #[test]
    fn settings_map_onto_the_trainer_config() {
        let mut s = Preset::PersonaAndStyle.settings();
        s.steps = Some(5);
        s.quant = "q8".into();
        s.seq_len = 64;
        s.rank = 4;
        let c = cfg(&s).unwrap();
        assert_eq!(c.length, Length::Steps(5));
        assert_eq!(c.quant, BaseQuant::Q8);
        assert_eq!((c.seq_len, c.rank), (64, 4));
        assert_eq!(c.warmup_steps, 0);
        s.steps = None;
        s.epochs = 1.5;
        assert_eq!(cfg(&s).unwrap().length, Length::Epochs(1.5));
    }

    #[test]
    fn wrong_values_are_refused_with_the_field_named() {
        let base = Preset::DomainExpert.settings();
        let err = |f: &dyn Fn(&mut Settings)| {
            let mut s = base.clone();
            f(&mut s);
            cfg(&s).unwrap_err().to_string()
        };
        assert!(err(&|s| s.quant = "int3".into()).contains("nf4, q8, gguf or none"));
        assert!(err(&|s| s.lr = 0.0).starts_with("The learning rate"));
        assert!(err(&|s| s.steps = Some(0)).contains("Steps must be at least 1"));
        assert!(!err(&|s| s.steps = Some(0)).contains("--"));
        assert!(err(&|s| s.seq_len = 4).contains("sequence length"));
        assert!(err(&|s| s.samples = 9).contains("at most 5"));
        assert!(err(&|s| s.rank = 0).contains("rank"));
    }
}
