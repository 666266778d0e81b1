//! The simulation as a test: a bounded number of seeds (32, or `ODRADEK_SIM_SEEDS`) keep every
//! invariant and pass the gates, a seed replays exactly, and each known way to lose acknowledged
//! data is caught (so the checker is not vacuous). `scripts/sim.sh` runs thousands of seeds.

use odradek_sim::{gate, run, Hazard, SimConfig, Stats};

/// Steps per run in CI (about 60 simulated seconds of faults, then a quiet end).
const STEPS: u64 = 20_000;

/// Seeds that once broke an invariant, each with what it found; they must keep passing.
/// - 79: `transactional_copies_are_exactly_once`. A broker restarted by kill -9 applied the
///   images it replayed before its new registration was in them, led `__transaction_state`
///   again under its old epoch, loaded a PrepareCommit its followers never had and wrote its
///   commit markers; the real leader then aborted the transaction, so the output kept a copy
///   whose offsets commit was lost, and the input was copied twice.
/// - 160: `replicas_never_fail`. The same stale leadership, on a data partition, left a
///   follower a divergence it could not truncate to.
const PINNED: &[u64] = &[79, 160];

fn run_seed(config: &SimConfig) -> Result<Stats, String> {
    let dir = odradek_sim::scratch_dir().map_err(|e| e.to_string())?;
    run(config, dir.path()).map_err(|f| f.to_string())
}

#[test]
fn seeds_keep_every_invariant() {
    let seeds: u64 = std::env::var("ODRADEK_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let mut faults = 0;
    let mut power_losses = 0;
    let mut offset_fetches = 0;
    let (mut txn_commits, mut txn_aborts) = (0, 0);
    for seed in (1..=seeds).chain(PINNED.iter().copied()) {
        let stats = run_seed(&SimConfig::for_seed(seed, STEPS)).unwrap_or_else(|f| panic!("{f}"));
        gate(&stats).unwrap_or_else(|e| panic!("seed {seed}: vacuous run: {e}"));
        faults += stats.faults();
        power_losses += stats.power_losses;
        offset_fetches += stats.offset_fetches_checked;
        txn_commits += stats.txn_commits;
        txn_aborts += stats.txn_aborts;
    }
    assert!(
        txn_commits > seeds && txn_aborts > 0,
        "{txn_commits} transactions committed, {txn_aborts} aborted over {seeds} seeds"
    );
    assert!(
        offset_fetches > 0,
        "no committed offset was checked over {seeds} seeds"
    );
    assert!(faults > seeds * 10, "{faults} faults over {seeds} seeds");
    assert!(power_losses > 0, "no power loss over {seeds} seeds");
}

#[test]
fn a_seed_replays_exactly() {
    let config = SimConfig::for_seed(3, 8_000);
    let a = run_seed(&config).expect("seed 3 passes");
    let b = run_seed(&config).expect("seed 3 passes");
    assert_eq!(a.trace, b.trace);
    assert_eq!(
        (a.acked, a.leader_changes, a.faults(), a.sent, a.dropped),
        (b.acked, b.leader_changes, b.faults(), b.sent, b.dropped)
    );
    assert!(a.acked > 0);
}

/// Each hazard loses acknowledged or committed data on some of the first seeds, and the
/// checker says which invariant broke.
#[test]
fn known_ways_to_lose_data_are_caught() {
    let cases = [
        (Hazard::AckBeforeReplication, "acknowledged_records_survive"),
        (
            Hazard::PowerLossWithoutFsync,
            "committed_records_are_never_lost",
        ),
        (
            Hazard::UncleanLeaderElection,
            "committed_records_are_never_lost",
        ),
        (
            Hazard::ReadUncommitted,
            "consumers_read_only_committed_records",
        ),
        (
            Hazard::CommitBeforeReplication,
            "acknowledged_offset_commits_are_never_lost",
        ),
        (
            Hazard::ReadCommittedWithoutAbortedList,
            "read_committed_never_shows_aborted_data",
        ),
    ];
    for (hazard, invariant) in cases {
        let caught = (1..=16).find_map(|seed| {
            let mut config = SimConfig::for_seed(seed, STEPS);
            config.hazard = Some(hazard);
            if hazard == Hazard::PowerLossWithoutFsync {
                config.fsync = false;
            }
            run_seed(&config).err().filter(|f| f.contains(invariant))
        });
        assert!(
            caught.is_some(),
            "{hazard:?} was never caught by {invariant} in 16 seeds"
        );
    }
}

/// The bug the simulation found, switched back on, breaks the pinned seeds again (so they
/// keep testing what they were pinned for).
#[test]
fn a_restarted_broker_acting_before_its_registration_is_caught() {
    for (seed, invariant) in [
        (79, "transactional_copies_are_exactly_once"),
        (160, "replicas_never_fail"),
    ] {
        let mut config = SimConfig::for_seed(seed, STEPS);
        config.hazard = Some(Hazard::ActBeforeRegistration);
        let failure = run_seed(&config).expect_err("the hazard breaks the seed");
        assert!(failure.contains(invariant), "seed {seed}: {failure}");
    }
}
