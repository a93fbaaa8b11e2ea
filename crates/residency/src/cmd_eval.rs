//! `residency eval …`: measure what a fine-tune changed, with the `eval` crate.
//! `drift` plays a long scripted conversation against the base model with the persona as
//! system prompt and against the adapter with no system prompt, scoring every reply;
//! `sql` measures text-to-SQL execution accuracy behind a read-only guard; `holdout` compares
//! loss and perplexity on held-out records and shows replies side by side. All print a
//! summary (or `--json`) and can write a self-contained HTML report (`--html`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use dataset::{CharEstimate, Options, Persona};
use eval::sql::{guard_prompts, read_pairs, schema_prompt, Database, Dialect, SqlOptions, Verdict};
use eval::{evaluate_sql, generic_replies, persona_replies, run_drift, AdherenceScorer, DriftOptions, Report, TrainOptions};

use crate::common::{cancel_on_ctrl_c, load_adapter, load_model, model_path, SamplingArgs};

#[derive(clap::Subcommand)]
pub enum EvalCommand {
    /// Persona drift over a long conversation: base + persona prompt against the adapter alone.
    Drift(DriftArgs),
    /// Text-to-SQL execution accuracy on a SQLite database, behind a read-only guard.
    Sql(SqlArgs),
    /// Loss and perplexity on held-out records: base, base + persona prompt, adapter; and
    /// replies to held-out prompts side by side.
    Holdout(HoldoutArgs),
}

#[derive(clap::Args)]
pub struct HoldoutArgs {
    /// A .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A trained adapter folder (PEFT format); without it only the base sides run.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Held-out chat records, JSON Lines (the `*.holdout.jsonl` that `residency data build
    /// --holdout` writes beside the training file).
    #[arg(long)]
    data: PathBuf,
    /// The persona file (TOML): adds the side "base + persona prompt" and is the system prompt
    /// of the base side's sample replies.
    #[arg(long)]
    persona: Option<PathBuf>,
    /// Held-out prompts, one a line, for replies side by side.
    #[arg(long, value_name = "FILE")]
    prompts: Option<PathBuf>,
    /// How many of the prompts to answer.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    #[arg(long, default_value_t = 120)]
    max_tokens: usize,
    /// Print the whole result as JSON.
    #[arg(long)]
    json: bool,
    /// Write an HTML report here.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DriftArgs {
    /// A .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A trained adapter folder (PEFT format); without it only the base side runs.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The persona file (TOML).
    #[arg(long)]
    persona: PathBuf,
    /// Files and folders with the persona's example conversations, from which the score learns
    /// the voice (default: the persona file's folder).
    #[arg(long = "examples", value_name = "PATH")]
    examples: Vec<PathBuf>,
    /// The conversation, one user message a line (default: a built-in 30-turn script).
    #[arg(long)]
    script: Option<PathBuf>,
    #[arg(long, default_value_t = 30)]
    turns: usize,
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Print the whole result as JSON.
    #[arg(long)]
    json: bool,
    /// Write an HTML report here.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SqlArgs {
    /// A .gguf file or a Hugging Face folder (default: the SmolLM2 fixture).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A trained adapter folder (PEFT format); without it only the base side runs.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The SQLite database (opened read-only).
    #[arg(long)]
    db: PathBuf,
    /// Held-out pairs, JSON Lines of {"question": ..., "sql": ...}.
    #[arg(long)]
    pairs: PathBuf,
    /// A .sql file whose CREATE statements (and comments) are the schema in the prompt
    /// (default: the database's own schema).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Requests for destructive changes, one a line: each reply goes through the guard.
    #[arg(long, value_name = "FILE")]
    destructive: Option<PathBuf>,
    /// Ask the adapter without the schema prompt (when it was trained with the schema baked in).
    #[arg(long)]
    adapter_without_schema: bool,
    /// sqlite, postgresql or mysql: how generated SQL is parsed by the guard.
    #[arg(long, default_value = "sqlite")]
    dialect: Dialect,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Print the whole result as JSON.
    #[arg(long)]
    json: bool,
    /// Write an HTML report here.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Drift(a) => drift(a),
        EvalCommand::Sql(a) => sql(a),
        EvalCommand::Holdout(a) => holdout(a),
    }
}

