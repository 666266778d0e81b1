//! `odradek-storage`: prepare a node's directories before its first start.
//!
//! ```text
//! odradek-storage random-uuid
//! odradek-storage format -t <cluster-id> -c <server.properties> [--ignore-formatted]
//!                        [--add-scram 'SCRAM-SHA-512=[name=admin,password=...]']
//! odradek-storage info -c <server.properties>
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use odradek_common::Uuid;
use odradek_controller::{config, dirs, NodeConfig};

#[derive(Parser)]
#[command(
    name = "odradek-storage",
    version,
    about = "Format and inspect Odradek node storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random cluster id.
    RandomUuid,
    /// Write meta.properties in every log dir and initialise the metadata log of controllers.
    Format {
        /// The cluster id (from `random-uuid`).
        #[arg(short = 't', long = "cluster-id")]
        cluster_id: String,
        /// The node's server.properties.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Skip directories that are already formatted instead of failing.
        #[arg(short = 'g', long)]
        ignore_formatted: bool,
        /// Override a property: key=value (repeatable).
        #[arg(long = "override")]
        overrides: Vec<String>,
        /// A SCRAM credential in the bootstrap metadata, as kafka-storage takes it:
        /// 'SCRAM-SHA-512=[name=admin,password=admin-secret]' (repeatable; give the same ones
        /// to every controller).
        #[arg(short = 'S', long = "add-scram")]
        add_scram: Vec<String>,
    },
    /// Show what is on disk for a node.
    Info {
        /// The node's server.properties.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Override a property: key=value (repeatable).
        #[arg(long = "override")]
        overrides: Vec<String>,
    },
}

fn load(path: &std::path::Path, overrides: &[String]) -> anyhow::Result<NodeConfig> {
    let props = config::load_properties(path, overrides)?;
    let (config, unknown) = NodeConfig::from_properties(&props)?;
    for k in unknown {
        eprintln!("warning: unknown configuration key {k} (ignored)");
    }
    Ok(config)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::RandomUuid => println!("{}", Uuid::random()),
        Command::Format {
            cluster_id,
            config,
            ignore_formatted,
            overrides,
            add_scram,
        } => {
            let config = load(&config, &overrides)?;
            let records = add_scram
                .iter()
                .map(|s| odradek_controller::managers::scram::bootstrap_credential(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let report = dirs::format(&config, &cluster_id, ignore_formatted, &records)?;
            for d in &report.formatted {
                println!(
                    "Formatted {} (cluster {cluster_id}, node {})",
                    d.display(),
                    config.node_id
                );
            }
            for d in &report.skipped {
                println!("Skipped {}: already formatted", d.display());
            }
        }
        Command::Info { config, overrides } => {
            let config = load(&config, &overrides)?;
            for (dir, lines) in dirs::info(&config)? {
                println!("{}", dir.display());
                for (k, v) in lines {
                    println!("  {k}: {v}");
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
