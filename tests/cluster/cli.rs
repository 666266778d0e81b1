//! The `odradek` CLI against a combined node process: every topics subcommand, produce from stdin,
//! consume to stdout, and the exit codes scripts rely on.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{binary, free_ports, run_ok, Node};

fn start_node(dir: &std::path::Path) -> (Node, String) {
    let ports = free_ports(2);
    let config = dir.join("node.properties");
    std::fs::write(
        &config,
        format!(
            "node.id=1\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@127.0.0.1:{c}\n\
             listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n",
            dir.join("data").display(),
            b = ports[0],
            c = ports[1]
        ),
    )
    .expect("write config");
    let id = run_ok(Command::new(binary("odradek-storage")).arg("random-uuid"))
        .trim()
        .to_string();
    run_ok(
        Command::new(binary("odradek-storage"))
            .args(["format", "-t", &id, "-c"])
            .arg(&config),
    );
    let node = Node::spawn(&binary("odradek-broker"), &config, dir.join("node.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node.log_text().contains("broker ready") {
        assert!(
            Instant::now() < deadline,
            "node not ready:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (node, format!("127.0.0.1:{}", ports[0]))
}

fn odradek(bootstrap: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary("odradek"))
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .output()
        .expect("run odradek")
}

#[test]
fn cli_topics_produce_consume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, bootstrap) = start_node(dir.path());
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
        "1",
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
        describe.contains("PartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=60000"),
        "{describe}"
    );
    assert!(
        describe.contains("\tTopic: orders\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1"),
        "{describe}"
    );

    let mut produce = Command::new(binary("odradek"))
        .args([
            "--bootstrap-server",
            &bootstrap,
            "produce",
            "--topic",
            "orders",
            "--key-separator",
            ":",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn produce");
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

    // Perf tools print Kafka's perf-test lines.
    ok(&["topics", "create", "--topic", "perf", "--partitions", "1"]);
    let p = ok(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--records",
        "5000",
        "--record-size",
        "100",
    ]);
    assert!(
        p.starts_with("5000 records sent, ") && p.contains(" ms 99.9th."),
        "{p}"
    );
    let c = ok(&["perf", "consume", "--topic", "perf", "--records", "5000"]);
    let last = c.lines().last().expect("a result line");
    assert_eq!(last.split(", ").nth(4), Some("5000"), "{c}");

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
    assert!(
        q.contains("LeaderId:               1") && q.contains("CurrentVoters:          [1]"),
        "{q}"
    );
    assert!(!q.contains("ClusterId:              unknown"), "{q}");
    let r = ok(&["metadata-quorum", "describe", "--replication"]);
    assert!(
        r.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("1\t") && l.ends_with("\tLeader")),
        "{r}"
    );

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
