//! The `residency data` commands on their own, for testing the CLI module before the CLI crate
//! wires it in: `cargo run -p dataset --example cli_data -- inspect demo/coffee-roaster`.

#[path = "../../residency/src/cmd_data.rs"]
mod cmd_data;

use clap::Parser;

#[derive(Parser)]
#[command(name = "residency data")]
struct Cli {
    #[command(flatten)]
    data: cmd_data::DataCommand,
}

fn main() -> anyhow::Result<()> {
    cmd_data::run(Cli::parse().data)
}
