//! systemd protocols spoken for real: a test-owned NOTIFY_SOCKET, socket
//! activation through `systemd-socket-activate`, and `systemd-analyze verify`
//! on the shipped unit files.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, Upstream, eventually, free_port, get};

/// Collects every datagram sent to a notify socket.
struct NotifySocket {
    path: std::path::PathBuf,
    messages: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                sink.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        NotifySocket { path, messages, _dir: dir }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    fn wait_for(&self, needle: &str) -> bool {
        eventually(Duration::from_secs(10), || self.messages().iter().any(|m| m.contains(needle)))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_socket_hears_ready_reloading_ready_stopping_and_watchdog() {
    let upstream = Upstream::start("app").await;
    let notify = NotifySocket::bind();
    let config = format!("[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", upstream.url());
    let mut daemon = Daemon::start_with_env(
        &config,
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap()), ("WATCHDOG_USEC", "400000")],
    );
    assert!(notify.wait_for("READY=1"));
    daemon.signal("HUP");
    assert!(notify.wait_for("RELOADING=1"));
    assert!(
        eventually(Duration::from_secs(10), || notify.messages().iter().filter(|m| m.contains("READY=1")).count() >= 2)
    );
    // Watchdog pings every WATCHDOG_USEC / 2 while the self-check passes.
    assert!(eventually(Duration::from_secs(5), || notify
        .messages()
        .iter()
        .filter(|m| m.contains("WATCHDOG=1"))
        .count()
        >= 3));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(notify.wait_for("STOPPING=1"));

    let states: Vec<String> = notify
        .messages()
        .iter()
        .flat_map(|m| m.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(&l.as_str()) || l.starts_with("MONOTONIC_USEC="))
        .map(|l| if l.starts_with("MONOTONIC_USEC=") { "MONOTONIC_USEC".to_string() } else { l })
        .collect();
    assert_eq!(states, ["READY=1", "RELOADING=1", "MONOTONIC_USEC", "READY=1", "STOPPING=1"]);
    let reloading = notify.messages().into_iter().find(|m| m.contains("RELOADING=1")).unwrap();
    let usec: u64 = reloading.lines().find_map(|l| l.strip_prefix("MONOTONIC_USEC=")).unwrap().parse().unwrap();
    assert!(usec > 0);
    let status = notify.messages().into_iter().find(|m| m.contains("STATUS=serving")).unwrap();
    assert!(status.contains(&format!("STATUS=serving 0 routes on {};", daemon.addr)), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_breaks_without_notify_socket() {
    let upstream = Upstream::start("app").await;
    let config = format!("[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", upstream.url());
    let mut daemon = Daemon::start(&config);
    assert_eq!(get(daemon.addr, "h", "/").status, 200);
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", Duration::from_secs(5));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_activation_serves_inherited_sockets() {
    if !common::have_tool("systemd-socket-activate", "systemd") {
        return;
    }
    let upstream = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    // No listen address at all: only the inherited sockets can serve.
    let config = format!("[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", upstream.url());
    std::fs::write(&path, config).unwrap();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let mut child = Command::new("systemd-socket-activate")
        .arg(format!("--listen=127.0.0.1:{proxy_port}"))
        .arg(format!("--listen=127.0.0.1:{admin_port}"))
        .arg("--fdname=http:admin")
        .arg(env!("CARGO_BIN_EXE_hookgate"))
        .args(["run", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start systemd-socket-activate");
    let proxy = std::net::SocketAddr::from(([127, 0, 0, 1], proxy_port));
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
    // The first connection makes systemd-socket-activate start hookgate.
    let ready = eventually(Duration::from_secs(20), || std::net::TcpStream::connect(proxy).is_ok());
    assert!(ready, "systemd-socket-activate never listened");
    let response = get(proxy, "h", "/through-activation");
    assert_eq!((response.status, response.body_text().as_str()), (200, "app"));
    assert_eq!(upstream.seen()[0].target, "/through-activation");
    let health = get(admin, "localhost", "/healthz");
    assert_eq!((health.status, health.body_text().as_str()), (200, "ok\n"));
    // The config has no [admin]; the inherited admin socket still gets real metrics.
    // Counted once its last byte is written, which the client may see first.
    let counted = "hookgate_requests_total{route=\"default\",upstream=\"app\",class=\"2xx\"} 1";
    let seen = eventually(Duration::from_secs(5), || get(admin, "localhost", "/metrics").body_text().contains(counted));
    assert!(seen, "{}", get(admin, "localhost", "/metrics").body_text());
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let _ = child.wait();
}

#[test]
fn unit_files_pass_systemd_analyze_verify() {
    if !common::have_tool("systemd-analyze", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_hookgate");
    for unit in ["hookgate.service", "hookgate.socket"] {
        let text = std::fs::read_to_string(format!("config/{unit}")).unwrap();
        // Point ExecStart at the binary under test; nothing else changes.
        std::fs::write(dir.path().join(unit), text.replace("/usr/local/bin/hookgate", binary)).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("hookgate.service"))
        .arg(dir.path().join("hookgate.socket"))
        .output()
        .expect("run systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.trim().is_empty(), "systemd-analyze verify complained:\n{said}");
}
