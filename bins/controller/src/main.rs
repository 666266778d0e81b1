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
    /// Log lines as text or as JSON objects (one per line, with span fields).
    #[arg(long, value_enum, default_value = "text")]
    log_format: process::LogFormat,
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
    runtime.block_on(async {
        let registry = odradek_controller::metrics::node_registry();
        if let Some(addr) = config.metrics_listener {
            odradek_controller::metrics::start(addr, &registry, std::future::pending()).await?;
        }
        run_controller(config, process::shutdown_signal(), Some(registry)).await
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    process::init_tracing(cli.log_format);
    process::exit(run(cli))
}
