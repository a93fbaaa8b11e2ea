//! Building the training set: the accepted fixes (drop duplicates, redact, repair text) applied to
//! the records, never to the source files; persona; holdout split; replay mix; JSONL out.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::finding::Finding;
use crate::options::{Options, TokenCounter};
use crate::persona::{Persona, PersonaMode};
use crate::quality::Verdict;
use crate::record::{Kind, Message, Record, Role};
use crate::report::Report;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The training file; the holdout and report files sit beside it.
    pub out: PathBuf,
    /// Share of groups held out for evaluation (0 to 1).
    pub holdout: f64,
    pub seed: u64,
    /// Keep only the first of exact and near-duplicate records.
    pub drop_duplicates: bool,
    /// Drop records over the sequence length (by default they are kept and counted).
    pub drop_too_long: bool,
    /// Replace personal data with placeholders.
    pub redact: bool,
    /// Repair mojibake ("cafÃ©" → "café").
    pub fix_text: bool,
    /// Keep replies that contain the persona's forbidden outputs (dropped by default).
    pub keep_forbidden: bool,
    /// The persona to apply; when `None`, one found among the inputs is used.
    pub persona: Option<Persona>,
    pub persona_mode: PersonaMode,
    /// Files or folders of general conversation to mix in.
    pub replay: Vec<PathBuf>,
    /// Share of the training set that is replay (0 to 0.9).
    pub replay_share: f64,
}

impl BuildOptions {
    pub fn new(out: impl Into<PathBuf>) -> Self {
        BuildOptions {
            out: out.into(),
            holdout: 0.1,
            seed: 42,
            drop_duplicates: false,
            drop_too_long: false,
            redact: false,
            fix_text: false,
            keep_forbidden: false,
            persona: None,
            persona_mode: PersonaMode::System,
            replay: Vec::new(),
            replay_share: 0.1,
        }
    }

    pub fn holdout_path(&self) -> PathBuf {
        sibling(&self.out, "holdout.jsonl")
    }
    pub fn report_path(&self) -> PathBuf {
        sibling(&self.out, "report.json")
    }
}

fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
    out.with_file_name(format!("{stem}.{suffix}"))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BuildSummary {
    pub train: usize,
    pub holdout: usize,
    pub replay: usize,
    /// Records left out, by reason (finding code).
    pub dropped: BTreeMap<String, usize>,
    /// Personal data items replaced with placeholders.
    pub redacted: usize,
    /// Records whose garbled text was repaired.
    pub repaired: usize,
    pub persona: Option<String>,
    pub persona_mode: PersonaMode,
    pub train_path: PathBuf,
    pub holdout_path: PathBuf,
    pub report_path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("could not write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{0} exists and is not a dataset this app wrote; choose another --out so your file is not overwritten")]
    WouldOverwrite(PathBuf),
    #[error("the holdout share must be between 0 and 0.9, not {0}")]
    BadHoldout(f64),
}

