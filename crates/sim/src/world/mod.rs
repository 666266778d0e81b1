//! One simulated cluster run: a controller, brokers and producers exchanging messages over the
//! simulated network in one thread, with faults injected from the run's seed, and the
//! invariants checked after every step.

use std::collections::VecDeque;
use std::path::Path;

use odradek_controller::managers::ControllerSettings;
use odradek_log::LogConfig;

use crate::broker::{BrokerSettings, SimBroker, CLUSTER_ID};
use crate::client::Producer;
use crate::consumer::Consumer;
use crate::controller::SimController;
use crate::copier::Copier;
use crate::invariants::{Checker, Violation};
use crate::message::{Message, Node};
use crate::net::{Envelope, NetFaults, Network};
use crate::rng::SimRng;

mod faults;

/// What a run simulates.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: the same seed replays the same run.
    pub seed: u64,
    /// Steps with faults (each 1 to 5 simulated ms); a quiet end follows.
    pub steps: u64,
    /// Brokers.
    pub brokers: i32,
    /// Partitions of the one topic.
    pub partitions: i32,
    /// Its replication factor.
    pub replication_factor: i32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: usize,
    /// Producers (every other one idempotent), spread over the partitions.
    pub producers: usize,
    /// Consumers of one group, each assigned a partition, committing offsets.
    pub consumers: usize,
    /// Transactional copy loops, each copying a partition of the data topic to a partition of
    /// the output topic (read by a read_committed consumer).
    pub copiers: usize,
    /// Brokers that may be down at once.
    pub max_brokers_down: usize,
    /// `flush.messages=1` (fsync every append), and crashes may then be power losses that
    /// lose what was not fsynced. Without it, crashes are kill -9 (the page cache survives).
    pub fsync: bool,
    /// Network faults.
    pub net: NetFaults,
    /// Probability per step of a broker crash, of a network cut, of a pause (SIGSTOP), of a
    /// controller failover.
    pub fault_rate: f64,
    /// A known way to lose acknowledged data, switched on to show the invariants catch it.
    pub hazard: Option<Hazard>,
}

/// Configurations and shortcuts known to lose acknowledged records, which the invariants
/// must catch (a checker that never fails proves nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    /// Leaders answer a produce once it is in their own log (acks=1 semantics) while the
    /// producer counts it as acks=all.
    AckBeforeReplication,
    /// `unclean.leader.election.enable=true`: a replica outside the ISR may lead.
    UncleanLeaderElection,
    /// Crashes may be power losses while appends are not fsynced (Kafka's default flush
    /// settings rely on replicas not failing together).
    PowerLossWithoutFsync,
    /// Consumers are served up to the log end, past the high watermark.
    ReadUncommitted,
    /// The group coordinator acknowledges an offset commit once appended, before the ISR has it.
    CommitBeforeReplication,
    /// read_committed fetches are answered without their aborted transactions, so consumers
    /// cannot tell aborted batches from committed ones.
    ReadCommittedWithoutAbortedList,
    /// A restarted broker applies the images it replays as soon as it reaches the offset
    /// committed when it asked, before its own registration moved its old leaderships away:
    /// it may lead again, briefly, under its previous process's epoch, and act on a log tail
    /// the ISR never had (Odradek did this until the simulation found it).
    ActBeforeRegistration,
}

impl SimConfig {
    /// The defaults for `seed`: three brokers, RF 3, `min.insync.replicas=2`, two partitions,
    /// four producers, two consumers, a lossy network and frequent faults; `fsync` on odd
    /// seeds; two brokers down at once allowed on every third seed.
    pub fn for_seed(seed: u64, steps: u64) -> Self {
        Self {
            seed,
            steps,
            brokers: 3,
            partitions: 2,
            replication_factor: 3,
            min_insync_replicas: 2,
            producers: 4,
            consumers: 2,
            copiers: 2,
            max_brokers_down: if seed.is_multiple_of(3) { 2 } else { 1 },
            fsync: seed % 2 == 1,
            net: NetFaults {
                drop: 0.01,
                duplicate: 0.01,
                max_delay_ms: 20,
            },
            fault_rate: 0.0005,
            hazard: None,
        }
    }
}

