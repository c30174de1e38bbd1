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
    /// What `NOTIFY_SOCKET` says: a path, or `@name` in the abstract namespace.
    address: String,
    messages: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket::collect(socket, path.display().to_string(), dir)
    }

    /// A socket in the abstract namespace, as some service managers and containers pass.
    fn bind_abstract() -> NotifySocket {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hookgate-test-{}-{}", std::process::id(), free_port());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        NotifySocket::collect(socket, format!("@{name}"), tempfile::tempdir().unwrap())
    }

    fn collect(socket: UnixDatagram, address: String, dir: tempfile::TempDir) -> NotifySocket {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                sink.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        NotifySocket { address, messages, _dir: dir }
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
    let mut daemon =
        Daemon::start_with_env(&config, &[("NOTIFY_SOCKET", &notify.address), ("WATCHDOG_USEC", "400000")]);
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

/// Found by a probe: `NOTIFY_SOCKET=@name` was taken for a path ("cannot
/// notify systemd: No such file or directory").
#[tokio::test(flavor = "multi_thread")]
async fn an_abstract_notify_socket_hears_ready() {
    let upstream = Upstream::start("app").await;
    let notify = NotifySocket::bind_abstract();
    let config = format!("[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", upstream.url());
    let mut daemon = Daemon::start_with_env(&config, &[("NOTIFY_SOCKET", &notify.address)]);
    assert!(notify.wait_for("READY=1"), "{:?}", daemon.logs());
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(notify.wait_for("STOPPING=1"));
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
    let (proxy, admin) = (local_addr(), local_addr());
    let mut child = socket_activate(&[proxy, admin], "http:admin", &path);
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

/// Found by a probe: sockets from systemd were all served as plain HTTP, and
/// hookgate then bound `[listen.redirect]` and `[listen.tls]` itself, on the
/// same ports ("Address already in use"): the shipped `hookgate.socket` (port
/// 80, named `http`) could never start an `init --tls` config. A socket whose
/// port the config gives to the redirect or TLS listener serves that, and
/// `https` or `redirect` as its name says the same.
#[tokio::test(flavor = "multi_thread")]
async fn sockets_from_systemd_serve_the_redirect_and_tls_their_ports_are_for() {
    if !common::have_tool("systemd-socket-activate", "systemd") {
        return;
    }
    let app = Upstream::start("app").await;
    let pki = common::tls_client::Pki::two_sites();
    let (redirect, https, named) = (local_addr(), local_addr(), local_addr());
    let tables = format!(
        "[listen.redirect]\naddrs = [\"{redirect}\"]\n[listen.tls]\naddrs = [\"{https}\"]\n\
         certificates = [{{ cert_file = \"{a}.pem\", key_file = \"{a}.key\" }}]\n",
        a = pki.path("a")
    );
    let config = format!("{tables}[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", app.url());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = socket_activate(&[redirect, https, named], "http:http:https", &path);
    assert!(eventually(Duration::from_secs(20), || std::net::TcpStream::connect(redirect).is_ok()));
    let moved = get(redirect, "a.test", "/page");
    assert_eq!(moved.status, 308, "{}", moved.body_text());
    for addr in [https, named] {
        let connector = common::tls_client::client(&pki, &[b"http/1.1"]);
        let mut tls = common::tls_client::connect(&connector, addr, "a.test").await;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET /secure HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    }
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let _ = child.wait();
}

/// A free port on 127.0.0.1.
fn local_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// `systemd-socket-activate` listening on `addrs` (named `names`, colon-separated)
/// for `hookgate run -c path`, started by the first connection.
fn socket_activate(addrs: &[std::net::SocketAddr], names: &str, path: &std::path::Path) -> std::process::Child {
    Command::new("systemd-socket-activate")
        .args(addrs.iter().map(|a| format!("--listen={a}")))
        .arg(format!("--fdname={names}"))
        .arg(env!("CARGO_BIN_EXE_hookgate"))
        .args(["run", "-c"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start systemd-socket-activate")
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
