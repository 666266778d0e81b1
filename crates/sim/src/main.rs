//! `odradek-sim --seed N [--seeds K] [--steps M]`: runs simulations of seeds N..N+K; prints
//! each run's figures, and for a failure its seed, step, invariant and last events. Exit code 1
//! if any run failed an invariant or a gate.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "odradek-sim",
    about = "Deterministic simulation of an Odradek cluster"
)]
struct Cli {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds from the first.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Steps with faults per run (each 1-5 simulated ms), before a quiet end.
    #[arg(long, default_value_t = 20_000)]
    steps: u64,
    /// Probability per step of each kind of fault (crash, cut, pause; half that for a
    /// controller failover); default the seed's.
    #[arg(long)]
    fault_rate: Option<f64>,
    /// Switches on a known way to lose acknowledged data (to see the invariants catch it):
    /// ack-before-replication, unclean-leader-election, power-loss-without-fsync,
    /// read-uncommitted or commit-before-replication.
    #[arg(long)]
    hazard: Option<String>,
    /// Prints every run's last events, not only a failure's.
    #[arg(long)]
    trace: bool,
    /// Prints the cores' own log lines (tracing) at this level: info, debug...
    #[arg(long)]
    log: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(level) = &cli.log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_target(false)
            .without_time()
            .init();
    }
    let mut failed = 0;
    let mut totals = odradek_sim::Stats::default();
    for seed in cli.seed..cli.seed + cli.seeds {
        let mut config = odradek_sim::SimConfig::for_seed(seed, cli.steps);
        config.hazard = match cli.hazard.as_deref() {
            None => None,
            Some("ack-before-replication") => Some(odradek_sim::Hazard::AckBeforeReplication),
            Some("unclean-leader-election") => Some(odradek_sim::Hazard::UncleanLeaderElection),
            Some("read-uncommitted") => Some(odradek_sim::Hazard::ReadUncommitted),
            Some("commit-before-replication") => Some(odradek_sim::Hazard::CommitBeforeReplication),
            Some("read-committed-without-aborted-list") => {
                Some(odradek_sim::Hazard::ReadCommittedWithoutAbortedList)
            }
            Some("act-before-registration") => Some(odradek_sim::Hazard::ActBeforeRegistration),
            Some("power-loss-without-fsync") => {
                config.fsync = false;
                Some(odradek_sim::Hazard::PowerLossWithoutFsync)
            }
            Some(other) => {
                eprintln!("--hazard {other:?}: expected ack-before-replication, unclean-leader-election, power-loss-without-fsync, read-uncommitted, commit-before-replication, read-committed-without-aborted-list or act-before-registration");
                return std::process::ExitCode::FAILURE;
            }
        };
        if let Some(rate) = cli.fault_rate {
            config.fault_rate = rate;
        }
        let dir = match odradek_sim::scratch_dir() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("cannot create a directory for the logs: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        match odradek_sim::run(&config, dir.path()) {
            Ok(s) => {
                let gate = odradek_sim::gate(&s);
                println!(
                    "seed {seed}: {} acked, {} consumed, {} consumer restarts, {} offset fetches after an acknowledged commit, {}/{} transactions committed/aborted in {} sessions ({} copier restarts), {} leader changes, {} crashes ({} power losses), {} clean restarts, {} cuts, {} pauses, {} controller failovers, {}/{} messages dropped/duplicated, {} s simulated{}",
                    s.acked, s.consumed, s.consumer_restarts, s.offset_fetches_checked, s.txn_commits, s.txn_aborts, s.txn_sessions, s.copier_restarts, s.leader_changes, s.crashes, s.power_losses, s.clean_restarts, s.cuts, s.pauses,
                    s.controller_failovers, s.dropped, s.duplicated, s.sim_ms / 1000,
                    gate.as_ref().err().map_or(String::new(), |e| format!(" -- GATE FAILED: {e}"))
                );
                failed += u64::from(gate.is_err());
                if cli.trace {
                    println!("  produce answers by error code: {:?}", s.produce_answers);
                    for e in &s.trace {
                        println!("  {e}");
                    }
                }
                totals.acked += s.acked;
                totals.leader_changes += s.leader_changes;
                totals.crashes += s.crashes;
                totals.power_losses += s.power_losses;
                totals.clean_restarts += s.clean_restarts;
                totals.cuts += s.cuts;
                totals.pauses += s.pauses;
                totals.controller_failovers += s.controller_failovers;
                totals.dropped += s.dropped;
                totals.duplicated += s.duplicated;
                totals.txn_commits += s.txn_commits;
                totals.txn_aborts += s.txn_aborts;
                totals.copier_restarts += s.copier_restarts;
            }
            Err(f) => {
                println!("{f}");
                failed += 1;
            }
        }
    }
    println!(
        "{} seeds, {failed} failed; {} acked, {} leader changes, {} faults ({} crashes, {} power losses, {} clean restarts, {} cuts, {} pauses, {} controller failovers), {} copier restarts, {} messages dropped, {} duplicated; {} transactions committed, {} aborted",
        cli.seeds, totals.acked, totals.leader_changes, totals.faults(), totals.crashes,
        totals.power_losses, totals.clean_restarts, totals.cuts, totals.pauses, totals.controller_failovers,
        totals.copier_restarts, totals.dropped, totals.duplicated, totals.txn_commits, totals.txn_aborts
    );
    if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
