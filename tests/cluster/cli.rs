//! The `odradek` CLI as a new user runs it, against `odradek-broker --dev` and against a
//! cluster of three controller and three broker processes: every topics subcommand, configs,
//! the quorum, produce from stdin, consume to stdout, the perf tools, and the exit codes scripts
//! rely on.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{binary, run_ok, Node};

/// What the scenario expects of the cluster it runs against.
struct Shape {
    bootstrap: String,
    brokers: Vec<i32>,
    voters: Vec<i32>,
    replication_factor: usize,
}

/// `odradek-broker --dev`, on free ports.
fn start_dev(dir: &Path) -> (Vec<Node>, Shape) {
    let (node, bootstrap) = crate::harness::start_dev(dir);
    let shape = Shape {
        bootstrap,
        brokers: vec![1],
        voters: vec![1],
        replication_factor: 1,
    };
    (vec![node], shape)
}

/// Controllers 100-102 and brokers 1-3, each its own process and directory.
fn start_cluster(dir: &Path) -> (Vec<Node>, Shape) {
    let (nodes, bootstrap) = crate::harness::start_cluster(dir);
    let shape = Shape {
        // One address is what a user types; the client learns the others from Metadata.
        bootstrap: bootstrap[1].clone(),
        brokers: vec![1, 2, 3],
        voters: vec![100, 101, 102],
        replication_factor: 3,
    };
    (nodes, shape)
}

#[test]
fn cli_against_dev() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nodes, shape) = start_dev(dir.path());
    scenario(&shape);
}

#[test]
fn cli_against_three_controllers_and_three_brokers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nodes, shape) = start_cluster(dir.path());
    scenario(&shape);
}

fn odradek(bootstrap: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary("odradek"))
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .output()
        .expect("run odradek")
}

/// `odradek` started in the background with its standard streams piped.
fn spawn_odradek(bootstrap: &str, args: &[&str]) -> std::process::Child {
    Command::new(binary("odradek"))
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn odradek")
}

