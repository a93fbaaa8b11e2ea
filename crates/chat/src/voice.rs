//! The persona adherence score of every reply: `eval`'s n-gram scorer, trained once on the
//! project's example replies (the persona's voice) against generic assistant replies, and
//! trained again only when the persona or the examples change.

use std::path::PathBuf;

use dataset::{CharEstimate, Options, Persona};
use eval::{generic_replies, persona_replies, AdherenceScorer, TrainOptions};
use serde::Serialize;

use crate::conversation::Score;

/// What the Chat screen says about the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceStatus {
    pub ready: bool,
    /// How the score was learned, or why there is none and what to do.
    pub note: String,
}

pub struct Voice {
    persona: Option<Persona>,
    examples: Vec<PathBuf>,
    scorer: Result<AdherenceScorer, String>,
}

impl Voice {
    /// Learns the voice from the replies in `examples` (folders and files of conversations).
    pub fn learn(persona: Option<&Persona>, examples: &[PathBuf]) -> Voice {
        let scorer = if examples.is_empty() {
            Err("Add example conversations on the Data screen to score how well each reply keeps the persona's voice.".to_string())
        } else {
            let (records, _) = dataset::collect(examples, &Options::default(), &CharEstimate);
            AdherenceScorer::train(&persona_replies(&records), &generic_replies(), persona, &TrainOptions::default())
                .map_err(|e| format!("Replies are not scored: {e}"))
        };
        Voice { persona: persona.cloned(), examples: examples.to_vec(), scorer }
    }

    /// Whether this voice was learned from `persona` and `examples`.
    pub fn learned_from(&self, persona: Option<&Persona>, examples: &[PathBuf]) -> bool {
        self.persona.as_ref() == persona && self.examples == examples
    }

    pub fn score(&self, reply: &str) -> Option<Score> {
        let s = self.scorer.as_ref().ok()?;
        if reply.trim().is_empty() {
            return None;
        }
        let a = s.score(reply.trim());
        let (rules_passed, rules_checked) = a.rules.as_ref().map(|r| r.tally()).unwrap_or((0, 0));
        Some(Score { score: a.score, rules_passed, rules_checked })
    }

    pub fn status(&self) -> VoiceStatus {
        match &self.scorer {
            Ok(s) => {
                let t = s.report();
                VoiceStatus {
                    ready: true,
                    note: format!(
                        "Adherence 0–100: how much a reply reads like your examples, learned from {} of their replies against {} generic ones (separation on held-out replies, AUC {:.2}).",
                        t.positives_fit + t.positives_calibration,
                        t.negatives_fit + t.negatives_calibration,
                        t.calibration_auc
                    ),
                }
            }
            Err(why) => VoiceStatus { ready: false, note: why.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo").join(rel)
    }

    #[test]
    fn the_demo_persona_voice_scores_its_own_style_above_a_generic_reply() {
        let folder = demo("coffee-roaster");
        let persona = Persona::load(&folder.join("persona.toml")).unwrap();
        let v = Voice::learn(Some(&persona), std::slice::from_ref(&folder));
        assert!(v.status().ready, "{}", v.status().note);
        assert!(v.learned_from(Some(&persona), std::slice::from_ref(&folder)));
        assert!(!v.learned_from(None, std::slice::from_ref(&folder)));
        let generic = v.score("Thank you for contacting us. Our team will review your request and get back to you within 3-5 business days.").unwrap();
        let own = v.score(eval::persona_replies(&dataset::collect(&[folder], &Options::default(), &CharEstimate).0)[0].as_str()).unwrap();
        assert!(own.score > generic.score, "own {} generic {}", own.score, generic.score);
        assert!(own.rules_checked > 0);
        assert_eq!(v.score("   "), None, "an empty reply is not scored");
    }

    #[test]
    fn without_examples_the_status_says_what_to_do() {
        let v = Voice::learn(None, &[]);
        assert!(!v.status().ready);
        assert!(v.status().note.contains("Data screen"));
        assert_eq!(v.score("hello"), None);
        let dir = tempfile::tempdir().unwrap();
        let v = Voice::learn(None, &[dir.path().to_path_buf()]);
        assert!(v.status().note.contains("too few examples"), "{}", v.status().note);
    }
}
