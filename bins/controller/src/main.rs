//! `odradek-controller -c controller.properties [--override key=value]...`: a controller-only
//! node of the KRaft quorum. Stops cleanly on SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use odradek_controller::{config, run_controller, NodeConfig};

#[path = "../../common/process.rs"]
mod process;

#[derive(Parser)]
#[command(
    name = "odradek-controller",
    version,
    about = "Run an Odradek controller node"
)]
struct Cli {
    /// The node's server.properties.
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
    /// Override a property: key=value (repeatable).
    #[arg(long = "override")]
    overrides: Vec<String>,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let props = config::load_properties(&cli.config, &cli.overrides)?;
    let (config, unknown) = NodeConfig::from_properties(&props)?;
    for k in unknown {
        tracing::warn!(key = %k, "unknown configuration key (ignored)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_controller(config, process::shutdown_signal()))?;
    Ok(())
}

fn main() -> ExitCode {
    process::init_tracing();
    process::exit(run(Cli::parse()))
}
