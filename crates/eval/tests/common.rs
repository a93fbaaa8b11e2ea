//! Shared by the integration tests: the demo folders and a scorer trained on the demo persona.

#![allow(dead_code)]

use std::path::PathBuf;

use dataset::{CharEstimate, Options, Persona};
use eval::{generic_replies, persona_replies, AdherenceScorer, TrainOptions};

pub fn demo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo").join(rel)
}

pub fn maggie() -> Persona {
    Persona::load(&demo("coffee-roaster/persona.toml")).unwrap()
}

/// Maggie's replies, read by the dataset crate from the whole demo folder.
pub fn maggie_replies() -> Vec<String> {
    let (records, _) = dataset::collect(&[demo("coffee-roaster")], &Options::default(), &CharEstimate);
    persona_replies(&records)
}

pub fn scorer() -> AdherenceScorer {
    AdherenceScorer::train(&maggie_replies(), &generic_replies(), Some(&maggie()), &TrainOptions::default()).unwrap()
}
