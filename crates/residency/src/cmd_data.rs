//! `residency data …`: inspect folders of examples, build the training set, watch a folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use dataset::{BuildOptions, CharEstimate, ColumnMap, FnCounter, Options, Persona, PersonaMode, TokenCounter};

#[derive(Args, Debug)]
pub struct DataCommand {
    #[command(subcommand)]
    pub action: DataAction,
}

#[derive(Subcommand, Debug)]
pub enum DataAction {
    /// Read files and folders and report what is wrong with them (your files are not changed).
    Inspect(InspectArgs),
    /// Build a training set (JSON Lines) plus a holdout file and a report from files and folders.
    Build(BuildArgs),
    /// Watch a folder and report each change as files are added, edited, renamed or removed.
    Watch(WatchArgs),
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Files and folders to read.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Model (a .gguf file or a Hugging Face folder) whose tokenizer and chat template count the
    /// tokens; without it the counts are a labelled estimate.
    #[arg(long, value_name = "M")]
    pub model: Option<PathBuf>,
    /// Training sequence length in tokens.
    #[arg(long, default_value_t = 2048)]
    pub seq_len: usize,
    /// CSV column roles when the header guess is wrong, e.g. `user=Question,assistant=Reply,group=Thread`.
    #[arg(long, value_name = "MAP")]
    pub columns: Option<ColumnMap>,
    /// Your email address(es): your replies become the assistant's turns (guessed when not given).
    #[arg(long = "owner", value_name = "ADDRESS")]
    pub owners: Vec<String>,
    /// Persona file (TOML); by default a persona.toml among the inputs is used.
    #[arg(long, value_name = "P")]
    pub persona: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
    /// In the text report, list at most this many findings of one kind per file.
    #[arg(long, default_value_t = 20)]
    pub max_per_kind: usize,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where to write the training records; `NAME.holdout.jsonl` and `NAME.report.json` go beside it.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Share of threads/files held out for evaluation.
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f64,
    /// Seed of the holdout split and the replay pick.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep only the first of exact and near-duplicate records.
    #[arg(long)]
    pub drop_duplicates: bool,
    /// Drop records longer than the sequence length (kept and counted by default).
    #[arg(long)]
    pub drop_too_long: bool,
    /// Replace email addresses, phone numbers, card numbers and IBANs with placeholders.
    #[arg(long)]
    pub redact: bool,
    /// Repair garbled characters ("cafÃ©" → "café").
    #[arg(long)]
    pub fix_text: bool,
    /// Keep replies that contain the persona's forbidden outputs (dropped by default).
    #[arg(long)]
    pub keep_forbidden: bool,
    /// Bake the persona into the weights: write no system prompt (default: persona as the system turn).
    #[arg(long)]
    pub bake_persona: bool,
    /// General conversation to mix in against forgetting (e.g. the chatterbot corpus folder).
    #[arg(long, value_name = "PATH")]
    pub replay: Vec<PathBuf>,
    /// Share of the training set taken by the replay mix.
    #[arg(long, default_value_t = 0.1)]
    pub replay_share: f64,
    /// Print the report and the build summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The folder to watch.
    pub folder: PathBuf,
    #[arg(long, value_name = "M")]
    pub model: Option<PathBuf>,
    #[arg(long, default_value_t = 2048)]
    pub seq_len: usize,
    /// Debounce window in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub debounce_ms: u64,
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd.action {
        DataAction::Inspect(a) => inspect(a),
        DataAction::Build(a) => build(a),
        DataAction::Watch(a) => watch(a),
    }
}

fn options(c: &CommonArgs) -> Options {
    Options { seq_len: c.seq_len, columns: c.columns.clone(), owner_addresses: c.owners.clone(), ..Options::default() }
}

fn persona(c: &CommonArgs) -> anyhow::Result<Option<Persona>> {
    c.persona.as_deref().map(|p| Persona::load(p).map_err(anyhow::Error::from)).transpose()
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let counter = token_counter(a.common.model.as_deref())?;
    let report = dataset::inspect_with_persona(&a.common.paths, &options(&a.common), counter.as_ref(), persona(&a.common)?);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text(a.max_per_kind));
    }
    Ok(())
}

