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

/// [`start_dev`] on given client and controller ports (to restart a node where it was).
pub fn start_dev_on(dir: &Path, b: u16, c: u16) -> (Node, String) {
    let args: Vec<std::ffi::OsString> = vec![
        "--dev".into(),
        "--data-dir".into(),
        dir.join("data").into_os_string(),
        "--override".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}").into(),
        "--override".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{c}").into(),
    ];
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
