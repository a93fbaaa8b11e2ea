//! `residency`: the command line over Residency's library crates, for headless
//! use, scripting, benchmarks and tests. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

mod cmd_bench;
mod cmd_bench_train;
mod cmd_chat;
mod cmd_data;
mod cmd_demo;
mod cmd_eval;
mod cmd_generate;
mod cmd_info;
mod cmd_merge;
mod cmd_train;
mod common;

#[derive(Parser)]
#[command(name = "residency", version, about = "Fine-tune a local model on your best work, and talk to it")]
struct Cli {
    /// CPU threads for the math (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Continue a raw prompt (no chat template) and print the continuation.
    Generate(cmd_generate::Args),
    /// Chat with a model using its own chat template (interactive, or one --message).
    Chat(cmd_chat::Args),
    /// Inspect example folders, build a training set, watch a folder.
    Data(cmd_data::DataCommand),
    /// Show what a model file is: architecture, size, quantization, template.
    Info(cmd_info::Args),
    /// The headless tour on the default model.
    Demo(cmd_demo::Args),
    /// Fine-tune a model on chat records (QLoRA), writing a PEFT adapter.
    Train(Box<cmd_train::Args>),
    /// Measure what a fine-tune changed: persona drift and text-to-SQL accuracy, with HTML reports.
    #[command(subcommand)]
    Eval(cmd_eval::EvalCommand),
    /// Fold a LoRA adapter into the base model's weights (a Hugging Face folder).
    Merge(cmd_merge::Args),
    /// Measure speed against the reference implementations.
    #[command(subcommand)]
    Bench(cmd_bench::BenchCommand),
}

fn main() {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // candle and rayon read this before their first parallel work.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let result = match cli.cmd {
        Command::Generate(a) => cmd_generate::run(a),
        Command::Chat(a) => cmd_chat::run(a),
        Command::Info(a) => cmd_info::run(a),
        Command::Bench(c) => cmd_bench::run(c),
        Command::Demo(a) => cmd_demo::run(a),
        Command::Data(c) => cmd_data::run(c),
        Command::Train(a) => cmd_train::run(*a),
        Command::Merge(a) => cmd_merge::run(a),
        Command::Eval(c) => cmd_eval::run(c),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