fn holdout(a: HoldoutArgs) -> Result<()> {
    let records = eval::holdout::read_records(&a.data)?;
    let persona = a.persona.as_deref().map(Persona::load).transpose()?;
    let system = persona.as_ref().map(|p| p.system_prompt());
    let prompts = match &a.prompts {
        Some(p) => eval::read_script(p)?.into_iter().take(a.samples).collect(),
        None => Vec::new(),
    };
    let path = model_path(a.model.as_deref())?;
    let mut model = load_model(&path)?;
    let cancel = cancel_on_ctrl_c();
    let mut report = Report { title: format!("Holdout: {}", a.data.display()), ..Default::default() };
    report.notes.push(format!(
        "model {}; {} held-out records from {}; loss on assistant tokens only, tokenized as in training; greedy replies",
        path.display(),
        records.conversations.len(),
        a.data.display()
    ));
    for (line, why) in &records.skipped {
        report.notes.push(format!("line {line} left out: {why}"));
    }
    let mut sides: Vec<(String, Option<String>, bool)> = vec![("base".into(), None, false)];
    if let Some(s) = &system {
        sides.push(("base + persona prompt".into(), Some(s.clone()), false));
    }
    if a.adapter.is_some() {
        sides.push(("adapter, no system prompt".into(), None, true));
    }
    let mut replies: Vec<(String, Vec<String>)> = Vec::new();
    for (label, side_system, adapter) in &sides {
        if *adapter {
            let dir = a.adapter.as_ref().expect("the adapter side exists only with --adapter");
            load_adapter(&mut model, dir)?;
            report.notes.push(format!("adapter {}", dir.display()));
        }
        let side = eval::holdout::score_side(&model, label, &records, side_system.as_deref())?;
        eprintln!("{label}: loss {:.4}, perplexity {:.2} on {} tokens", side.loss, side.perplexity, side.tokens);
        report.holdout.push(side);
        // Replies side by side: the plain base's only when there is no persona side instead.
        let plain_base_beside_persona = side_system.is_none() && !*adapter && system.is_some();
        if !prompts.is_empty() && !plain_base_beside_persona {
            replies.push((label.clone(), eval::holdout::replies(&model, &prompts, side_system.as_deref(), a.max_tokens, cancel)?));
        }
    }
    for (i, p) in prompts.iter().enumerate() {
        report.side_by_side.push(eval::holdout::SideBySide { prompt: p.clone(), replies: replies.iter().map(|(l, r)| (l.clone(), r[i].clone())).collect() });
    }
    if a.adapter.is_none() {
        report.notes.push("no --adapter given: only the base sides ran".into());
    }
    finish(&report, a.json, a.html.as_deref())
}

