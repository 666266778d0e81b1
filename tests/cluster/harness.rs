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