/// Reads the inputs, checks them, applies the accepted fixes and writes train, holdout and report.
pub fn build(paths: &[PathBuf], opts: &Options, counter: &dyn TokenCounter, b: &BuildOptions) -> Result<(BuildSummary, Report), BuildError> {
    if !(0.0..=0.9).contains(&b.holdout) || b.holdout.is_nan() {
        return Err(BuildError::BadHoldout(b.holdout));
    }
    let (train_path, holdout_path, report_path) = (b.out.clone(), b.holdout_path(), b.report_path());
    for p in [&train_path, &holdout_path] {
        if p.exists() && !looks_like_ours(p) {
            return Err(BuildError::WouldOverwrite(p.clone()));
        }
    }
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Write { path, source }
    };
    if let Some(dir) = train_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr(dir))?;
    }
    let tmp_train = sibling(&train_path, "jsonl.tmp");
    let tmp_hold = sibling(&train_path, "holdout.jsonl.tmp");
    let mut train_w = BufWriter::new(File::create(&tmp_train).map_err(werr(&tmp_train))?);
    let mut hold_w = BufWriter::new(File::create(&tmp_hold).map_err(werr(&tmp_hold))?);

    let mut s = BuildSummary {
        train: 0,
        holdout: 0,
        replay: 0,
        dropped: BTreeMap::new(),
        redacted: 0,
        repaired: 0,
        persona: None,
        persona_mode: b.persona_mode,
        train_path: train_path.clone(),
        holdout_path: holdout_path.clone(),
        report_path: report_path.clone(),
    };
    let mut write_err: Option<BuildError> = None;
    let exclude = [train_path.clone(), holdout_path.clone(), report_path.clone(), tmp_train.clone(), tmp_hold.clone()];
    // The persona (given, or found among the inputs) must be known before the first record.
    let persona = match &b.persona {
        Some(p) => Some(p.clone()),
        None => find_persona(paths, opts.max_files, &exclude),
    };
    let system_prompt = persona.as_ref().map(Persona::system_prompt);
    s.persona = persona.as_ref().map(|p| p.name.clone());
    let scan = {
        let mut on_record = |_: usize, mut r: Record, v: &Verdict| {
            if write_err.is_some() {
                return;
            }
            let drop = if v.empty_reply {
                Some("empty-reply")
            } else if b.drop_duplicates && v.duplicate_of.is_some() {
                Some("exact-duplicate")
            } else if b.drop_duplicates && v.near_duplicate_of.is_some() {
                Some("near-duplicate")
            } else if b.drop_too_long && v.too_long {
                Some("too-long")
            } else if v.forbidden && !b.keep_forbidden {
                Some("forbidden-output")
            } else {
                None
            };
            if let Some(code) = drop {
                *s.dropped.entry(code.to_string()).or_default() += 1;
                return;
            }
            if b.fix_text {
                let mut fixed = false;
                for m in &mut r.messages {
                    if let Some(t) = crate::text::repair_mojibake(&m.content) {
                        m.content = t;
                        fixed = true;
                    }
                }
                s.repaired += fixed as usize;
            }
            if b.redact {
                for m in &mut r.messages {
                    let (t, n) = crate::pii::redact(&m.content);
                    if n > 0 {
                        m.content = t;
                        s.redacted += n;
                    }
                }
            }
            apply_persona(&mut r, system_prompt.as_deref(), b.persona_mode);
            let holdout = crate::split::in_holdout(&r.group, b.seed, b.holdout);
            let (w, path, n) = if holdout { (&mut hold_w, &tmp_hold, &mut s.holdout) } else { (&mut train_w, &tmp_train, &mut s.train) };
            if let Err(e) = write_record(w, &r) {
                write_err = Some(BuildError::Write { path: path.clone(), source: e });
            }
            *n += 1;
        };
        crate::collect::run(paths, opts, counter, persona, &exclude, &mut on_record)
    };
    if let Some(e) = write_err {
        let _ = std::fs::remove_file(&tmp_train);
        let _ = std::fs::remove_file(&tmp_hold);
        return Err(e);
    }
    train_w.flush().map_err(werr(&tmp_train))?;
    hold_w.flush().map_err(werr(&tmp_hold))?;
    drop(train_w);
    drop(hold_w);
    let mut report = scan.report;

    // Replay: spread evenly through the training file.
    if !b.replay.is_empty() && b.replay_share > 0.0 {
        let (pool, mut notes) = crate::replay::load(&b.replay, opts);
        report.findings.append(&mut notes);
        let (picked, note) = crate::replay::pick(pool, s.train, b.replay_share, b.seed);
        report.findings.extend(note);
        s.replay = picked.len();
        if !picked.is_empty() {
            let picked: Vec<Record> = picked.into_iter().map(|r| crate::replay::with_system(r, None)).collect();
            interleave(&tmp_train, &picked, s.train).map_err(werr(&tmp_train))?;
        }
    }
    if b.holdout > 0.0 && s.holdout == 0 && s.train > 0 {
        report.findings.push(Finding::warning("empty-holdout", "no record landed in the holdout set: there are too few threads or files to split").fix("add more data, or raise --holdout"));
    }
    if s.train == 0 {
        report.findings.push(Finding::error("empty-training-set", "no record is left for training").fix("see the findings above"));
    }
    std::fs::rename(&tmp_train, &train_path).map_err(werr(&train_path))?;
    std::fs::rename(&tmp_hold, &holdout_path).map_err(werr(&holdout_path))?;
    #[derive(Serialize)]
    struct Out<'a> {
        build: &'a BuildSummary,
        report: &'a Report,
    }
    let json = serde_json::to_vec_pretty(&Out { build: &s, report: &report }).expect("the report serialises");
    std::fs::write(&report_path, json).map_err(werr(&report_path))?;
    Ok((s, report))
}

