//! The `residency eval` commands on their own, to test the CLI module before the CLI crate
//! wires it in: `cargo run -p eval --example cli_eval -- drift --persona demo/coffee-roaster/persona.toml`.

#[path = "../../residency/src/cmd_eval.rs"]
mod cmd_eval;
#[path = "../../residency/src/common.rs"]
#[allow(dead_code)]
mod common;

use clap::Parser;

#[derive(Parser)]
#[command(name = "residency eval")]
struct Cli {
    #[command(subcommand)]
    eval: cmd_eval::EvalCommand,
}

fn main() {
    if let Err(e) = cmd_eval::run(Cli::parse().eval) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
