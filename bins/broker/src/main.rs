//! `odradek-broker -c server.properties [--override key=value]...` runs a broker (or, with
//! `process.roles=broker,controller`, a combined node). `odradek-broker --dev` runs a single
//! combined node on 127.0.0.1:9092, data under ./odradek-data, formatted on first start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use odradek_server::{dev, run_node, BrokerConfig};

#[path = "../../common/process.rs"]
mod process;

/// Requests claiming huge element counts must not abort the process (see the module docs).
#[global_allocator]
static ALLOC: odradek_server::alloc::NodeAllocator = odradek_server::alloc::NodeAllocator;

#[derive(Parser)]
#[command(name = "odradek-broker", version, about = "Run an Odradek broker")]
struct Cli {
    /// The node's server.properties.
    #[arg(short = 'c', long = "config", required_unless_present = "dev")]
    config: Option<PathBuf>,
    /// A single-node development cluster on 127.0.0.1:9092.
    #[arg(long, conflicts_with = "config")]
    dev: bool,
    /// Where --dev keeps its data.
    #[arg(long, default_value = "./odradek-data")]
    data_dir: PathBuf,
    /// Override a property: key=value (repeatable).
    #[arg(long = "override")]
    overrides: Vec<String>,
    /// Log lines as text or as JSON objects (one per line, with span fields).
    #[arg(long, value_enum, default_value = "text")]
    log_format: process::LogFormat,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut props = match &cli.config {
        Some(path) => odradek_controller::config::load_properties(path, &[])?,
        None => dev::dev_properties(&cli.data_dir),
    };
    for o in &cli.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--override {o:?}: expected key=value"))?;
        props.insert(k.trim().into(), v.trim().into());
    }
    let (config, unknown) = BrokerConfig::from_properties(&props)?;
    for k in unknown {
        tracing::warn!(key = %k, "unknown configuration key (ignored)");
    }
    if cli.dev {
        dev::ensure_formatted(&config)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_node(config, process::shutdown_signal(), None))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    process::init_tracing(cli.log_format);
    process::exit(run(cli))
}