/// What a run did, for the gates and the report.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Steps run (faulty and quiet).
    pub steps: u64,
    /// Simulated milliseconds.
    pub sim_ms: i64,
    /// Batches acknowledged to producers.
    pub acked: u64,
    /// Batches consumers read.
    pub consumed: u64,
    /// Consumer restarts (resuming from the committed offset).
    pub consumer_restarts: u64,
    /// Transactions the copy loops committed and had acknowledged.
    pub txn_commits: u64,
    /// Transactions the copy loops aborted and had acknowledged.
    pub txn_aborts: u64,
    /// Copy loop sessions (InitProducerId answered; a restart or a fence starts a new one).
    pub txn_sessions: u64,
    /// Copy loop restarts.
    pub copier_restarts: u64,
    /// Committed offsets fetched after a commit had been acknowledged (checked unless a
    /// deposed coordinator answered).
    pub offset_fetches_checked: u64,
    /// Producer retries.
    pub retries: u64,
    /// Leader changes committed.
    pub leader_changes: u64,
    /// Broker crashes (kill -9), power losses among them.
    pub crashes: u64,
    /// Power losses.
    pub power_losses: u64,
    /// Clean stops and restarts (logs closed with the clean-shutdown marker).
    pub clean_restarts: u64,
    /// Network cuts.
    pub cuts: u64,
    /// Pauses (SIGSTOP).
    pub pauses: u64,
    /// Controller failovers.
    pub controller_failovers: u64,
    /// Messages dropped, duplicated, sent.
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Messages sent.
    pub sent: u64,
    /// Produce answers by Kafka error code (0: acknowledged).
    pub produce_answers: std::collections::BTreeMap<i16, u64>,
    /// The run's last events.
    pub trace: Vec<String>,
}

impl Stats {
    /// Faults injected (crashes, cuts, pauses, failovers, lost and duplicated messages).
    pub fn faults(&self) -> u64 {
        self.crashes + self.clean_restarts + self.cuts + self.pauses + self.controller_failovers
    }
}

/// A failed run: the seed, the step, the broken invariant and the last events.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed to replay it.
    pub seed: u64,
    /// The step where it broke.
    pub step: u64,
    /// The invariant and what broke it.
    pub violation: Violation,
    /// The events that concern it, oldest first: every fault, and the events of the
    /// partitions and clients the violation names (at most [`FOCUSED_EVENTS`]).
    pub trace: Vec<String>,
    /// The last events before it, whatever they concern.
    pub last: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} failed at step {}: {}: {}",
            self.seed, self.step, self.violation.invariant, self.violation.detail
        )?;
        writeln!(
            f,
            "faults, and the events of what the violation names (the last {}):",
            self.trace.len()
        )?;
        for e in &self.trace {
            writeln!(f, "  {e}")?;
        }
        writeln!(f, "the last events of all:")?;
        for e in &self.last {
            writeln!(f, "  {e}")?;
        }
        write!(
            f,
            "replay: cargo run -p odradek-sim -- --seed {} --steps <steps>",
            self.seed
        )
    }
}

/// Events kept for a failure's trace.
const TRACE_EVENTS: usize = 20_000;

/// Events of a failure's focused trace, and of its tail of everything.
const FOCUSED_EVENTS: usize = 300;
const LAST_EVENTS: usize = 40;

/// Steps between full log checks.
const LOG_CHECK_EVERY: u64 = 50;

struct World {
    config: SimConfig,
    now: i64,
    rng: SimRng,
    net: Network,
    controllers: Vec<SimController>,
    brokers: Vec<SimBroker>,
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
    copiers: Vec<Copier>,
    checker: Checker,
    trace: VecDeque<String>,
    stats: Stats,
    /// (time, broker) restarts due.
    restarts: Vec<(i64, i32)>,
    heal_at: Option<i64>,
    /// (time, controller) restart due.
    controller_back_at: Option<(i64, u64)>,
    /// The active controller last seen, for the trace.
    active: Option<u64>,
    /// A broken invariant seen while delivering (reported after the step).
    violation: Option<Violation>,
    /// The leader kill of [`World::ensure_a_leader_change`] happened.
    forced_failover: bool,
    /// The admin client's answer, while the topic is created.
    admin_answer: Option<odradek_controller::pb::CreateTopicsResponse>,
}

/// The controller quorum's voters.
const CONTROLLERS: [u64; 3] = [1, 2, 3];

/// The topic the copy loops write to.
const OUTPUT_TOPIC: &str = "sim-out";

