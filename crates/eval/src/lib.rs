//! Proving the behaviour a fine-tune is for, with measurements instead of claims.
//!
//! - [`adherence`]: an offline persona adherence score (n-gram logistic regression calibrated
//!   to 0–100) and the persona's rules checked one by one.
//! - [`drift`]: a scripted conversation of N turns played against a model, every reply scored,
//!   with the prompt tokens and prefill time each turn costs (the "token tax").
//! - [`sql`]: a guard that parses generated SQL and refuses anything but a read-only query,
//!   extraction of SQL from a reply, and execution accuracy on a SQLite database opened
//!   read-only (result sets compared as multisets).
//! - [`holdout`]: loss and perplexity of base, base + persona prompt and adapter on the
//!   held-out records (assistant tokens only, as in training), and replies side by side.
//! - [`report`]: a self-contained HTML report (inline SVG chart, tables).
//!
//! Supporting files: `features.rs` (text to hashed n-gram vectors), `generic.rs` (built-in
//! generic replies, the scorer's default negatives), `chat.rs` (one chat turn through the
//! engine), `error.rs`.

pub mod adherence;
pub mod chat;
pub mod drift;
pub mod error;
pub mod features;
pub mod generic;
pub mod holdout;
pub mod report;
pub mod sql;

pub use adherence::{auc, persona_replies, Adherence, AdherenceScorer, RuleChecks, TrainOptions, TrainReport};
pub use drift::{read_script, run_drift, script_lines, DriftOptions, DriftRun, DriftTurn, DEFAULT_SCRIPT};
pub use error::{EvalError, Result};
pub use generic::generic_replies;
pub use report::Report;
pub use sql::{evaluate_sql, guard, Dialect, SqlEvaluation, SqlOptions, SqlPair, Verdict};

/// A path inside the repository's `demo/` folder (tests).
#[cfg(test)]
pub(crate) fn demo_path(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo").join(rel)
}
