//! Debian's `redis-server` on a loopback port of its own, for the
//! `[cluster]` tests: started per test in a temporary directory, with no
//! persistence, and stopped (or restarted on the same port, or frozen and
//! let go) when the test says. `cli` runs `redis-cli` against it, to look at what hookgate wrote.
//!
//! On a machine without redis-server, `start` returns `None` after saying
//! the test is skipped; see `super::have_tool`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Redis {
    pub port: u16,
    /// `redis://127.0.0.1:PORT/0`, for `[cluster] redis`.
    pub url: String,
    /// `requirepass`, if the server was started with one.
    password: Option<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    /// A fresh redis-server; `None` (the test is skipped) without one.
    pub fn start() -> Option<Redis> {
        Redis::start_with_password(None)
    }

    /// A fresh redis-server that wants `password` (`requirepass`), if given.
    pub fn start_with_password(password: Option<&str>) -> Option<Redis> {
        if !super::have_tool("redis-server", "redis-server") || !super::have_tool("redis-cli", "redis-tools") {
            return None;
        }
        let port = super::free_port();
        let mut redis = Redis {
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
            password: password.map(str::to_string),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.run();
        Some(redis)
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(self.password.iter().flat_map(|p| ["--requirepass", p.as_str()]))
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        let up = super::eventually(Duration::from_secs(10), || self.cli(&["PING"]).trim() == "PONG");
        assert!(up, "redis-server on port {port} did not answer PING");
    }

    /// Stops it (SIGKILL: as a crash or a network cut looks to hookgate).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let port = self.port;
        let gone = super::eventually(Duration::from_secs(5), || TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(gone, "redis-server on port {port} still accepts");
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers, as
    /// in a network stall; `resume` lets it go on with everything it held.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id().to_string();
        let status = Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// `redis-cli ARGS...` against this server: its output, trimmed of the last newline.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-auth-warning"])
            .args(self.password.iter().flat_map(|p| ["-a", p.as_str()]))
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim_end().to_string()
    }

    /// The keys under `pattern` (`KEYS`, fine for a test's few).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> =
            self.cli(&["KEYS", pattern]).lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
        keys.sort();
        keys
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