fn scenario(shape: &Shape) {
    let bootstrap = shape.bootstrap.clone();
    let rf = shape.replication_factor.to_string();
    let ok = |args: &[&str]| {
        let out = odradek(&bootstrap, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    ok(&[
        "topics",
        "create",
        "--topic",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        &rf,
        "--config",
        "retention.ms=60000",
    ]);
    let dup = odradek(
        &bootstrap,
        &["topics", "create", "--topic", "orders", "--partitions", "3"],
    );
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("TOPIC_ALREADY_EXISTS"));
    assert_eq!(
        ok(&["topics", "list"]).lines().collect::<Vec<_>>(),
        vec!["orders"]
    );

    let describe = ok(&["topics", "describe", "--topic", "orders"]);
    assert!(describe.contains("Topic: orders\tTopicId: "), "{describe}");
    assert!(
        describe.contains(&format!(
            "PartitionCount: 3\tReplicationFactor: {rf}\tConfigs: retention.ms=60000"
        )),
        "{describe}"
    );
    // Per partition, as kafka-topics prints it: the leader is one of the replicas, which are
    // all in sync on a new topic, and leaders are spread over the brokers.
    let mut leaders = BTreeSet::new();
    for p in 0..3 {
        let prefix = format!("\tTopic: orders\tPartition: {p}\tLeader: ");
        let line = describe
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line for partition {p}:\n{describe}"));
        let fields: Vec<&str> = line.split('\t').collect();
        let ids = |field: &str| -> Vec<i32> {
            field
                .split_once(": ")
                .map(|(_, v)| v.split(',').map(|n| n.parse().expect("id")).collect())
                .expect("field")
        };
        let leader = ids(fields[3])[0];
        let replicas = ids(fields[4]);
        let isr = ids(fields[5]);
        assert_eq!(replicas.len(), shape.replication_factor, "{line}");
        assert!(replicas.iter().all(|r| shape.brokers.contains(r)), "{line}");
        assert!(replicas.contains(&leader), "{line}");
        assert_eq!(
            isr.iter().collect::<BTreeSet<_>>(),
            replicas.iter().collect(),
            "{line}"
        );
        leaders.insert(leader);
    }
    assert_eq!(leaders.len(), shape.brokers.len().min(3), "{describe}");

    let mut produce = spawn_odradek(
        &bootstrap,
        &["produce", "--topic", "orders", "--key-separator", ":"],
    );
    let input: String = (0..30).map(|i| format!("k{}:v{i}\n", i % 4)).collect();
    produce
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = produce.wait_with_output().expect("produce");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let consumed = ok(&[
        "consume",
        "--topic",
        "orders",
        "--from-beginning",
        "--max-messages",
        "30",
        "--print-key",
        "--key-separator",
        ":",
    ]);
    let mut got: Vec<&str> = consumed.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = (0..30).map(|i| format!("k{}:v{i}", i % 4)).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // One partition, from an offset: records of one key stay in order in their partition.
    let p0 = ok(&[
        "consume",
        "--topic",
        "orders",
        "--partition",
        "0",
        "--offset",
        "0",
        "--timeout-ms",
        "500",
        "--print-key",
        "--key-separator",
        ":",
    ]);
    for key in ["k0", "k1", "k2", "k3"] {
        let values: Vec<u32> = p0
            .lines()
            .filter(|l| l.starts_with(&format!("{key}:")))
            .map(|l| l[4..].parse().expect("number"))
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order: {values:?}"
        );
    }

    ok(&["topics", "alter", "--topic", "orders", "--partitions", "5"]);
    assert!(ok(&["topics", "describe", "--topic", "orders"]).contains("PartitionCount: 5"));
    ok(&["topics", "delete", "--topic", "orders"]);
    assert_eq!(ok(&["topics", "list"]), "");

    // Perf tools print Kafka's perf-test lines; six partitions spread over every broker.
    ok(&["topics", "create", "--topic", "perf", "--partitions", "6"]);
    let p = ok(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--records",
        "6000",
        "--record-size",
        "100",
    ]);
    assert!(
        p.starts_with("6000 records sent, ") && p.contains(" ms 99.9th."),
        "{p}"
    );
    let c = ok(&["perf", "consume", "--topic", "perf", "--records", "6000"]);
    let last = c.lines().last().expect("a result line");
    assert_eq!(last.split(", ").nth(4), Some("6000"), "{c}");
    // Every partition got its share (the producer spreads records evenly).
    let mut total = 0;
    for p in 0..6 {
        let out = ok(&[
            "consume",
            "--topic",
            "perf",
            "--partition",
            &p.to_string(),
            "--offset",
            "0",
            "--timeout-ms",
            "1000",
        ]);
        let n = out.lines().count();
        assert!((900..=1100).contains(&n), "partition {p}: {n} records");
        total += n;
    }
    assert_eq!(total, 6000);
    // A consumer group: the first member reads everything and commits; the next run of the
    // group resumes after the committed offsets and sees only what came later.
    let group_read = |extra: &[&str]| {
        let mut args = vec!["consume", "--topic", "perf", "--group", "cli-group"];
        args.extend_from_slice(extra);
        ok(&args)
    };
    let first = group_read(&["--from-beginning", "--max-messages", "6000"]);
    assert_eq!(first.lines().count(), 6000);
    assert_eq!(group_read(&["--timeout-ms", "1000"]).lines().count(), 0);
    ok(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--records",
        "12",
        "--record-size",
        "10",
    ]);
    assert_eq!(group_read(&["--timeout-ms", "1000"]).lines().count(), 12);
    // Stopped with SIGTERM (or Ctrl-C), a group consumer commits what it printed and leaves.
    let mut running = spawn_odradek(
        &bootstrap,
        &[
            "consume",
            "--topic",
            "perf",
            "--group",
            "stopped-group",
            "--from-beginning",
        ],
    );
    let stdout = running.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for _ in std::io::BufReader::new(stdout).lines() {
                lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.load(std::sync::atomic::Ordering::Relaxed) < 6012 {
        assert!(
            Instant::now() < deadline,
            "the group consumer printed too little"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run_ok(Command::new("kill").args(["-TERM", &running.id().to_string()]));
    let stopped = running.wait_with_output().expect("consume");
    counter.join().expect("reader");
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert_eq!(lines.load(std::sync::atomic::Ordering::Relaxed), 6012);
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("Processed a total of 6012 messages"));
    let after = ok(&["groups", "describe", "--group", "stopped-group"]);
    let committed: i64 = after
        .lines()
        .skip(1)
        .map(|l| {
            l.split('\t')
                .nth(3)
                .and_then(|o| o.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(committed, 6012, "{after}");
    // Groups live in the internal offsets topic, which `topics list` shows as kafka-topics does.
    let topics = ok(&["topics", "list"]);
    assert!(
        topics.lines().any(|l| l == "__consumer_offsets"),
        "{topics}"
    );
    let topics = ok(&["topics", "list", "--exclude-internal"]);
    assert!(!topics.contains("__consumer_offsets"), "{topics}");
    // The group as kafka-consumer-groups shows it: empty now, every partition caught up.
    let listed = ok(&["groups", "list"]);
    assert!(listed.contains("cli-group\tEmpty\tconsumer"), "{listed}");
    let described = ok(&["groups", "describe", "--group", "cli-group"]);
    let rows: Vec<Vec<&str>> = described
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 6, "{described}");
    let committed: i64 = rows
        .iter()
        .map(|r| r[3].parse::<i64>().expect("offset"))
        .sum();
    assert_eq!(committed, 6012, "{described}");
    assert!(rows.iter().all(|r| r[5] == "0"), "no lag: {described}");
    ok(&["groups", "delete", "--group", "cli-group"]);
    let gone = odradek(&bootstrap, &["groups", "describe", "--group", "cli-group"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("GROUP_ID_NOT_FOUND"));
    // A group consumer stalled past its session timeout (SIGSTOP) is expelled; when it resumes
    // it rejoins as a new member and goes on reading instead of failing.
    if shape.brokers.len() == 1 {
        let mut stalled = spawn_odradek(
            &bootstrap,
            &[
                "consume",
                "--topic",
                "perf",
                "--group",
                "stalled-group",
                "--max-messages",
                "6",
            ],
        );
        let pid = stalled.id().to_string();
        std::thread::sleep(Duration::from_secs(2));
        run_ok(Command::new("kill").args(["-STOP", &pid]));
        std::thread::sleep(Duration::from_secs(12)); // session.timeout.ms is 10 s
        let expelled = ok(&["groups", "describe", "--group", "stalled-group"]);
        assert_eq!(
            expelled.lines().count(),
            1,
            "no member owns anything: {expelled}"
        );
        run_ok(Command::new("kill").args(["-CONT", &pid]));
        // Produce once it is a member again (it starts from the latest offsets).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let d = ok(&["groups", "describe", "--group", "stalled-group"]);
            if d.lines().skip(1).any(|l| l.split('\t').nth(6) != Some("-")) {
                // Assigned; give it a moment to look up its start offsets.
                std::thread::sleep(Duration::from_secs(1));
                break;
            }
            assert!(Instant::now() < deadline, "did not rejoin: {d}");
            std::thread::sleep(Duration::from_millis(200));
        }
        ok(&[
            "perf",
            "produce",
            "--topic",
            "perf",
            "--records",
            "6",
            "--record-size",
            "10",
        ]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while stalled.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = stalled.kill();
                panic!("the resumed group consumer did not read the 6 new records");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = stalled.wait_with_output().expect("consume");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    }
    ok(&[
        "topics",
        "create",
        "--topic",
        "latency",
        "--partitions",
        "1",
    ]);
    let e = ok(&[
        "perf",
        "end-to-end",
        "--topic",
        "latency",
        "--records",
        "500",
        "--record-size",
        "64",
        "--throughput",
        "1000",
    ]);
    assert!(
        e.starts_with("500 records received, ") && e.contains(" ms 99.9th."),
        "{e}"
    );

    // Configs: set, read back with its source, delete, refuse a bad value naming the key.
    ok(&["topics", "create", "--topic", "conf"]);
    ok(&[
        "configs",
        "alter",
        "--entity",
        "topic",
        "--name",
        "conf",
        "--add-config",
        "retention.ms=1000,cleanup.policy=compact",
    ]);
    let d = ok(&["configs", "describe", "--entity", "topic", "--name", "conf"]);
    assert!(
        d.contains("  retention.ms=1000 (DYNAMIC_TOPIC_CONFIG)")
            && d.contains("  segment.bytes=1073741824 (DEFAULT_CONFIG)"),
        "{d}"
    );
    ok(&[
        "configs",
        "alter",
        "--entity",
        "topic",
        "--name",
        "conf",
        "--delete-config",
        "retention.ms",
    ]);
    assert!(
        ok(&["configs", "describe", "--entity", "topic", "--name", "conf"])
            .contains("  retention.ms=604800000 (DEFAULT_CONFIG)")
    );
    let bad = odradek(
        &bootstrap,
        &[
            "configs",
            "alter",
            "--entity",
            "topic",
            "--name",
            "conf",
            "--add-config",
            "retention.ms=abc",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("INVALID_CONFIG")
            && String::from_utf8_lossy(&bad.stderr).contains("retention.ms")
    );

    // The controller quorum, as kafka-metadata-quorum prints it.
    let q = ok(&["metadata-quorum", "describe", "--status"]);
    let leader: i32 = q
        .lines()
        .find_map(|l| l.strip_prefix("LeaderId:"))
        .map(|v| v.trim().parse().expect("leader id"))
        .unwrap_or_else(|| panic!("{q}"));
    assert!(shape.voters.contains(&leader), "{q}");
    // Kafka 3.9's form: [{"id": 1, "directoryId": "...", "endpoints": ["CONTROLLER://h:p"]}].
    let voters_line = q
        .lines()
        .find(|l| l.starts_with("CurrentVoters:"))
        .unwrap_or_else(|| panic!("{q}"));
    for v in &shape.voters {
        assert!(voters_line.contains(&format!("{{\"id\": {v}, ")), "{q}");
    }
    assert_eq!(
        voters_line.matches("\"id\"").count(),
        shape.voters.len(),
        "{q}"
    );
    assert!(
        voters_line.contains("\"endpoints\": [\"CONTROLLER://127.0.0.1:"),
        "{q}"
    );
    assert!(q.contains("CurrentObservers:       []"), "{q}");
    assert!(!q.contains("ClusterId:              unknown"), "{q}");
    let r = ok(&["metadata-quorum", "describe", "--replication"]);
    let rows: Vec<&str> = r.lines().skip(1).collect();
    assert_eq!(rows.len(), shape.voters.len(), "{r}");
    assert_eq!(
        rows.iter().filter(|l| l.ends_with("\tLeader")).count(),
        1,
        "{r}"
    );
    assert!(
        rows.iter()
            .any(|l| l.starts_with(&format!("{leader}\t")) && l.ends_with("\tLeader")),
        "{r}"
    );

    // A broker's configs, read from any broker.
    let last_broker = shape.brokers.last().expect("a broker").to_string();
    let b = ok(&[
        "configs",
        "describe",
        "--entity",
        "broker",
        "--name",
        &last_broker,
    ]);
    assert!(b.contains("  num.partitions=1 "), "{b}");
    // A broker asked for another broker's configs refuses, as Kafka's do (clients route there).
    if shape.brokers.len() > 1 {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let resp = runtime.block_on(async {
            use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
            use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest};
            use odradek::client::Connection;
            let mut conn = Connection::connect(&shape.bootstrap, "test")
                .await
                .expect("connect");
            let v = conn.version(ApiKey::DescribeConfigs, 4).expect("version");
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(last_broker.clone().into()),
            ]);
            conn.send(&req, v).await.expect("describe")
        });
        assert_eq!(resp.results[0].error_code, 42, "INVALID_REQUEST");
        // Group requests sent to a broker that does not coordinate the group: NOT_COORDINATOR.
        let code = runtime.block_on(async {
            use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
            use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, JoinGroupRequest};
            use odradek::client::{Client, Connection};
            let mut client = Client::new(&shape.bootstrap, "test");
            client.metadata(Some(&[]), false).await.expect("metadata");
            let find = FindCoordinatorRequest::default().with_key("elsewhere".into());
            let coordinator = client
                .send_any(&find, ApiKey::FindCoordinator, 3)
                .await
                .expect("find coordinator")
                .node_id
                .0;
            let other = shape
                .brokers
                .iter()
                .find(|b| **b != coordinator)
                .and_then(|b| client.broker_address(*b))
                .expect("another broker")
                .to_string();
            let mut conn = Connection::connect(&other, "test").await.expect("connect");
            let join = JoinGroupRequest::default()
                .with_group_id(kafka_protocol::messages::GroupId("elsewhere".into()))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type("consumer".into())
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default().with_name("range".into())
                ]);
            conn.send(&join, 7).await.expect("join").error_code
        });
        assert_eq!(code, 16, "NOT_COORDINATOR");
    }

    // Exit codes: 1 for errors a script can act on, 2 for bad usage.
    assert_eq!(
        odradek(&bootstrap, &["topics", "delete", "--topic", "orders"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        odradek("127.0.0.1:1", &["topics", "list"]).status.code(),
        Some(1)
    );
    assert_eq!(
        odradek(&bootstrap, &["topics", "create"]).status.code(),
        Some(2)
    );
}
