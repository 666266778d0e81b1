//! Starting and killing node processes on 127.0.0.1 with ephemeral ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A binary built next to this test (in the same target directory).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Ports nobody listens on right now (bound then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Runs a command to completion; panics with its output on failure.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A node process; killed (SIGKILL) when dropped.
pub struct Node {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Node {
    pub fn spawn(bin: &Path, config: &Path, log: PathBuf) -> Node {
        let args = [
            std::ffi::OsString::from("-c"),
            config.as_os_str().to_owned(),
        ];
        Node::spawn_args(bin, &args, log)
    }

    /// Starts `bin` with `args`, its stderr appended to `log`.
    pub fn spawn_args(bin: &Path, args: &[std::ffi::OsString], log: PathBuf) -> Node {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn node");
        Node {
            child: Some(child),
            log,
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (up to 30 s) for a broker's "broker ready" line.
pub fn wait_ready(node: &Node) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !node.log_text().contains("broker ready") {
        assert!(
            std::time::Instant::now() < deadline,
            "node not ready:\n{}",
            node.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `odradek-broker --dev` as a new user starts it (formatting its directory on the first start),
/// on free ports instead of 9092/9093 so tests can run side by side; returns the node and its
/// bootstrap address.
pub fn start_dev(dir: &Path) -> (Node, String) {
    let ports = free_ports(2);
    start_dev_on(dir, ports[0], ports[1])
}

/// [`start_dev`] with more `--override`s (`key=value`).
pub fn start_dev_with(dir: &Path, overrides: &[&str]) -> (Node, String) {
    let ports = free_ports(2);
    start_dev_configured(dir, ports[0], ports[1], overrides)
}

/// [`start_dev`] on given client and controller ports (to restart a node where it was).
pub fn start_dev_on(dir: &Path, b: u16, c: u16) -> (Node, String) {
    start_dev_configured(dir, b, c, &[])
}

fn start_dev_configured(dir: &Path, b: u16, c: u16, overrides: &[&str]) -> (Node, String) {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--dev".into(),
        "--data-dir".into(),
        dir.join("data").into_os_string(),
        "--override".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}").into(),
        "--override".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{c}").into(),
        // The console and metrics on ephemeral ports (--dev's 8080 and 9644 would collide).
        "--override".into(),
        "metrics.listener=http://127.0.0.1:0".into(),
        "--override".into(),
        "console.listener=http://127.0.0.1:0".into(),
    ];
    for o in overrides {
        args.push("--override".into());
        args.push(o.into());
    }
    // One log per start, so a restart waits for its own "broker ready".
    let starts = std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("node"))
            .count()
    });
    let log = dir.join(format!("node-{starts}.log"));
    let node = Node::spawn_args(&binary("odradek-broker"), &args, log);
    wait_ready(&node);
    (node, format!("127.0.0.1:{b}"))
}

/// A new cluster id from `odradek-storage random-uuid`.
pub fn cluster_id() -> String {
    run_ok(Command::new(binary("odradek-storage")).arg("random-uuid"))
        .trim()
        .to_string()
}

/// `odradek-storage format` of the directories in `config`.
pub fn format(config: &Path, cluster_id: &str) {
    run_ok(
        Command::new(binary("odradek-storage"))
            .args(["format", "-t", cluster_id, "-c"])
            .arg(config),
    );
}

/// Controllers 100-102 (processes 0-2 of the result) and brokers 1-3 (processes 3-5), each its
/// own process and directory, every broker ready; returns them and the brokers' addresses.
pub fn start_cluster(dir: &Path) -> (Vec<Node>, Vec<String>) {
    let ports = free_ports(6);
    let voters: Vec<String> = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", 100 + i, ports[i]))
        .collect();
    let voters = voters.join(",");
    let id_of_cluster = cluster_id();
    let mut nodes = Vec::new();
    // Writes `<name>.properties`, formats the node's directory and starts `bin` on it.
    let node = |bin: &str, name: String, roles: &str, id: usize, listener: String| {
        let config = dir.join(format!("{name}.properties"));
        std::fs::write(
            &config,
            format!(
                "node.id={id}\nprocess.roles={roles}\ncontroller.quorum.voters={voters}\n\
                 listeners={listener}\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n",
                dir.join(&name).display()
            ),
        )
        .expect("write config");
        format(&config, &id_of_cluster);
        Node::spawn(&binary(bin), &config, dir.join(format!("{name}.log")))
    };
    for (i, port) in ports.iter().enumerate().take(3) {
        let listener = format!("CONTROLLER://127.0.0.1:{port}");
        nodes.push(node(
            "odradek-controller",
            format!("controller-{i}"),
            "controller",
            100 + i,
            listener,
        ));
    }
    let mut bootstrap = Vec::new();
    for b in 1..=3 {
        let port = ports[2 + b];
        let listener = format!("PLAINTEXT://127.0.0.1:{port}");
        nodes.push(node(
            "odradek-broker",
            format!("broker-{b}"),
            "broker",
            b,
            listener,
        ));
        bootstrap.push(format!("127.0.0.1:{port}"));
    }
    for node in &nodes[3..] {
        wait_ready(node);
    }
    (nodes, bootstrap)
}

impl Node {
    /// SIGTERM, then waits up to `within` for the process to exit; returns its status and how
    /// long it took, or `None` (after a kill -9) if it did not stop in time.
    pub fn terminate(
        &mut self,
        within: std::time::Duration,
    ) -> Option<(std::process::ExitStatus, std::time::Duration)> {
        let child = self.child.as_mut()?;
        let started = std::time::Instant::now();
        run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let exited = self.wait_exit(within);
        exited.map(|s| (s, started.elapsed()))
    }

    /// Waits up to `within` for the process to exit by itself; kills it (and answers `None`)
    /// if it does not.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A batch of `n` records from producer `pid` at `epoch`, from sequence `seq` (values
/// `r<seq>`...), idempotent or transactional.
pub fn producer_batch(
    pid: i64,
    epoch: i16,
    seq: i32,
    n: usize,
    transactional: bool,
) -> bytes::Bytes {
    use odradek_log::records::{encode_producer_batch, Compression, NewRecord, ProducerBatch};
    let records: Vec<NewRecord> = (0..n)
        .map(|i| NewRecord::value(format!("r{}", seq as usize + i), 1_700_000_000_000))
        .collect();
    let producer = ProducerBatch {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional,
    };
    encode_producer_batch(&records, Compression::None, producer).expect("encode")
}
