//! The simulation as a test: a bounded number of seeds (32, or `ODRADEK_SIM_SEEDS`) keep every
//! invariant and pass the gates, a seed replays exactly, and each known way to lose acknowledged
//! data is caught (so the checker is not vacuous). `scripts/sim.sh` runs thousands of seeds.

use odradek_sim::{gate, run, Hazard, SimConfig, Stats};

/// Steps per run in CI (about 60 simulated seconds of faults, then a quiet end).
const STEPS: u64 = 20_000;

/// Seeds that once broke an invariant, each with what it found; they must keep passing.
const PINNED: &[u64] = &[];

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
    for seed in (1..=seeds).chain(PINNED.iter().copied()) {
        let stats = run_seed(&SimConfig::for_seed(seed, STEPS)).unwrap_or_else(|f| panic!("{f}"));
        gate(&stats).unwrap_or_else(|e| panic!("seed {seed}: vacuous run: {e}"));
        faults += stats.faults();
        power_losses += stats.power_losses;
        offset_fetches += stats.offset_fetches_checked;
    }
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