/// Runs one simulation with its logs under `dir`.
pub fn run(config: &SimConfig, dir: &Path) -> Result<Stats, Box<Failure>> {
    let mut w = World::new(config.clone(), dir);
    let total = config.steps + quiet_steps(config);
    for step in 0..total {
        let faulty = step < config.steps;
        if faulty && step >= config.steps / 2 {
            w.ensure_a_leader_change();
        }
        if faulty {
            w.inject_faults();
        } else if step == config.steps {
            w.end_faults();
        }
        w.step(!faulty);
        let delivered = w.violation.take().map_or(Ok(()), Err);
        let checked = delivered
            .and_then(|()| w.checker.check_step(w.now, &w.brokers, &w.controllers))
            .and_then(|()| {
                if step % LOG_CHECK_EVERY == 0 {
                    w.checker.check_logs(&w.brokers)
                } else {
                    Ok(())
                }
            });
        if let Err(violation) = checked {
            return Err(w.failure(step, violation));
        }
        for b in &mut w.brokers {
            b.leader_high_watermarks.clear();
        }
        w.stats.steps = step + 1;
    }
    w.finish()
}

/// Steps after the faults: enough for restarts, fencing and catching up.
fn quiet_steps(config: &SimConfig) -> u64 {
    let _ = config;
    8_000
}

impl World {
    fn new(config: SimConfig, dir: &Path) -> Self {
        let mut rng = SimRng::new(config.seed);
        let settings = ControllerSettings {
            cluster_id: CLUSTER_ID.to_string(),
            broker_session_timeout_ms: 3000,
            auto_leader_rebalance_enable: false,
            unclean_leader_election_enable: config.hazard == Some(Hazard::UncleanLeaderElection),
            ..ControllerSettings::default()
        };
        let controllers: Vec<SimController> = CONTROLLERS
            .iter()
            .map(|id| {
                SimController::new(*id, CONTROLLERS.to_vec(), settings.clone(), rng.next_u64())
            })
            .collect();
        let mut props = std::collections::HashMap::new();
        props.insert("segment.bytes".to_string(), "4096".to_string());
        if config.fsync {
            props.insert("flush.messages".to_string(), "1".to_string());
        }
        let (log, _) = LogConfig::from_properties(&props).expect("valid sim log config");
        let broker_settings = BrokerSettings {
            replica_lag_time_max_ms: 2000,
            heartbeat_interval_ms: 300,
            min_insync_replicas: config.min_insync_replicas,
            fetch_backoff_ms: 30,
            request_timeout_ms: 1500,
            hw_checkpoint_interval_ms: 1000,
            log,
            ack_before_replication: config.hazard == Some(Hazard::AckBeforeReplication),
            read_uncommitted: config.hazard == Some(Hazard::ReadUncommitted),
            commit_before_replication: config.hazard == Some(Hazard::CommitBeforeReplication),
            ignore_aborted_transactions: config.hazard
                == Some(Hazard::ReadCommittedWithoutAbortedList),
            act_before_registration: config.hazard == Some(Hazard::ActBeforeRegistration),
        };
        let mut brokers: Vec<SimBroker> = (1..=config.brokers)
            .map(|id| {
                SimBroker::new(
                    id,
                    dir.join(format!("broker-{id}")),
                    broker_settings.clone(),
                )
                .with_controllers(CONTROLLERS.to_vec())
            })
            .collect();
        for b in &mut brokers {
            b.start(0, &mut rng);
        }
        let mut w = Self {
            now: 0,
            net: Network::default(),
            controllers,
            brokers,
            producers: Vec::new(),
            consumers: Vec::new(),
            copiers: Vec::new(),
            checker: Checker::default(),
            trace: VecDeque::new(),
            stats: Stats::default(),
            restarts: Vec::new(),
            heal_at: None,
            controller_back_at: None,
            active: None,
            violation: None,
            forced_failover: false,
            admin_answer: None,
            rng,
            config,
        };
        // A controller is elected, brokers register and are unfenced; then the topic is
        // created through the active controller, as an admin client would.
        for _ in 0..20_000 {
            let ready = w
                .controllers
                .iter()
                .find(|c| c.voter.is_leader())
                .is_some_and(|c| c.voter.image().cluster.unfenced().count() == w.brokers.len());
            if ready {
                break;
            }
            w.step(false);
        }
        let topics = w.create_topics();
        let (topic, offsets) = (topics[0], topics[1]);
        w.producers = (0..w.config.producers)
            .map(|i| {
                let partition = (topic, (i as i32) % w.config.partitions);
                let id = (i % 2 == 1).then_some(1000 + i as i64);
                Producer::new(i, partition, id, 1500)
            })
            .collect();
        w.consumers = (0..w.config.consumers)
            .map(|i| {
                let partition = (topic, (i as i32) % w.config.partitions);
                Consumer::new(i, "sim-group", partition, (offsets, 0), 1500)
            })
            .collect();
        for i in 0..w.config.copiers {
            // Copy loop i copies the last data partitions (written by plain and idempotent
            // producers alike) to partition i of the output topic, which a read_committed
            // consumer reads.
            let input = (
                topic,
                w.config.partitions - 1 - (i as i32) % w.config.partitions,
            );
            let output = (topics[3], i as i32);
            w.copiers.push(Copier::new(
                i,
                input,
                output,
                OUTPUT_TOPIC,
                (offsets, 0),
                (topics[2], 0),
                1500,
            ));
            let reader = w.consumers.len();
            w.consumers.push(
                Consumer::new(reader, "sim-out-readers", output, (offsets, 0), 1500)
                    .read_committed(),
            );
        }
        w
    }

