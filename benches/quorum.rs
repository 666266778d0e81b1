//! Controller quorum throughput and commit latency: three voters in this process on 127.0.0.1,
//! each with its own RocksDB store (synced writes), proposals of 200-byte entries.
//!
//! ```sh
//! cargo bench --bench quorum
//! ```
//! Prints commit latency (one proposal at a time: p50/p99) and committed proposals per second
//! with 64 in flight. Under `cargo test` it only runs a short smoke pass.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use odradek_quorum::{QuorumConfig, QuorumError, QuorumHandle, RocksStorage, Role, StateMachine};
use tonic::transport::server::TcpIncoming;

struct Count(u64);

impl StateMachine for Count {
    fn apply(&mut self, _index: u64, _data: &[u8]) {
        self.0 += 1;
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn restore(&mut self, _index: u64, data: &[u8]) {
        self.0 = data.try_into().map(u64::from_be_bytes).unwrap_or(0);
    }
}

async fn start_cluster(dir: &std::path::Path) -> Vec<QuorumHandle> {
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let voters: BTreeMap<u64, String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().expect("addr").to_string()))
        .collect();
    let mut handles = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let store = dir.join(format!("v{id}"));
        RocksStorage::format(&store, "bench-cluster-id-xxxxx", id, &[1, 2, 3], Vec::new())
            .expect("format");
        let mut config = QuorumConfig::new(id, "bench-cluster-id-xxxxx", voters.clone(), store);
        config.snapshot_interval_entries = 10_000;
        let (handle, service) = odradek_quorum::start(config, Count(0)).expect("start");
        l.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(l).expect("listener");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        handles.push(handle);
    }
    handles
}

async fn leader(handles: &[QuorumHandle]) -> QuorumHandle {
    loop {
        if let Some(h) = handles.iter().find(|h| h.status().role == Role::Leader) {
            return h.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (sequential, concurrent) = if bench { (2_000, 20_000) } else { (20, 200) };
    let dir = tempfile::tempdir().expect("tempdir");
    let handles = start_cluster(dir.path()).await;
    let leader = leader(&handles).await;
    let entry = vec![7u8; 200];

    let mut latencies = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let t = Instant::now();
        leader.propose(entry.clone()).await.expect("commit");
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();

    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<u64, QuorumError>>(64);
    let mut in_flight = 0;
    let mut sent = 0;
    let mut done = 0;
    while done < concurrent {
        while in_flight < 64 && sent < concurrent {
            let (l, e, tx) = (leader.clone(), entry.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(l.propose(e).await).await;
            });
            in_flight += 1;
            sent += 1;
        }
        rx.recv().await.expect("result").expect("commit");
        in_flight -= 1;
        done += 1;
    }
    let elapsed = started.elapsed();
    println!("quorum: 3 voters, 200-byte entries, synced RocksDB writes");
    println!(
        "commit latency, one at a time ({sequential} proposals): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!(
        "throughput, 64 in flight ({concurrent} proposals): {:.0} commits/s",
        concurrent as f64 / elapsed.as_secs_f64()
    );
    for h in &handles {
        h.shutdown().await;
    }
}
