//! Three `odradek-controller` processes formatted by `odradek-storage`: topics created over gRPC,
//! the active controller killed with SIGKILL, a new one active within 3 s, every process
//! restarted, and the same metadata served afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use odradek_controller::pb::controller_service_client::ControllerServiceClient;
use odradek_controller::pb::{self, metadata_update::Update};
use odradek_metadata::{decode_batch, decode_snapshot, MetadataDelta, MetadataImage};
use tonic::transport::Channel;

use crate::harness::{binary, free_ports, run_ok, Node};

struct Controllers {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    nodes: BTreeMap<u32, Node>,
}

impl Controllers {
    fn config(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("controller-{id}.properties"))
    }

    fn start(&mut self, id: u32) {
        let log = self.dir.path().join(format!("controller-{id}.log"));
        let node = Node::spawn(&binary("odradek-controller"), &self.config(id), log);
        self.nodes.insert(id, node);
    }

    fn addr(&self, id: u32) -> String {
        format!("http://127.0.0.1:{}", self.ports[id as usize - 1])
    }

    async fn client(&self, id: u32) -> Option<ControllerServiceClient<Channel>> {
        ControllerServiceClient::connect(self.addr(id)).await.ok()
    }

    /// The active controller as the running nodes report it, waiting up to `within`.
    async fn leader(&self, within: Duration, not: Option<u32>) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            for id in self.nodes.keys() {
                if let Some(mut c) = self.client(*id).await {
                    if let Ok(r) = c.describe_quorum(pb::DescribeQuorumRequest {}).await {
                        let leader = r.into_inner().leader_id;
                        if leader > 0
                            && Some(leader as u32) != not
                            && self.nodes.contains_key(&(leader as u32))
                        {
                            return leader as u32;
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                for n in self.nodes.values() {
                    eprintln!("--- {}\n{}", n.log.display(), n.log_text());
                }
                panic!("no active controller within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn active(&self) -> ControllerServiceClient<Channel> {
        let leader = self.leader(Duration::from_secs(10), None).await;
        self.client(leader)
            .await
            .expect("connect to the active controller")
    }
}

fn write_config(path: &Path, id: u32, ports: &[u16], data: &Path) {
    let voters: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect();
    let text = format!(
        "node.id={id}\nprocess.roles=controller\ncontroller.quorum.voters={}\n\
         listeners=CONTROLLER://127.0.0.1:{}\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n\
         metadata.log.max.record.bytes.between.snapshots=2000\n",
        voters.join(","),
        ports[id as usize - 1],
        data.display()
    );
    std::fs::write(path, text).expect("write config");
}

/// Follows FetchMetadata from offset 0 until `done(image)`, replaying into an image.
async fn follow_metadata(
    client: &mut ControllerServiceClient<Channel>,
    done: impl Fn(&MetadataImage) -> bool,
) -> Arc<MetadataImage> {
    let mut stream = client
        .fetch_metadata(pb::FetchMetadataRequest {
            broker_id: 100,
            from_offset: 0,
        })
        .await
        .expect("fetch metadata")
        .into_inner();
    let mut image = Arc::new(MetadataImage::empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&image) {
        assert!(
            Instant::now() < deadline,
            "metadata did not arrive: {image:?}"
        );
        let update = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("metadata update in time")
            .expect("stream ok")
            .expect("stream open");
        match update.update.expect("update") {
            Update::Snapshot(bytes) => {
                image = Arc::new(decode_snapshot(&bytes).expect("snapshot decodes"))
            }
            Update::Entry(e) => {
                let mut delta = MetadataDelta::new(Arc::clone(&image));
                for r in decode_batch(&e.records).expect("batch decodes") {
                    delta.replay(e.offset, &r).expect("record replays");
                }
                image = Arc::new(delta.apply());
            }
        }
    }
    image
}

/// Registers three brokers (ids 100..102) and unfences them, so topics can be placed.
async fn register_brokers(client: &mut ControllerServiceClient<Channel>, cluster_id: &str) {
    for id in 100..103 {
        let r = client
            .register_broker(pb::RegisterBrokerRequest {
                broker_id: id,
                cluster_id: cluster_id.into(),
                incarnation_id: odradek_common::Uuid::random().as_bytes().to_vec(),
                listeners: vec![pb::Listener {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9000 + id as u32,
                    security_protocol: "PLAINTEXT".into(),
                }],
                rack: None,
                log_dirs: vec![],
            })
            .await
            .expect("register")
            .into_inner();
        assert_eq!(r.error_code, 0, "{}", r.error_message);
        let hb = client
            .broker_heartbeat(pb::BrokerHeartbeatRequest {
                broker_id: id,
                broker_epoch: r.broker_epoch,
                current_metadata_offset: i64::MAX,
                ..Default::default()
            })
            .await
            .expect("heartbeat")
            .into_inner();
        assert!(!hb.is_fenced, "broker {id} unfenced");
    }
}

async fn create(
    client: &mut ControllerServiceClient<Channel>,
    name: &str,
    partitions: i32,
    rf: i32,
) -> pb::CreateTopicResult {
    let r = client
        .create_topics(pb::CreateTopicsRequest {
            topics: vec![pb::CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: rf,
                configs: vec![],
                assignments: vec![],
            }],
            validate_only: false,
        })
        .await
        .expect("create topics")
        .into_inner();
    r.topics[0].clone()
}

/// Commands are pipelined (each runs against the records appended before it, before they
/// commit): of concurrent creations of one name exactly one wins, and every answer matches the
/// committed metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_each_see_the_ones_before() {
    let (c, cluster_id) = start_three();
    let mut active = c.active().await;
    register_brokers(&mut active, &cluster_id).await;
    let mut calls = Vec::new();
    for i in 0..200 {
        // Every name is asked for twice, at the same time.
        let name = format!("t{}", i / 2);
        let mut client = active.clone();
        calls.push(tokio::spawn(async move {
            (name.clone(), create(&mut client, &name, 2, 3).await)
        }));
    }
    let mut won: BTreeMap<String, odradek_common::Uuid> = BTreeMap::new();
    for call in calls {
        let (name, result) = call.await.expect("create task");
        match result.error_code {
            0 => {
                let id = odradek_common::Uuid::from_slice(&result.topic_id).expect("topic id");
                assert!(
                    won.insert(name.clone(), id).is_none(),
                    "{name} created twice"
                );
            }
            36 => {}
            other => panic!("{name}: error {other} {}", result.error_message),
        }
    }
    assert_eq!(won.len(), 100, "each name created exactly once");
    let image = follow_metadata(&mut active, |i| i.topics.by_id.len() >= 100).await;
    let committed: BTreeMap<String, odradek_common::Uuid> = image
        .topics
        .by_id
        .values()
        .map(|t| (t.name.clone(), t.id))
        .collect();
    assert_eq!(committed, won, "the answers are what committed");
}

/// What must survive: topic ids, names and replica assignments.
fn topology(image: &MetadataImage) -> BTreeMap<String, (odradek_common::Uuid, Vec<Vec<i32>>)> {
    image
        .topics
        .by_id
        .values()
        .map(|t| {
            (
                t.name.clone(),
                (
                    t.id,
                    t.partitions.values().map(|p| p.replicas.clone()).collect(),
                ),
            )
        })
        .collect()
}

/// Three controllers formatted and started; returns them and the cluster id.
fn start_three() -> (Controllers, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(3);
    let cluster_id = run_ok(Command::new(binary("odradek-storage")).arg("random-uuid"))
        .trim()
        .to_string();
    assert_eq!(cluster_id.len(), 22);
    let mut c = Controllers {
        dir,
        ports: ports.clone(),
        nodes: BTreeMap::new(),
    };
    for id in 1..=3 {
        let data = c.dir.path().join(format!("data-{id}"));
        write_config(&c.config(id), id, &ports, &data);
        let out = run_ok(
            Command::new(binary("odradek-storage"))
                .args(["format", "-t", &cluster_id, "-c"])
                .arg(c.config(id)),
        );
        assert!(out.contains("Formatted"), "{out}");
    }
    for id in 1..=3 {
        c.start(id);
    }
    (c, cluster_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_survive_kill_9_and_restart() {
    let (mut c, cluster_id) = start_three();
    let mut active = c.active().await;
    register_brokers(&mut active, &cluster_id).await;
    let orders = create(&mut active, "orders", 6, 3).await;
    assert_eq!(orders.error_code, 0, "{}", orders.error_message);
    assert_eq!(
        create(&mut active, "orders", 1, 1).await.error_code,
        36,
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(
        create(&mut active, "too-wide", 1, 4).await.error_code,
        38,
        "INVALID_REPLICATION_FACTOR"
    );

    // A standby refuses admin calls with NOT_CONTROLLER naming the leader.
    let leader = c.leader(Duration::from_secs(5), None).await;
    let standby = (1..=3).find(|id| *id != leader).expect("a standby");
    let mut s = c.client(standby).await.expect("connect standby");
    let refused = s
        .create_topics(pb::CreateTopicsRequest::default())
        .await
        .expect_err("standby refuses");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(
        refused.message().starts_with("NOT_CONTROLLER"),
        "{}",
        refused.message()
    );
    assert_eq!(
        refused
            .metadata()
            .get("odradek-leader-id")
            .and_then(|v| v.to_str().ok()),
        Some(leader.to_string().as_str())
    );
    // ...but serves the committed metadata.
    let image = follow_metadata(&mut s, |i| i.topics.by_name.contains_key("orders")).await;
    assert_eq!(
        image
            .topics
            .get_by_name("orders")
            .expect("orders")
            .partitions
            .len(),
        6
    );
    assert_eq!(
        image.features.levels.get("metadata.version"),
        Some(&1),
        "bootstrap metadata present"
    );

    // kill -9 the active controller: a new one is elected (typically 1-2 s: a 1-2 s randomised
    // timeout and two round trips; a split vote costs another timeout, a loaded machine more).
    c.nodes.get_mut(&leader).expect("leader node").kill();
    let killed = Instant::now();
    let new_leader = c.leader(Duration::from_secs(15), Some(leader)).await;
    let failover = killed.elapsed();
    eprintln!("controller failover: {failover:?}");
    assert_ne!(new_leader, leader);
    let mut active = c.client(new_leader).await.expect("connect new leader");
    let events = create(&mut active, "events", 2, 2).await;
    assert_eq!(events.error_code, 0, "{}", events.error_message);
    let before = follow_metadata(&mut active, |i| i.topics.by_name.contains_key("events")).await;

    // Restart everything (kill -9 the survivors first): the same metadata comes back.
    for n in c.nodes.values_mut() {
        n.kill();
    }
    for id in 1..=3 {
        c.start(id);
    }
    let mut any = c.active().await;
    let after = follow_metadata(&mut any, |i| i.topics.by_name.contains_key("events")).await;
    assert_eq!(topology(&after), topology(&before));
    assert_eq!(
        after.cluster.brokers.keys().collect::<Vec<_>>(),
        vec![&100, &101, &102]
    );
    // And it still accepts writes.
    assert_eq!(create(&mut any, "after-restart", 1, 1).await.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_tool_and_controller_refuse_wrong_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(1);
    let config = dir.path().join("c.properties");
    let data = dir.path().join("data");
    write_config(&config, 1, &ports, &data);
    let storage = binary("odradek-storage");
    let id = run_ok(Command::new(&storage).arg("random-uuid"))
        .trim()
        .to_string();

    // The controller refuses to start before format, and says what to do.
    let out = Command::new(binary("odradek-controller"))
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not formatted: run odradek-storage format"),
        "{err}"
    );

    // A bad cluster id and a bad config value are refused, naming the problem.
    let out = Command::new(&storage)
        .args(["format", "-t", "nope", "-c"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("invalid cluster id")
    );
    let out = Command::new(&storage)
        .args(["format", "-t", &id, "--override", "node.id=-3", "-c"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("node.id"));

    // A non-empty, unformatted directory is refused.
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("something"), b"x").expect("write");
    let out = Command::new(&storage)
        .args(["format", "-t", &id, "-c"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(data.join("something")).expect("rm");

    // Format once; a second format is refused unless --ignore-formatted.
    run_ok(
        Command::new(&storage)
            .args(["format", "-t", &id, "-c"])
            .arg(&config),
    );
    let out = Command::new(&storage)
        .args(["format", "-t", &id, "-c"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already formatted"));
    let out = run_ok(
        Command::new(&storage)
            .args(["format", "-t", &id, "--ignore-formatted", "-c"])
            .arg(&config),
    );
    assert!(out.contains("Skipped"), "{out}");
    let info = run_ok(Command::new(&storage).args(["info", "-c"]).arg(&config));
    assert!(
        info.contains(&format!("cluster.id: {id}")) && info.contains("metadata log: cluster"),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_of_another_cluster_does_not_join() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(3);
    let storage = binary("odradek-storage");
    let ours = run_ok(Command::new(&storage).arg("random-uuid"))
        .trim()
        .to_string();
    let theirs = run_ok(Command::new(&storage).arg("random-uuid"))
        .trim()
        .to_string();
    let mut c = Controllers {
        dir,
        ports: ports.clone(),
        nodes: BTreeMap::new(),
    };
    for id in 1..=3 {
        let data = c.dir.path().join(format!("data-{id}"));
        write_config(&c.config(id), id, &ports, &data);
        let cluster = if id == 3 { &theirs } else { &ours };
        run_ok(
            Command::new(&storage)
                .args(["format", "-t", cluster, "-c"])
                .arg(c.config(id)),
        );
    }
    for id in 1..=3 {
        c.start(id);
    }
    // Nodes 1 and 2 form a quorum (2 of 3) and serve.
    let leader = c.leader(Duration::from_secs(10), Some(3)).await;
    assert!(leader == 1 || leader == 2);
    let mut active = c.client(leader).await.expect("connect");
    register_brokers(&mut active, &ours).await;
    assert_eq!(create(&mut active, "t", 1, 1).await.error_code, 0);
    // Node 3 never learns of that leader, and the mismatch is logged.
    let mut stranger = c.client(3).await.expect("connect node 3");
    let d = stranger
        .describe_quorum(pb::DescribeQuorumRequest {})
        .await
        .expect("describe")
        .into_inner();
    assert_ne!(
        d.leader_id, leader as i32,
        "node 3 joined another cluster's quorum"
    );
    assert_eq!(d.cluster_id, theirs);
    let logs: String = c.nodes.values().map(|n| n.log_text()).collect();
    assert!(
        logs.contains("another cluster") || logs.contains("cluster id mismatch"),
        "mismatch not logged:\n{logs}"
    );
}