    /// Creates the data topic, `__consumer_offsets`, `__transaction_state` (one partition
    /// each, every broker a replica) and the copy loops' output topic through whichever
    /// controller is active, retrying as an admin client; returns their ids in that order.
    fn create_topics(&mut self) -> [odradek_common::Uuid; 4] {
        let topic = |name: &str, partitions: i32| odradek_controller::pb::CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: self.config.replication_factor,
            ..Default::default()
        };
        let names = [
            "sim",
            odradek_coordinator::OFFSETS_TOPIC,
            odradek_coordinator::txn::TRANSACTION_STATE_TOPIC,
            OUTPUT_TOPIC,
        ];
        let request = odradek_controller::pb::CreateTopicsRequest {
            topics: vec![
                topic(names[0], self.config.partitions),
                topic(names[1], 1),
                topic(names[2], 1),
                topic(names[3], self.config.copiers.max(1) as i32),
            ],
            validate_only: false,
        };
        for attempt in 0..200u64 {
            let to = CONTROLLERS[(attempt % CONTROLLERS.len() as u64) as usize];
            self.send_all(
                Node::Admin,
                vec![(Node::Controller(to), Message::CreateTopics(request.clone()))],
            );
            for _ in 0..500 {
                self.step(false);
                if self.admin_answer.take().is_some() {
                    break;
                }
            }
            // Created by this attempt or an earlier one whose answer was lost.
            let image = self
                .controllers
                .iter()
                .find(|c| c.voter.is_leader())
                .map(|c| c.voter.image());
            if let Some(image) = image {
                let ids: Vec<_> = names
                    .iter()
                    .filter_map(|n| image.topics.get_by_name(n).map(|t| t.id))
                    .collect();
                if let Ok(ids) = ids.try_into() {
                    return ids;
                }
            }
        }
        panic!("seed {}: the topics could not be created", self.config.seed);
    }

    fn event(&mut self, what: String) {
        if self.trace.len() == TRACE_EVENTS {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>7} ms  {what}", self.now));
    }

    fn failure(&self, step: u64, violation: Violation) -> Box<Failure> {
        let trace = self.focus(&violation.detail);
        let last = self
            .trace
            .iter()
            .skip(self.trace.len().saturating_sub(LAST_EVENTS))
            .cloned()
            .collect();
        Box::new(Failure {
            seed: self.config.seed,
            step,
            violation,
            trace,
            last,
        })
    }

    /// The events a violation's reader needs: every fault and controller change, and the
    /// events of the partitions and clients it names (all events when it names none).
    fn focus(&self, detail: &str) -> Vec<String> {
        let mut topics: Vec<String> = self
            .brokers
            .iter()
            .flat_map(|b| b.image.topics.by_id.keys().copied())
            .filter(|id| detail.contains(&id.to_string()))
            .map(short)
            .collect();
        topics.sort();
        topics.dedup();
        let actors: Vec<String> = ["producer", "consumer", "copier"]
            .iter()
            .flat_map(|kind| (0..16).map(move |i| format!("{kind} {i}")))
            .filter(|a| {
                detail.match_indices(a.as_str()).any(|(at, _)| {
                    !detail[at + a.len()..].starts_with(|c: char| c.is_ascii_digit())
                })
            })
            .collect();
        let named = |e: &str| {
            topics.iter().any(|t| e.contains(t.as_str()))
                || actors
                    .iter()
                    .any(|a| e.starts_with(&format!("{a}:")) || e.starts_with(&format!("{a} ")))
        };
        let focused: Vec<&String> = self
            .trace
            .iter()
            .filter(|line| {
                if topics.is_empty() && actors.is_empty() {
                    return true;
                }
                // The event after its "<time> ms  " prefix.
                let e = line.split_once(" ms  ").map_or(line.as_str(), |(_, e)| e);
                let about_one = ["metadata", "producer", "consumer", "copier"]
                    .iter()
                    .any(|k| e.starts_with(k));
                let count = e.starts_with(|c: char| c.is_ascii_digit());
                named(e) || !(about_one || count)
            })
            .collect();
        focused
            .iter()
            .skip(focused.len().saturating_sub(FOCUSED_EVENTS))
            .map(|e| e.to_string())
            .collect()
    }

    /// Delivers what is due, runs every node's timers, then moves time on.
    fn step(&mut self, quiet: bool) {
        while let Some(env) = self.net.next_due(self.now) {
            self.deliver(env);
        }
        for i in 0..self.controllers.len() {
            let from = self.controllers[i].node();
            let out = self.controllers[i].tick(self.now);
            self.send_all(from, out);
        }
        let active = self
            .controllers
            .iter()
            .find(|c| c.voter.is_leader())
            .map(|c| (c.voter.id, c.voter.term()));
        if active.map(|a| a.0) != self.active {
            self.active = active.map(|a| a.0);
            if let Some((id, term)) = active {
                self.event(format!("controller {id} is active (term {term})"));
            }
        }
        for change in std::mem::take(&mut self.checker.partition_changes) {
            self.event(change);
        }
        let leader_changes = self.checker.leader_changes;
        for i in 0..self.brokers.len() {
            if self.brokers[i].is_running(self.now) {
                let from = Node::Broker(self.brokers[i].id);
                let out = self.brokers[i].tick(self.now);
                self.send_all(from, out);
            }
        }
        let brokers: Vec<i32> = self.brokers.iter().map(|b| b.id).collect();
        for i in 0..self.producers.len() {
            let out = self.producers[i].tick(self.now, &brokers, quiet, &mut self.rng);
            self.send_all(Node::Client(i), out);
        }
        for i in 0..self.consumers.len() {
            let out = self.consumers[i].tick(self.now, &brokers, &mut self.rng);
            self.send_all(Node::Consumer(i), out);
        }
        for i in 0..self.copiers.len() {
            let out = self.copiers[i].tick(self.now, &brokers, quiet, &mut self.rng);
            self.send_all(Node::Copier(i), out);
        }
        if self.checker.leader_changes != leader_changes {
            let n = self.checker.leader_changes - leader_changes;
            self.event(format!("{n} partition leader change(s) committed"));
        }
        self.now += self.rng.between(1, 5);
    }

    fn send_all(&mut self, from: Node, out: Vec<(Node, Message)>) {
        for (to, message) in out {
            let to_incarnation = self.incarnation(to);
            let envelope = Envelope {
                from,
                to,
                to_incarnation,
                message,
                seq: 0,
            };
            self.net
                .send(self.now, &self.config.net, &mut self.rng, envelope);
        }
    }

    fn incarnation(&self, node: Node) -> u64 {
        match node {
            Node::Broker(id) => self
                .brokers
                .iter()
                .find(|b| b.id == id)
                .map_or(0, |b| b.incarnation),
            _ => 0,
        }
    }

    fn deliver(&mut self, env: Envelope) {
        match env.to {
            Node::Controller(id) => {
                let Some(i) = self.controllers.iter().position(|c| c.voter.id == id) else {
                    return;
                };
                let out = self.controllers[i].handle(self.now, env.from, env.message);
                self.send_all(Node::Controller(id), out);
            }
            Node::Consumer(i) => {
                let tp = self.consumers[i].partition();
                let offsets = self.consumers[i].offsets_partition();
                if let Some(seen) = self.consumers[i].handle(self.now, env.from, env.message) {
                    match &seen {
                        crate::consumer::Observation::Read { batches, .. } => {
                            self.stats.consumed += batches.len() as u64;
                        }
                        crate::consumer::Observation::Fetched {
                            offset,
                            acknowledged,
                            coordinator_epoch,
                            ..
                        } => {
                            self.stats.offset_fetches_checked += u64::from(acknowledged.is_some());
                            self.event(format!(
                                "consumer {i}: committed offset {offset:?} from {:?} (coordinator epoch {coordinator_epoch})",
                                env.from
                            ));
                        }
                        crate::consumer::Observation::Committed { offset, broker } => {
                            self.event(format!(
                                "consumer {i}: commit of {offset} acknowledged by broker {broker}"
                            ));
                        }
                    }
                    if let Err(v) = self.checker.check_consumed(tp, offsets, &seen) {
                        self.violation.get_or_insert(v);
                    }
                }
            }
            Node::Copier(i) => {
                let c = &mut self.copiers[i];
                let (commits, aborts, sessions) = (c.commits, c.aborts, c.sessions);
                c.handle(self.now, env.message, &mut self.rng);
                let c = &self.copiers[i];
                if c.commits > commits {
                    let upto = c.acknowledged_commits.last().copied().unwrap_or(0);
                    self.event(format!(
                        "copier {i}: commit up to input offset {upto} acknowledged"
                    ));
                } else if c.aborts > aborts {
                    self.event(format!("copier {i}: abort acknowledged"));
                } else if c.sessions > sessions {
                    self.event(format!(
                        "copier {i}: new session, producer {:?} (the last one ended by {:?})",
                        c.producer_id, c.ended_by
                    ));
                }
            }
            Node::Admin => {
                if let Message::CreateTopicsAnswer(a) = env.message {
                    self.admin_answer = Some(a);
                }
            }
            Node::Broker(id) => {
                let Some(i) = self.brokers.iter().position(|b| b.id == id) else {
                    return;
                };
                let b = &self.brokers[i];
                if !b.up || b.incarnation != env.to_incarnation {
                    return;
                }
                if self.now < b.paused_until_ms {
                    let at = b.paused_until_ms;
                    self.net.defer(at, env);
                    return;
                }
                if let Message::ProduceAnswer { .. } = env.message {
                    return;
                }
                let out = self.brokers[i].handle(self.now, env.from, env.message);
                self.send_all(Node::Broker(id), out);
            }
            Node::Client(i) => {
                if let Message::ProduceAnswer { result, .. } = &env.message {
                    let code = result.err().unwrap_or(0);
                    *self.stats.produce_answers.entry(code).or_default() += 1;
                }
                let acked_before = self.producers[i].acked.len();
                let out = self.producers[i].handle(self.now, env.message);
                if self.producers[i].acked.len() > acked_before {
                    self.stats.acked += 1;
                    let a = self.producers[i].acked.last().cloned();
                    if let Some(a) = a {
                        let tp = self.producers[i].partition();
                        self.event(format!(
                            "producer {i} acked at {}-{} offset {} ({} records)",
                            short(tp.0),
                            tp.1,
                            a.offset,
                            a.record_count
                        ));
                    }
                }
                self.send_all(Node::Client(i), out);
            }
        }
    }

    fn finish(mut self) -> Result<Stats, Box<Failure>> {
        let step = self.stats.steps;
        if let Err(v) = self.checker.check_logs(&self.brokers) {
            return Err(self.failure(step, v));
        }
        if let Err(v) = self
            .checker
            .check_acknowledged(&self.brokers, &self.producers)
        {
            return Err(self.failure(step, v));
        }
        if let Err(v) =
            self.checker
                .check_transactions(&self.brokers, &self.copiers, &self.consumers)
        {
            return Err(self.failure(step, v));
        }
        self.stats.txn_commits = self.copiers.iter().map(|c| c.commits).sum();
        self.stats.txn_aborts = self.copiers.iter().map(|c| c.aborts).sum();
        self.stats.txn_sessions = self.copiers.iter().map(|c| c.sessions).sum();
        self.stats.sim_ms = self.now;
        self.stats.leader_changes = self.checker.leader_changes;
        self.stats.retries = self.producers.iter().map(|p| p.retries).sum();
        self.stats.dropped = self.net.dropped;
        self.stats.duplicated = self.net.duplicated;
        self.stats.sent = self.net.sent;
        self.stats.trace = self.trace.into_iter().collect();
        Ok(self.stats)
    }
}

/// A topic id shortened for traces.
fn short(id: odradek_common::Uuid) -> String {
    id.to_string().chars().take(8).collect()
}
