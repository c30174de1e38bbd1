//! The real `hookgate` binary as a child process, with its logs captured.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The real daemon, running as a child process.
pub struct Daemon {
    pub addr: SocketAddr,
    /// The admin listener, when the config has `[admin]`.
    pub admin: Option<SocketAddr>,
    pub config_path: std::path::PathBuf,
    child: Child,
    logs: Arc<Logs>,
    _dir: tempfile::TempDir,
}

/// The daemon's stderr, line by line, as a thread reads it; waiters are woken
/// at each line and when the stream ends.
#[derive(Default)]
struct Logs {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// The daemon closed its stderr: it has exited, no line will follow.
    ended: bool,
}

impl Logs {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap()
    }

    /// Waits until `done` holds for the lines, the stream ends or `deadline`
    /// passes, woken by each new line (no polling); the lines and whether `done` held.
    fn wait(&self, deadline: Instant, mut done: impl FnMut(&[String]) -> bool) -> (bool, Vec<String>) {
        let mut state = self.lock();
        loop {
            if done(&state.lines) {
                return (true, state.lines.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.ended || left.is_zero() {
                return (false, state.lines.clone());
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

impl Daemon {
    /// Starts `hookgate run` with `config`; `{listen}` need not be set, it is
    /// prepended as `127.0.0.1:0` unless the config has a `[listen]` table.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(config, |path| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
            command.arg("run").arg("-c").arg(path).envs(env.iter().copied());
            command
        })
    }

    /// Starts the daemon with at most `limit` open file descriptors.
    pub fn start_with_fd_limit(config: &str, limit: u32) -> Daemon {
        Daemon::launch(config, |path| {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" run -c \"$1\""))
                .arg(env!("CARGO_BIN_EXE_hookgate"))
                .arg(path);
            command
        })
    }

    /// Starts `hookgate run` with `config` written to `dir/hookgate.toml`, in
    /// a folder the caller owns: for a test that puts files there before the
    /// daemon starts (paths in the config are relative to it), or starts a
    /// second daemon on what the first one left.
    pub fn start_in(dir: &std::path::Path, config: &str) -> Daemon {
        Daemon::launch_at(dir, tempfile::tempdir().unwrap(), config, |path| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
            command.arg("run").arg("-c").arg(path);
            command
        })
    }

    fn launch(config: &str, command: impl FnOnce(&std::path::Path) -> Command) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().to_path_buf();
        Daemon::launch_at(&at, dir, config, command)
    }

    /// Writes the config in `at` and starts the daemon; `dir` lives as long as it.
    fn launch_at(
        at: &std::path::Path,
        dir: tempfile::TempDir,
        config: &str,
        command: impl FnOnce(&std::path::Path) -> Command,
    ) -> Daemon {
        let path = at.join("hookgate.toml");
        let full = if config.contains("[listen]") {
            config.to_string()
        } else {
            format!("[listen]\naddrs = [\"127.0.0.1:0\"]\n{config}")
        };
        std::fs::write(&path, full).unwrap();
        let (child, logs, addr, admin) = spawn(command(&path));
        Daemon { addr, admin, config_path: path, child, logs, _dir: dir }
    }

    /// Kills the daemon with SIGKILL (it finishes nothing) and waits until it is gone.
    pub fn kill(&mut self) {
        self.signal("KILL");
        self.wait_exit(Duration::from_secs(10));
    }

    /// Starts `hookgate run` again, once the daemon has exited, on the same
    /// config file in the same folder (a spool at a relative `dir` is the
    /// same one), and waits until it is ready. `logs()` then holds the new
    /// process's lines only; the environment of `start_with_env` is not kept.
    pub fn restart(&mut self) {
        assert!(self.child.try_wait().unwrap().is_some(), "restart: the daemon is still running");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command.arg("run").arg("-c").arg(&self.config_path);
        (self.child, self.logs, self.addr, self.admin) = spawn(command);
    }

    /// The folder the config file is in.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Replaces the config file (the daemon reads it on reload).
    pub fn rewrite_config(&self, config: &str) {
        std::fs::write(&self.config_path, config).unwrap();
    }

    /// Every proxy address the daemon has logged as listening, in order.
    pub fn listening_addrs(&self) -> Vec<SocketAddr> {
        self.logs().iter().filter_map(|l| listening_addr(l)).collect()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().lines.clone()
    }

    /// Waits until a log line contains `needle`, up to `timeout`; woken by
    /// each line the daemon writes, so it returns as soon as the line is there.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let found = |lines: &[String]| lines.iter().any(|l| l.contains(needle));
        let (_, lines) = self.logs.wait(Instant::now() + timeout, found);
        let line = lines.iter().find(|l| l.contains(needle)).cloned();
        line.unwrap_or_else(|| panic!("no log line with {needle:?}; logs:\n{}", lines.join("\n")))
    }

    /// Waits until `count` lines contain `needle`, up to `timeout`; the logs then.
    pub fn wait_for_lines(&self, needle: &str, count: usize, timeout: Duration) -> Vec<String> {
        let enough = |lines: &[String]| lines.iter().filter(|l| l.contains(needle)).count() >= count;
        let (done, lines) = self.logs.wait(Instant::now() + timeout, enough);
        assert!(done, "fewer than {count} log lines with {needle:?}; logs:\n{}", lines.join("\n"));
        lines
    }

    /// Stops the daemon (SIGTERM), waits for it to exit 0 and returns every
    /// line it wrote: no line can come after these, so a test can count lines
    /// that must appear once, or never, without waiting for time to pass.
    pub fn stop(&mut self) -> Vec<String> {
        self.signal("TERM");
        assert_eq!(self.wait_exit(Duration::from_secs(40)), Some(0), "hookgate did not exit cleanly");
        self.logs()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the daemon, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// CPU time (user + system) the daemon has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code. By then
    /// `logs()` holds every line it wrote: this also waits for the reader to
    /// reach the end of its stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.logs.wait(Instant::now() + Duration::from_secs(10), |_| false);
                assert!(self.logs.lock().ended, "hookgate's stderr stayed open after it exited");
                return status.code();
            }
            assert!(Instant::now() < deadline, "hookgate did not exit; logs:\n{}", self.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `command` with its stderr read line by line, and waits until it is ready;
/// the child, its logs, and the proxy and admin addresses it logged.
fn spawn(mut command: Command) -> (Child, Arc<Logs>, SocketAddr, Option<SocketAddr>) {
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start hookgate");
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Logs::default());
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().lines.push(line);
            sink.changed.notify_all();
        }
        sink.lock().ended = true;
        sink.changed.notify_all();
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let (started, lines) = logs.wait(deadline, |lines| lines.iter().any(|l| l.contains("hookgate ready")));
    let addr = lines.iter().find_map(|l| listening_addr(l));
    let Some(addr) = addr.filter(|_| started) else {
        panic!("hookgate did not start; logs:\n{}", lines.join("\n"));
    };
    let admin = lines.iter().filter(|l| l.contains("admin listening")).find_map(|l| line_addr(l));
    (child, logs, addr, admin)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") || line.contains("admin listening") || line.contains("no longer listening") {
        return None;
    }
    line_addr(line)
}

fn line_addr(line: &str) -> Option<SocketAddr> {
    if let Some(start) = line.find("\"addr\":\"") {
        let rest = &line[start + 8..];
        return rest[..rest.find('"')?].parse().ok();
    }
    let start = line.find("addr=")? + 5;
    line[start..].split_whitespace().next()?.parse().ok()
}