fn build(a: BuildArgs) -> anyhow::Result<()> {
    let counter = token_counter(a.common.model.as_deref())?;
    let mut b = BuildOptions::new(&a.out);
    b.holdout = a.holdout;
    b.seed = a.seed;
    b.drop_duplicates = a.drop_duplicates;
    b.drop_too_long = a.drop_too_long;
    b.redact = a.redact;
    b.fix_text = a.fix_text;
    b.keep_forbidden = a.keep_forbidden;
    b.persona = persona(&a.common)?;
    b.persona_mode = if a.bake_persona { PersonaMode::Bake } else { PersonaMode::System };
    b.replay = a.replay.clone();
    b.replay_share = a.replay_share;
    let (summary, report) = dataset::build(&a.common.paths, &options(&a.common), counter.as_ref(), &b)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "build": summary, "report": report }))?);
    } else {
        print!("{}", report.to_text(5));
        println!();
        println!("Wrote {} training record(s) to {}", summary.train + summary.replay, summary.train_path.display());
        if summary.replay > 0 {
            println!("  of which {} general-conversation replay record(s)", summary.replay);
        }
        println!("Wrote {} holdout record(s) to {}", summary.holdout, summary.holdout_path.display());
        for (why, n) in &summary.dropped {
            println!("Left out {n} record(s): {why}");
        }
        if summary.redacted > 0 {
            println!("Redacted {} personal data item(s)", summary.redacted);
        }
        if summary.repaired > 0 {
            println!("Repaired garbled text in {} record(s)", summary.repaired);
        }
        match &summary.persona {
            Some(p) => println!("Persona: {p} ({})", if a.bake_persona { "baked in, no system prompt" } else { "as the system turn" }),
            None => println!("No persona."),
        }
        println!("Full report: {}", summary.report_path.display());
    }
    if summary.train == 0 {
        bail!("no training record was written; see the report above");
    }
    Ok(())
}

fn watch(a: WatchArgs) -> anyhow::Result<()> {
    let counter: Arc<dyn TokenCounter> = Arc::from(token_counter(a.model.as_deref())?);
    let opts = Options { seq_len: a.seq_len, ..Options::default() };
    let w = dataset::watch(&a.folder, opts, counter, None, Duration::from_millis(a.debounce_ms), |ev| match ev {
        dataset::WatchEvent::Changed(changes) => {
            for c in changes {
                println!("{c:?}");
            }
        }
        dataset::WatchEvent::Updated { snapshot, took } => println!(
            "updated in {} ms: {} record(s), {} finding(s)",
            took.as_millis(),
            snapshot.records.len(),
            snapshot.report.findings.len()
        ),
        dataset::WatchEvent::Error(e) => eprintln!("watch error: {e}"),
    })?;
    let s = w.snapshot();
    println!("watching {} ({} record(s)); Ctrl-C to stop", a.folder.display(), s.records.len());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The model's tokenizer and chat template as a token counter, or the labelled estimate.
fn token_counter(model: Option<&Path>) -> anyhow::Result<Box<dyn TokenCounter>> {
    let Some(p) = model else { return Ok(Box::new(CharEstimate)) };
    let (vocab, template) = if p.is_dir() {
        let v = vocab::Vocab::from_hf_dir(p).with_context(|| format!("reading the tokenizer in {}", p.display()))?;
        let t = vocab::ChatTemplate::from_hf_dir(p).or_else(|_| vocab::ChatTemplate::fallback("chatml"))?;
        (v, t)
    } else {
        let mut f = std::fs::File::open(p).with_context(|| format!("opening the model {}", p.display()))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut f)
            .with_context(|| format!("{} is not a GGUF model file", p.display()))?;
        let v = vocab::Vocab::from_gguf(&content)?;
        let t = vocab::ChatTemplate::from_gguf(&content).or_else(|_| vocab::ChatTemplate::fallback("chatml"))?;
        (v, t)
    };
    let name = format!(
        "{} tokenizer with the {} chat template",
        p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        template.name()
    );
    let count = move |msgs: &[dataset::Message]| -> usize {
        let vm: Vec<vocab::Message> = msgs
            .iter()
            .map(|m| vocab::Message::new(match m.role {
                dataset::Role::System => "system",
                dataset::Role::User => "user",
                dataset::Role::Assistant => "assistant",
            }, m.content.clone()))
            .collect();
        match template.render_for_model(&vocab, &vm, false).and_then(|pr| pr.encode(&vocab)) {
            Ok(ids) => ids.len(),
            // Templates that refuse a shape (a lone assistant turn, say): count the text alone.
            Err(_) => msgs.iter().map(|m| vocab.encode(&m.content, false, false).map(|x| x.len() + 4).unwrap_or(m.content.len() / 4 + 4)).sum(),
        }
    };
    Ok(Box::new(FnCounter { f: count, name }))
}
