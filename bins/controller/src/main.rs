//! `odradek-controller -c controller.properties [--override key=value]...`: a controller-only
//! node of the KRaft quorum. Stops cleanly on SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use odradek_controller::{config, run_controller, NodeConfig};

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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
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
    runtime.block_on(run_controller(config, shutdown_signal()))?;
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,raft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
