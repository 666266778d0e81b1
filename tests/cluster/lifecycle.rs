//! A node's start and stop as an operator sees them: a listener that cannot bind stops the node
//! at once, naming the address, before it registers as a live broker; SIGTERM stops every node
//! promptly, the last controller of a quorum included.

use std::time::Duration;

use crate::harness::{binary, free_ports, start_cluster, wait_ready, Node};

#[test]
fn a_node_whose_listener_cannot_bind_exits_naming_the_address() {
    for (what, taken_index) in [
        ("client", 0),
        ("controller", 1),
        ("metrics", 2),
        ("console", 3),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(4);
        // Another process holds the port.
        let _other =
            std::net::TcpListener::bind(("127.0.0.1", ports[taken_index])).expect("hold the port");
        let args: Vec<std::ffi::OsString> = vec![
            "--dev".into(),
            "--data-dir".into(),
            dir.path().join("data").into_os_string(),
            "--override".into(),
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                ports[0], ports[1]
            )
            .into(),
            "--override".into(),
            format!("controller.quorum.voters=1@127.0.0.1:{}", ports[1]).into(),
            "--override".into(),
            format!("metrics.listener=http://127.0.0.1:{}", ports[2]).into(),
            "--override".into(),
            format!("console.listener=http://127.0.0.1:{}", ports[3]).into(),
        ];
        let mut node = Node::spawn_args(
            &binary("odradek-broker"),
            &args,
            dir.path().join("node.log"),
        );
        let status = node.wait_exit(Duration::from_secs(20)).unwrap_or_else(|| {
            panic!(
                "{what} port taken: the node kept running\n{}",
                node.log_text()
            )
        });
        let log = node.log_text();
        assert!(
            !status.success(),
            "{what} port taken: exit status {status}\n{log}"
        );
        assert!(
            log.contains(&format!("127.0.0.1:{}", ports[taken_index])),
            "{what} port taken: the error names the address\n{log}"
        );
        assert!(
            !log.contains("broker ready") && !log.contains("registered with the controller"),
            "{what} port taken: the node never looked healthy\n{log}"
        );
    }
}

#[test]
fn sigterm_stops_every_node_promptly_the_last_controller_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = start_cluster(dir.path());
    // Controllers first, one at a time, while the brokers still follow them: the last one
    // stops with no quorum left and brokers connected. Then the brokers, with no controller.
    for (i, node) in nodes.iter_mut().enumerate() {
        let (status, took) = node
            .terminate(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("node {i} did not stop within 30 s\n{}", node.log_text()));
        assert!(status.success(), "node {i}: {status}\n{}", node.log_text());
        // Generous for a loaded 2-core machine; before this was fixed the last controller
        // took about 18 s.
        assert!(
            took < Duration::from_secs(8),
            "node {i} took {took:?} to stop\n{}",
            node.log_text()
        );
        eprintln!("node {i} stopped in {took:?}");
    }
}

#[test]
fn json_logs_are_one_object_per_line_with_the_events_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(2);
    let args: Vec<std::ffi::OsString> = vec![
        "--dev".into(),
        "--log-format".into(),
        "json".into(),
        "--data-dir".into(),
        dir.path().join("data").into_os_string(),
        "--override".into(),
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            ports[0], ports[1]
        )
        .into(),
        "--override".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{}", ports[1]).into(),
        "--override".into(),
        "metrics.listener=http://127.0.0.1:0".into(),
        "--override".into(),
        "console.listener=".into(),
    ];
    let mut node = Node::spawn_args(
        &binary("odradek-broker"),
        &args,
        dir.path().join("node.log"),
    );
    wait_ready(&node);
    node.kill();
    let log = node.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ready = lines
        .iter()
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("broker ready"))
        })
        .unwrap_or_else(|| panic!("no 'broker ready' line:\n{log}"));
    assert_eq!(ready["level"], "INFO");
    assert!(ready["fields"]["cluster_id"].is_string(), "{ready}");
    assert!(
        ready["timestamp"].is_string() && ready["target"].is_string(),
        "{ready}"
    );
}
