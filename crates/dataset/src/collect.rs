//! The reading pipeline: walk, recognise, read schemas and personas first, then every data file,
//! then emails (which pair up across files); each record is checked as it streams past.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::detect::{sniff, Format};
use crate::finding::Finding;
use crate::options::{Options, TokenCounter};
use crate::persona::Persona;
use crate::quality::{Analyzer, Verdict};
use crate::readers::{self, email::MailIndex, Ctx, ReadError};
use crate::record::Record;
use crate::report::{FileReport, Report};
use crate::walk;

/// The result of one pass over the inputs.
pub struct Scan {
    pub report: Report,
    /// The persona used: the one given, or the one found among the inputs.
    pub persona: Option<Persona>,
}

/// Reads everything under `paths`, calling `on_record` for each record with the checks' verdict.
/// `exclude` lists files never to read (the builder's own outputs).
pub fn run(
    paths: &[PathBuf],
    opts: &Options,
    counter: &dyn TokenCounter,
    persona: Option<Persona>,
    exclude: &[PathBuf],
    on_record: &mut dyn FnMut(usize, Record, &Verdict),
) -> Scan {
    let w = walk::walk(paths, opts.max_files, exclude);
    let mut findings = w.findings;
    let mut files: Vec<FileReport> = Vec::new();
    for s in w.skipped {
        findings.push(Finding::info("skipped", s.reason.clone()).in_file(s.display.clone()));
        files.push(FileReport { path: s.display, format: "skipped".into(), bytes: 0, records: 0, skipped: Some(s.reason) });
    }

    // Recognise every file by its first bytes.
    let mut typed: Vec<(walk::Entry, Format)> = Vec::with_capacity(w.entries.len());
    for e in w.entries {
        match head_of(&e.path) {
            Ok(head) => {
                let f = sniff(&e.path, &head);
                typed.push((e, f));
            }
            Err(err) => {
                let why = format!("it cannot be opened: {err}");
                findings.push(Finding::error("unreadable", format!("{} {why}", e.display)).in_file(e.display.clone()).fix("check the file's permissions"));
                files.push(FileReport { path: e.display, format: "skipped".into(), bytes: e.size, records: 0, skipped: Some(why) });
            }
        }
    }

    // Schemas and personas first: data files need them.
    let mut schemas: HashMap<PathBuf, Vec<String>> = HashMap::new();
    let mut found_persona: Option<(String, Persona)> = None;
    let mut per_file: HashMap<String, usize> = HashMap::new();
    for (e, f) in &typed {
        match f {
            Format::SqlSchema => match readers::read_whole(&e.path, opts.max_whole_file, "keep only the CREATE TABLE statements") {
                Ok(b) => {
                    let s = readers::schema::schema_from_sql(&crate::text::decode(&b).text);
                    if s.is_empty() {
                        findings.push(Finding::info("no-schema-in-sql", "this SQL file creates no table (data only?); it is not used as a schema").in_file(e.display.clone()));
                    } else {
                        add_schema(&mut schemas, &e.path, &e.display, s, &mut findings);
                    }
                }
                Err(err) => findings.push(read_error(&e.display, err)),
            },
            Format::Sqlite => match readers::schema::schema_from_sqlite(&e.path) {
                Ok(s) => add_schema(&mut schemas, &e.path, &e.display, s, &mut findings),
                Err(why) => findings.push(Finding::error("invalid-database", why).in_file(e.display.clone())),
            },
            Format::Persona => match Persona::load(&e.path) {
                Ok(p) => {
                    if found_persona.is_none() {
                        found_persona = Some((e.display.clone(), p));
                    } else {
                        findings.push(Finding::warning("several-personas", "another persona file was found first; this one was not used").in_file(e.display.clone()).fix("pass the one you want with --persona"));
                    }
                }
                Err(err) => findings.push(Finding::error("invalid-persona", err.to_string()).in_file(e.display.clone()).fix("see the persona example in the docs")),
            },
            _ => {}
        }
    }
    let (persona, persona_label) = match (persona, found_persona) {
        (Some(p), _) => {
            let label = p.name.clone();
            (Some(p), Some(label))
        }
        (None, Some((path, p))) => {
            let label = format!("{} (from {path})", p.name);
            (Some(p), Some(label))
        }
        (None, None) => (None, None),
    };
    let all_schemas: Vec<&String> = schemas.values().flatten().collect();
    let only_schema = (all_schemas.len() == 1).then(|| all_schemas[0].clone());
    let schema_for = |path: &Path| -> Option<String> {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if let Some(v) = schemas.get(d) {
                return Some(v.join("\n\n"));
            }
            dir = d.parent();
        }
        only_schema.clone()
    };

    let mut analyzer = Analyzer::new(opts, counter, persona.as_ref());
    let mut idx = 0usize;
    let mut handle = |r: Record| {
        let v = analyzer.observe(idx, &r);
        on_record(idx, r, &v);
        idx += 1;
    };
    let mut mail = MailIndex::default();
    for (e, f) in &typed {
        let mut ctx = Ctx::new(e.display.clone(), opts, counter, schema_for(&e.path), &mut handle);
        let result: Result<(), ReadError> = match f {
            Format::JsonLines => readers::json::read_jsonl(&e.path, &mut ctx),
            Format::Json => readers::json::read_json_document(&e.path, &mut ctx),
            Format::Csv { delimiter } => readers::csv::read_csv(&e.path, *delimiter, &mut ctx),
            Format::Document => readers::document::read_text(&e.path, &mut ctx),
            Format::Html => readers::document::read_html(&e.path, &mut ctx),
            Format::Yaml => readers::yaml::read_yaml(&e.path, &mut ctx),
            Format::Eml => mail.add_eml(&e.path, &e.display, opts).map_err(ReadError::Io),
            Format::Mbox => mail.add_mbox(&e.path, &e.display, opts).map_err(ReadError::Io),
            Format::SqlSchema | Format::Sqlite | Format::Persona => Ok(()),
            Format::Skipped { reason } => {
                let f = if reason.contains("empty") {
                    Finding::warning("empty-file", "the file is empty").fix("remove it, or check the export that made it")
                } else {
                    Finding::info("skipped", format!("skipped: {reason}"))
                };
                ctx.finding(f);
                Ok(())
            }
        };
        if let Err(err) = result {
            ctx.finding(read_error(&e.display, err));
        }
        let emitted = ctx.emitted;
        findings.append(&mut ctx.findings);
        per_file.insert(e.display.clone(), emitted);
    }
    if !mail.is_empty() {
        let counts = mail.emit(opts, &mut handle, &mut findings);
        for (i, (_, display)) in mail.files.iter().enumerate() {
            *per_file.entry(display.clone()).or_default() += counts[i];
        }
    }
    for (e, f) in typed {
        let skipped = match &f {
            Format::Skipped { reason } => Some(reason.clone()),
            _ => None,
        };
        let records = per_file.get(&e.display).copied().unwrap_or(0);
        files.push(FileReport { path: e.display, format: f.name().to_string(), bytes: e.size, records, skipped });
    }
    let (mut quality, stats) = analyzer.finish();
    findings.append(&mut quality);
    if stats.records == 0 && !files.is_empty() {
        findings.push(Finding::error("no-records", "no training record could be read from these files").fix("see the findings above for each file"));
    }
    let report = Report {
        tokenizer: counter.describe(),
        tokens_estimated: counter.is_estimate(),
        seq_len: opts.seq_len,
        persona: persona_label,
        files,
        findings,
        stats,
    };
    Scan { report, persona }
}

/// Adds a folder's schema, unless the schemas already there create the same tables (a `.sql`
/// file beside the database it made): the system turn should not carry the schema twice.
fn add_schema(schemas: &mut HashMap<PathBuf, Vec<String>>, path: &Path, display: &str, s: String, findings: &mut Vec<Finding>) {
    let list = schemas.entry(parent(path)).or_default();
    let have: std::collections::HashSet<String> = list.iter().flat_map(|x| readers::schema::created_names(x)).collect();
    let names = readers::schema::created_names(&s);
    if !names.is_empty() && names.iter().all(|n| have.contains(n)) {
        findings.push(Finding::info("schema-already-known", "creates the same tables as a schema already read in this folder; used once").in_file(display.to_string()));
        return;
    }
    list.push(s);
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn head_of(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(p)?.take(8192).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_error(display: &str, err: ReadError) -> Finding {
    let f = match &err {
        ReadError::TooLarge { .. } => Finding::error("file-too-large", err.to_string()),
        ReadError::Io(_) => Finding::error("read-failed", format!("{err}; records read before the error were kept")),
    };
    f.in_file(display.to_string())
}