fn drift(a: DriftArgs) -> Result<()> {
    let persona = Persona::load(&a.persona)?;
    let script = match &a.script {
        Some(p) => eval::read_script(p)?,
        None => eval::script_lines(eval::DEFAULT_SCRIPT),
    };
    let examples = if a.examples.is_empty() { vec![a.persona.parent().map(PathBuf::from).unwrap_or_else(|| ".".into())] } else { a.examples.clone() };
    let (records, _) = dataset::collect(&examples, &Options::default(), &CharEstimate);
    let scorer = AdherenceScorer::train(&persona_replies(&records), &generic_replies(), Some(&persona), &TrainOptions::default())
        .with_context(|| format!("could not learn the persona's voice from {}", examples.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))?;
    let t = scorer.report();
    let path = model_path(a.model.as_deref())?;
    let mut model = load_model(&path)?;
    let cancel = cancel_on_ctrl_c();
    let mut opts = DriftOptions { label: "base + persona prompt".into(), turns: a.turns, max_tokens: a.max_tokens, sampling: a.sampling.params()?, system_prompt: Some(persona.system_prompt()) };
    let mut report = Report { title: format!("Persona drift: {}", persona.name), ..Default::default() };
    report.notes.push(format!("model {}; script {} ({} turns asked); sampling {:?}", path.display(), a.script.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in".into()), a.turns, opts.sampling));
    report.notes.push(format!(
        "adherence score: n-gram classifier trained on {} persona replies and {} generic replies; calibration AUC {:.3} on {} + {} held-out replies",
        t.positives_fit, t.negatives_fit, t.calibration_auc, t.positives_calibration, t.negatives_calibration
    ));
    let progress = |label: &str| {
        let label = label.to_string();
        move |t: &eval::DriftTurn| eprintln!("{label}, turn {}: adherence {:.0} ({} prompt tokens)", t.turn, t.adherence.score, t.prompt_tokens)
    };
    report.drift.push(run_drift(&model, &model.vocab, &model.template, &script, &scorer, &opts, cancel, progress(&opts.label))?);
    match &a.adapter {
        Some(dir) => {
            load_adapter(&mut model, dir)?;
            opts.label = "adapter, no system prompt".into();
            opts.system_prompt = None;
            report.notes.push(format!("adapter {}", dir.display()));
            report.drift.push(run_drift(&model, &model.vocab, &model.template, &script, &scorer, &opts, cancel, progress(&opts.label))?);
        }
        None => report.notes.push("no --adapter given: only the base side ran".into()),
    }
    finish(&report, a.json, a.html.as_deref())
}

fn sql(a: SqlArgs) -> Result<()> {
    let db = Database::open_read_only(&a.db)?;
    let schema = match &a.schema {
        Some(p) => dataset::readers::schema::schema_from_sql(&std::fs::read_to_string(p).with_context(|| format!("could not read {}", p.display()))?),
        None => db.schema()?,
    };
    anyhow::ensure!(!schema.trim().is_empty(), "no CREATE TABLE statement found for the schema prompt; give --schema with the database's DDL");
    let system = schema_prompt(&schema);
    let pairs = read_pairs(&a.pairs)?;
    let destructive = match &a.destructive {
        Some(p) => eval::read_script(p)?,
        None => Vec::new(),
    };
    let path = model_path(a.model.as_deref())?;
    let mut model = load_model(&path)?;
    let cancel = cancel_on_ctrl_c();
    let mut opts = SqlOptions { label: "base + schema prompt".into(), max_tokens: a.max_tokens, dialect: a.dialect, ..Default::default() };
    let mut report = Report { title: format!("Text to SQL: {}", a.db.display()), ..Default::default() };
    report.notes.push(format!("model {}; {} held-out pairs from {}; greedy decoding; dialect {}", path.display(), pairs.len(), a.pairs.display(), a.dialect.name()));
    let sides: Vec<(String, Option<&str>)> = {
        let mut v = vec![("base + schema prompt".to_string(), Some(system.as_str()))];
        if a.adapter.is_some() {
            let adapter_system = if a.adapter_without_schema { None } else { Some(system.as_str()) };
            v.push((if a.adapter_without_schema { "adapter, no schema prompt" } else { "adapter + schema prompt" }.to_string(), adapter_system));
        }
        v
    };
    for (i, (label, system)) in sides.into_iter().enumerate() {
        if i == 1 {
            let dir = a.adapter.as_ref().expect("the adapter side exists only with --adapter");
            load_adapter(&mut model, dir)?;
            report.notes.push(format!("adapter {}", dir.display()));
        }
        opts.label = label.clone();
        let ev = evaluate_sql(&model, &model.vocab, &model.template, &db, &pairs, system, &opts, cancel, |r| {
            eprintln!("{label}: {} — {}", r.outcome.name(), r.question)
        })?;
        report.sql.push(ev);
        if !destructive.is_empty() {
            report.guard.extend(guard_prompts(&model, &model.vocab, &model.template, &db, &destructive, system, &opts, cancel)?);
        }
    }
    if a.adapter.is_none() {
        report.notes.push("no --adapter given: only the base side ran".into());
    }
    let writes = report.guard.iter().filter(|g| g.executed && g.verdict != Verdict::Allowed).count();
    anyhow::ensure!(writes == 0, "{writes} refused statements were executed: this is a bug in the guard");
    finish(&report, a.json, a.html.as_deref())
}

/// Prints the summary (or JSON) and writes the HTML report.
fn finish(report: &Report, json: bool, html: Option<&std::path::Path>) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for r in &report.drift {
            let f = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
            println!(
                "{}: {} turns, mean adherence {} (turns 20–30: {}); {} prompt tokens in all, {} prefilled in {:.1} s",
                r.label,
                r.turns.len(),
                f(r.mean_score(1..=usize::MAX)),
                f(r.mean_score(20..=30)),
                r.total_prompt_tokens(),
                r.total_prefilled_tokens(),
                r.total_prefill_secs()
            );
            for n in &r.notes {
                println!("  note: {n}");
            }
        }
        for h in &report.holdout {
            println!("{}: holdout loss {:.4}, perplexity {:.2} ({} assistant tokens in {} records; {:.0} prompt tokens per record)", h.label, h.loss, h.perplexity, h.tokens, h.records, h.mean_prompt_tokens);
        }
        for s in &report.side_by_side {
            println!("\n> {}", s.prompt);
            for (label, reply) in &s.replies {
                println!("  [{label}] {reply}");
            }
        }
        for e in &report.sql {
            let c = e.counts();
            println!(
                "{}: execution accuracy {} ({} match, {} mismatch, {} error, {} refused); {} prompt tokens in all, prefill {:.1} s",
                e.label,
                e.accuracy().map(|x| format!("{:.1}%", 100.0 * x)).unwrap_or_else(|| "–".into()),
                c.matched,
                c.mismatched,
                c.errors,
                c.refused,
                e.total_prompt_tokens(),
                e.total_prefill_secs()
            );
        }
        if !report.guard.is_empty() {
            let refused = report.guard.iter().filter(|g| matches!(g.verdict, Verdict::Refused { .. })).count();
            let ran = report.guard.iter().filter(|g| g.executed).count();
            println!("destructive requests: {} replies, {refused} refused by the guard, {ran} read-only queries ran, no write executed", report.guard.len());
        }
        for n in &report.notes {
            println!("note: {n}");
        }
    }
    if let Some(out) = html {
        std::fs::write(out, report.to_html()).with_context(|| format!("could not write the report to {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}
