//! From dragged-in folders to a clean training set.
//!
//! Readers (chosen by content) turn conversations, instructions, emails, documents, text-to-SQL
//! pairs and chat YAML into [`Record`]s; the quality checks report what is wrong with them, per
//! file and line, each finding with a severity and a suggested fix; the builder applies the fixes
//! the user accepts to the built dataset (never to their files), adds the persona and a replay
//! mix, and splits a grouped holdout set. A watcher keeps it all current as files change.
//!
//! ```no_run
//! use dataset::{inspect, Options, CharEstimate};
//! let report = inspect(&["my-folder".into()], &Options::default(), &CharEstimate);
//! println!("{}", report.to_text(20));
//! ```

pub mod build;
pub mod collect;
pub mod detect;
pub mod finding;
#[doc(hidden)]
pub mod fuzzing;
pub mod minhash;
pub mod options;
pub mod persona;
pub mod pii;
pub mod quality;
pub mod readers;
pub mod record;
pub mod replay;
pub mod report;
pub mod split;
pub mod text;
pub mod walk;
pub mod watch;

use std::path::PathBuf;

pub use build::{build, BuildError, BuildOptions, BuildSummary};
pub use finding::{Finding, Severity};
pub use options::{CharEstimate, ColumnMap, FnCounter, Options, TokenCounter};
pub use persona::{Persona, PersonaError, PersonaMode};
pub use quality::{Stats, Verdict};
pub use record::{Kind, Message, Record, Role, Source};
pub use report::{FileReport, Report};
pub use watch::{watch, Change, Snapshot, WatchEvent, Watcher};

/// Reads and checks everything under `paths` without keeping the records (bounded memory).
pub fn inspect(paths: &[PathBuf], opts: &Options, counter: &dyn TokenCounter) -> Report {
    collect::run(paths, opts, counter, None, &[], &mut |_, _, _| {}).report
}

/// Like [`inspect`] with a given persona (otherwise one found among the inputs is used).
pub fn inspect_with_persona(paths: &[PathBuf], opts: &Options, counter: &dyn TokenCounter, persona: Option<Persona>) -> Report {
    collect::run(paths, opts, counter, persona, &[], &mut |_, _, _| {}).report
}

/// Reads and checks everything under `paths`, keeping the records (in reading order).
pub fn collect(paths: &[PathBuf], opts: &Options, counter: &dyn TokenCounter) -> (Vec<Record>, Report) {
    let mut records = Vec::new();
    let scan = collect::run(paths, opts, counter, None, &[], &mut |_, r, _| records.push(r));
    (records, scan.report)
}
