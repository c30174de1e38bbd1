//! Reload: routes, upstreams and listeners change without dropping a request
//! or a tunnel; an invalid file keeps the old config serving; the admin
//! endpoints report it all.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, Upstream, eventually, get, raw};

/// A config sending everything to `app`, with the admin listener on `admin`.
fn config_with_admin(app: &Upstream, admin: &str) -> String {
    format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\naddr = \"{admin}\"\n[upstreams.app]\nurl = \"{}\"\n[[routes]]\nname = \"ws\"\npath = \"/ws\"\nupstream = \"app\"\n[default]\nupstream = \"app\"\n",
        app.url()
    )
}

fn config(app: &Upstream) -> String {
    config_with_admin(app, "127.0.0.1:0")
}

fn reloads_done(daemon: &Daemon) -> usize {
    daemon.logs().iter().filter(|l| l.contains("reloaded") || l.contains("reload failed")).count()
}

fn reload_and_wait(daemon: &Daemon) {
    let before = reloads_done(daemon);
    daemon.signal("HUP");
    assert!(eventually(Duration::from_secs(10), || reloads_done(daemon) > before), "reload never finished");
}

fn open_websocket(addr: SocketAddr) -> TcpStream {
    let mut ws = TcpStream::connect(addr).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ws.write_all(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut ws).unwrap().status, 101);
    ws
}

