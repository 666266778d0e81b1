//! `odradek`: the operator's tool. `odradek --help` lists the commands.
//!
//! Exit codes: 0 success, 1 a Kafka or connection error (printed with the Kafka error name),
//! 2 bad usage.

mod admin;
mod balance;
mod cluster;
mod console;
mod groups;
mod perf;
mod perf_topics;
mod quorum;
mod reassign;
mod security;
mod topics;
mod transactions;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use odradek_client::Client;

#[derive(Parser)]
#[command(
    name = "odradek",
    version,
    about = "Operate an Odradek (or any Kafka) cluster"
)]
struct Cli {
    /// Brokers to bootstrap from.
    #[arg(
        long = "bootstrap-server",
        global = true,
        default_value = "127.0.0.1:9092"
    )]
    bootstrap_server: String,
    /// Client properties for TLS and SASL, with Kafka's client keys (security.protocol,
    /// ssl.truststore.location, ssl.keystore.location, sasl.mechanism, sasl.jaas.config).
    #[arg(long = "command-config", global = true)]
    command_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, describe, create, delete and grow topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Produce lines from standard input, one record per line.
    Produce(console::ProduceArgs),
    /// Print records to standard output, one per line.
    Consume(console::ConsumeArgs),
    /// List, describe (offsets and lag) and delete consumer groups.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Share groups (KIP-932), as `kafka-share-groups` lists and describes them.
    #[command(subcommand)]
    ShareGroups(groups::ShareGroupsCommand),
    /// Describe and alter topic and broker configs.
    #[command(subcommand)]
    Configs(admin::ConfigsCommand),
    /// Describe the controller quorum; add and remove controllers.
    #[command(subcommand, name = "metadata-quorum")]
    MetadataQuorum(quorum::QuorumCommand),
    /// List and describe transactions, and the producers of a partition.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// Move partitions between brokers (kafka-reassign-partitions), and balance them.
    #[command(subcommand)]
    Reassign(reassign::ReassignCommand),
    /// Elect preferred or unclean leaders (kafka-leader-election).
    #[command(name = "leader-election")]
    LeaderElection(cluster::LeaderElectionArgs),
    /// Describe the brokers' log directories (kafka-log-dirs).
    #[command(subcommand, name = "log-dirs")]
    LogDirs(cluster::LogDirsCommand),
    /// Cluster membership (kafka-cluster).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Producer and consumer performance tests.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Add, list and remove ACLs (kafka-acls).
    #[command(subcommand)]
    Acls(security::AclsCommand),
    /// Users' SCRAM credentials.
    #[command(subcommand)]
    Users(security::UsersCommand),
    /// Client quotas (kafka-configs --entity-type users|clients).
    #[command(subcommand)]
    Quotas(security::QuotasCommand),
}

/// The TLS and SASL settings of a `--command-config` file.
fn client_security(path: &std::path::Path) -> Result<odradek_client::ClientSecurity, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let props = odradek_client::parse_properties(&text);
    odradek_client::ClientSecurity::from_properties(&props).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let security = match cli
        .command_config
        .as_deref()
        .map(client_security)
        .transpose()
    {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut client = Client::new(&cli.bootstrap_server, "odradek-cli").with_security(security);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Topics(c) => topics::run(&mut client, c).await,
            Command::Produce(a) => console::produce(&mut client, a).await,
            Command::Consume(a) => console::consume(&mut client, a).await,
            Command::Perf(c) => perf::run(&mut client, c).await,
            Command::Groups(c) => groups::run(&mut client, c).await,
            Command::ShareGroups(c) => groups::run_share(&mut client, c).await,
            Command::Configs(c) => admin::configs(&mut client, c).await,
            Command::MetadataQuorum(c) => {
                quorum::run(&mut client, c, cli.command_config.as_deref()).await
            }
            Command::Transactions(c) => transactions::run(&mut client, c).await,
            Command::Reassign(c) => reassign::run(&mut client, c).await,
            Command::LeaderElection(a) => cluster::leader_election(&mut client, a).await,
            Command::LogDirs(c) => cluster::log_dirs(&mut client, c).await,
            Command::Cluster(c) => cluster::cluster(&mut client, c).await,
            Command::Acls(c) => security::acls(&mut client, c).await,
            Command::Users(c) => security::users(&mut client, c).await,
            Command::Quotas(c) => security::quotas(&mut client, c).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
