//! The inspection report: per-file summaries, findings with lines, dataset numbers; rendered for
//! a terminal or serialised whole as JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::quality::Stats;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileReport {
    pub path: String,
    /// What the file was read as (`json-lines`, `csv`, `mbox`, `skipped`…).
    pub format: String,
    pub bytes: u64,
    pub records: usize,
    /// Why the file was not read, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// What counted the tokens.
    pub tokenizer: String,
    /// True when token counts are an estimate, not the model's tokenizer.
    pub tokens_estimated: bool,
    pub seq_len: usize,
    /// The persona used for the checks (given, or found among the inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    pub files: Vec<FileReport>,
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

impl Report {
    pub fn count(&self, sev: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == sev).count()
    }

    /// Findings with a given code.
    pub fn with_code<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.code == code)
    }

    /// Human-readable report, grouped per file; at most `per_code` findings of one kind per file
    /// are listed (the JSON report has them all).
    pub fn to_text(&self, per_code: usize) -> String {
        let mut s = String::new();
        let read = self.files.iter().filter(|f| f.skipped.is_none()).count();
        let _ = writeln!(s, "{} file(s): {} read, {} skipped. {} record(s).", self.files.len(), read, self.files.len() - read, self.stats.records);
        if !self.stats.by_kind.is_empty() {
            let kinds: Vec<String> = self.stats.by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let _ = writeln!(s, "Records by kind: {}.", kinds.join(", "));
        }
        let t = &self.stats.tokens;
        let _ = writeln!(
            s,
            "Tokens per record{}: min {}, median {}, 95th percentile {}, max {}; {} over the sequence length of {}.",
            if self.tokens_estimated { " (ESTIMATED, no tokenizer given)" } else { "" },
            t.min, t.p50, t.p95, t.max, self.stats.too_long, self.seq_len
        );
        let _ = writeln!(s, "Counted with: {}.", self.tokenizer);
        if let Some(p) = &self.persona {
            let _ = writeln!(s, "Persona: {p}.");
        }
        let _ = writeln!(s, "Findings: {} error(s), {} warning(s), {} note(s).", self.count(Severity::Error), self.count(Severity::Warning), self.count(Severity::Info));

        let mut by_file: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        let mut global = Vec::new();
        for f in &self.findings {
            match &f.file {
                Some(p) => by_file.entry(p.as_str()).or_default().push(f),
                None => global.push(f),
            }
        }
        let known: std::collections::HashSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        for file in &self.files {
            let fs = by_file.remove(file.path.as_str()).unwrap_or_default();
            let head = match &file.skipped {
                Some(why) => format!("{}: skipped, {why}", file.path),
                None => format!("{} ({}, {} record{})", file.path, file.format, file.records, if file.records == 1 { "" } else { "s" }),
            };
            let _ = writeln!(s, "\n{head}");
            write_findings(&mut s, &fs, per_code);
        }
        for (file, fs) in by_file {
            if !known.contains(file) {
                let _ = writeln!(s, "\n{file}");
                write_findings(&mut s, &fs, per_code);
            }
        }
        if !global.is_empty() {
            let _ = writeln!(s, "\nWhole dataset");
            write_findings(&mut s, &global, per_code);
        }
        s
    }
}

fn write_findings(s: &mut String, fs: &[&Finding], per_code: usize) {
    let mut sorted: Vec<&&Finding> = fs.iter().collect();
    sorted.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.line.unwrap_or(0)));
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    let mut hidden: BTreeMap<&str, usize> = BTreeMap::new();
    for f in sorted {
        let n = shown.entry(f.code.as_str()).or_default();
        if *n >= per_code {
            *hidden.entry(f.code.as_str()).or_default() += 1;
            continue;
        }
        *n += 1;
        let at = f.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        let _ = writeln!(s, "  {:<7} {}{} [{}]", f.severity.as_str(), at, f.message, f.code);
        if let Some(fix) = &f.suggested_fix {
            let _ = writeln!(s, "          fix: {fix}");
        }
    }
    for (code, n) in hidden {
        let _ = writeln!(s, "  … and {n} more [{code}] (see --json for all)");
    }
}