fn echo(ws: &mut TcpStream, message: &str) {
    ws.write_all(message.as_bytes()).unwrap();
    let mut back = vec![0u8; message.len()];
    ws.read_exact(&mut back).unwrap();
    assert_eq!(back, message.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_requests_and_tunnels_survive_a_switch_to_a_new_upstream() {
    let v1 = Upstream::start("v1").await;
    let v2 = Upstream::start("v2").await;
    let daemon = Daemon::start(&config(&v1));
    let addr = daemon.addr;
    let mut ws = open_websocket(addr);
    echo(&mut ws, "before reload");
    let slow: Vec<_> = (0..5).map(|_| std::thread::spawn(move || get(addr, "h", "/slow?ms=1500"))).collect();
    assert!(eventually(Duration::from_secs(5), || v1.seen().len() >= 6), "slow requests never reached v1");

    daemon.rewrite_config(&config(&v2));
    reload_and_wait(&daemon);
    assert_eq!(get(addr, "h", "/after").body_text(), "v2", "new requests must go to v2");
    echo(&mut ws, "after reload: the tunnel is still open");
    for request in slow {
        let response = request.join().unwrap();
        assert_eq!((response.status, response.body_text().as_str()), (200, "slow done"));
    }
    assert_eq!(v1.seen().iter().filter(|s| s.target.starts_with("/slow")).count(), 5);
    assert!(v2.seen().iter().all(|s| !s.target.starts_with("/slow")));
    echo(&mut ws, "still echoing");
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_under_load_fail_no_request() {
    let v1 = Upstream::start("v1").await;
    let v2 = Upstream::start("v2").await;
    let daemon = Daemon::start(&config(&v1));
    let addr = daemon.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Four keep-alive clients, each pausing 4 ms between requests.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(15);
                let mut stream: Option<TcpStream> = None;
                // One keep-alive connection per client, opened on first use.
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let s = stream.get_or_insert_with(|| {
                        let s = TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        s
                    });
                    let sent = s.write_all(b"GET /load HTTP/1.1\r\nHost: h\r\n\r\n").is_ok();
                    match common::read_response(s) {
                        Ok(r) if sent && r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(Duration::from_millis(4));
                }
            })
        })
        .collect();
    for i in 0..5 {
        // Each config serves at least 250 requests before the next reload.
        let served = ok.load(Ordering::Relaxed) + 250;
        assert!(eventually(Duration::from_secs(10), || ok.load(Ordering::Relaxed) >= served), "the load stalled");
        daemon.rewrite_config(&config(if i % 2 == 0 { &v2 } else { &v1 }));
        reload_and_wait(&daemon);
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} requests failed across 5 reloads ({ok} succeeded)");
    assert!(ok > 1000, "the load loop ran only {ok} requests");
    assert!(!v1.seen().is_empty() && !v2.seen().is_empty());
    assert_eq!(daemon.logs().iter().filter(|l| l.contains("reloaded")).count(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_file_keeps_the_old_routes_and_says_why() {
    let v1 = Upstream::start("v1").await;
    let v2 = Upstream::start("v2").await;
    let daemon = Daemon::start(&config(&v1));
    let broken = config(&v2).replace("upstream = \"app\"\n[default]", "upstream = \"nope\"\n[default]");
    daemon.rewrite_config(&broken);
    reload_and_wait(&daemon);
    let line = daemon.wait_for_log("no upstream named \"nope\"", Duration::from_secs(5));
    assert!(line.contains("hookgate.toml:") && line.contains("routes[0].upstream"), "{line}");
    assert_eq!(get(daemon.addr, "h", "/").body_text(), "v1");
    let metrics = get(daemon.admin.unwrap(), "localhost", "/metrics").body_text();
    assert!(metrics.contains("hookgate_config_last_reload_successful 0"), "{metrics}");
    assert!(metrics.contains("hookgate_config_reloads_total{result=\"failure\"} 1"), "{metrics}");

    // Fixing the file and reloading again recovers.
    daemon.rewrite_config(&config(&v2));
    reload_and_wait(&daemon);
    assert_eq!(get(daemon.addr, "h", "/").body_text(), "v2");
    let metrics = get(daemon.admin.unwrap(), "localhost", "/metrics").body_text();
    assert!(metrics.contains("hookgate_config_last_reload_successful 1"), "{metrics}");
}

/// What only a restart changes is compared with what the daemon started
/// with: `[log]` (and `[runtime] workers`) changed warns, and put back it warns no more (found by the
/// walkthrough of 2026-12-07: the second reload warned too, comparing with
/// the file loaded last).
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_only_setting_put_back_is_not_warned_about() {
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&config(&app));
    daemon.rewrite_config(&format!("[log]\nlevel = \"warn\"\n[runtime]\nworkers = 97\n{}", config(&app)));
    reload_and_wait(&daemon);
    daemon.rewrite_config(&config(&app));
    reload_and_wait(&daemon);
    let summaries: Vec<String> = daemon.logs().into_iter().filter(|l| l.contains("reloaded")).collect();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    assert!(summaries[0].contains("[log] changed; it takes effect at the next restart"), "{summaries:?}");
    assert!(summaries[0].contains("[runtime] workers changed; it takes effect"), "{summaries:?}");
    assert!(!summaries[1].contains("changed"), "the file is as the daemon started: {summaries:?}");
}

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::free_port()))
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_binds_new_addresses_and_closes_removed_ones_only() {
    let app = Upstream::start("app").await;
    let (a, b) = (free_addr(), free_addr());
    let with = |addrs: &str| config(&app).replace("addrs = [\"127.0.0.1:0\"]", &format!("addrs = [{addrs}]"));
    let daemon = Daemon::start(&with(&format!("\"{a}\"")));
    let mut kept = TcpStream::connect(a).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    kept.write_all(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut kept).unwrap().status, 200);

    daemon.rewrite_config(&with(&format!("\"{a}\", \"{b}\"")));
    reload_and_wait(&daemon);
    assert_eq!(get(b, "h", "/on-b").status, 200);
    // The unchanged address was not re-bound: its open connection still works.
    kept.write_all(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut kept).unwrap().status, 200);
    assert_eq!(daemon.listening_addrs().iter().filter(|x| **x == a).count(), 1);

    daemon.rewrite_config(&with(&format!("\"{b}\"")));
    reload_and_wait(&daemon);
    assert!(eventually(Duration::from_secs(5), || TcpStream::connect(a).is_err()), "removed address still accepts");
    assert_eq!(get(b, "h", "/still-b").status, 200);

    // An address that cannot be bound fails the reload and changes nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    daemon.rewrite_config(&with(&format!("\"{b}\", \"{taken_addr}\"")).replace("/ws", "/ws2"));
    reload_and_wait(&daemon);
    daemon.wait_for_log("cannot listen on", Duration::from_secs(5));
    assert!(daemon.logs().iter().any(|l| l.contains("reload failed")));
    let routes = raw(b, b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(routes.status, 101, "the old route table must still serve");

    // A config with no listen address at all is refused: the daemon would have
    // closed every listener and listened nowhere.
    daemon.rewrite_config(&with(""));
    reload_and_wait(&daemon);
    daemon.wait_for_log("would listen nowhere", Duration::from_secs(5));
    assert_eq!(get(b, "h", "/still-listening").status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_and_hookgate_reload() {
    let app = Upstream::start("app").await;
    // `hookgate reload` reads the admin address from the file, so it needs a real port.
    let admin_addr = free_addr();
    let mut daemon = Daemon::start(&config_with_admin(&app, &admin_addr.to_string()));
    let admin = daemon.admin.expect("admin listener");
    assert_eq!(admin, admin_addr);
    assert_eq!(get(admin, "localhost", "/healthz").body_text(), "ok\n");
    assert_eq!(get(admin, "localhost", "/readyz").status, 200);
    assert_eq!(get(admin, "localhost", "/nope").status, 404);
    get(daemon.addr, "h", "/counted");
    raw(daemon.addr, b"GET /a/../b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    // A request is counted when its last byte has been written, which the
    // client can see a moment before hookgate finishes the count.
    let counted = |metrics: &str| metrics.contains("class=\"2xx\"} 1") && metrics.contains("class=\"4xx\"} 1");
    assert!(eventually(Duration::from_secs(5), || counted(&get(admin, "localhost", "/metrics").body_text())));
    let metrics = get(admin, "localhost", "/metrics").body_text();
    for needle in [
        "hookgate_requests_total{route=\"default\",upstream=\"app\",class=\"2xx\"} 1",
        "hookgate_requests_total{route=\"-\",upstream=\"-\",class=\"4xx\"} 1",
        "hookgate_request_duration_seconds_bucket{route=\"default\",le=",
        "hookgate_build_info{version=",
        "hookgate_open_connections",
        "# TYPE hookgate_requests_total counter",
    ] {
        assert!(metrics.contains(needle), "missing {needle:?} in:\n{metrics}");
    }

    // `hookgate reload` validates locally, then asks the daemon through [admin].
    let out =
        Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["reload", "-c"]).arg(&daemon.config_path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reloaded"));
    assert!(
        get(admin, "localhost", "/metrics").body_text().contains("hookgate_config_reloads_total{result=\"success\"} 1")
    );
    // Another file is not what the daemon reloads: it is not asked (found by
    // a probe: it reloaded its own file and answered "reloaded").
    let other = daemon.config_path.with_file_name("other.toml");
    std::fs::copy(&daemon.config_path, &other).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["reload", "-c"]).arg(&other).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("it reloads only its own file"), "{said}");
    let metrics = get(admin, "localhost", "/metrics").body_text();
    assert!(metrics.contains("hookgate_config_reloads_total{result=\"success\"} 1"), "{metrics}");
    std::fs::write(&daemon.config_path, "[listen]\nbogus = 1\n").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["reload", "-c"]).arg(&daemon.config_path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));

    // While draining, /readyz says so.
    let addr = daemon.addr;
    let in_flight = std::thread::spawn(move || get(addr, "h", "/slow?ms=1500"));
    assert!(eventually(Duration::from_secs(5), || app.seen().iter().any(|s| s.target.starts_with("/slow"))));
    daemon.signal("TERM");
    assert!(eventually(Duration::from_secs(5), || get(admin, "localhost", "/readyz").status == 503));
    assert_eq!(get(admin, "localhost", "/readyz").body_text(), "draining\n");
    assert_eq!(in_flight.join().unwrap().status, 200);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
}