/// The first persona file among the inputs (the scan reports problems with it).
fn find_persona(paths: &[PathBuf], max_files: usize, exclude: &[PathBuf]) -> Option<Persona> {
    let w = crate::walk::walk(paths, max_files, exclude);
    w.entries.iter().filter(|e| e.path.extension().is_some_and(|x| x.eq_ignore_ascii_case("toml"))).find_map(|e| {
        let head = std::fs::read(&e.path).ok()?;
        if crate::detect::sniff(&e.path, &head) == crate::detect::Format::Persona {
            Persona::load(&e.path).ok()
        } else {
            None
        }
    })
}

/// Puts the persona in the system turn, or removes system prompts to bake the voice in.
pub fn apply_persona(r: &mut Record, persona_prompt: Option<&str>, mode: PersonaMode) {
    match mode {
        PersonaMode::System => {
            let Some(p) = persona_prompt else { return };
            if r.kind == Kind::Replay {
                return;
            }
            match r.messages.iter_mut().find(|m| m.role == Role::System) {
                Some(sys) => sys.content = format!("{p}\n\n{}", sys.content),
                None => r.messages.insert(0, Message::system(p)),
            }
        }
        PersonaMode::Bake => {
            // A text-to-SQL schema is input, not persona: it stays.
            if r.kind != Kind::Sql {
                r.messages.retain(|m| m.role != Role::System);
            }
        }
    }
}

fn write_record(w: &mut impl Write, r: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
    w.write_all(b"\n")
}

/// Spreads `extra` evenly among the `n` lines of `path`.
fn interleave(path: &Path, extra: &[Record], n: usize) -> std::io::Result<()> {
    let tmp = path.with_extension("mix.tmp");
    {
        let mut out = BufWriter::new(File::create(&tmp)?);
        let every = (n + extra.len()) as f64 / extra.len() as f64;
        let mut next = every / 2.0;
        let mut k = 0usize;
        let mut pos = 0usize;
        let mut lines = BufReader::new(File::open(path)?).lines();
        loop {
            if k < extra.len() && pos as f64 >= next {
                write_record(&mut out, &extra[k])?;
                k += 1;
                next += every;
                pos += 1;
                continue;
            }
            match lines.next() {
                Some(l) => {
                    out.write_all(l?.as_bytes())?;
                    out.write_all(b"\n")?;
                    pos += 1;
                }
                None => break,
            }
        }
        for r in &extra[k..] {
            write_record(&mut out, r)?;
        }
        out.flush()?;
    }
    std::fs::rename(tmp, path)
}

/// Is this file one we wrote (empty, or JSON lines of records with `messages` and `kind`)?
fn looks_like_ours(p: &Path) -> bool {
    let Ok(f) = File::open(p) else { return false };
    let mut first = String::new();
    if BufReader::new(f).read_line(&mut first).is_err() {
        return false;
    }
    if first.trim().is_empty() {
        return true;
    }
    serde_json::from_str::<serde_json::Value>(&first).is_ok_and(|v| v.get("messages").is_some() && v.get("kind").is_some())
}
