//! Configs served from sockets systemd passes (`systemd-socket-activate`):
//! `check` and `run` take them, and one that is not listening is refused.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `body` as `hookgate.toml` in `dir`.
fn write(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("hookgate.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// Under real socket activation a config with no listen address passes
/// `check` and `run` serves it.
#[test]
fn socket_activation_supplies_the_listener_to_check_and_run() {
    if !common::have_tool("systemd-socket-activate", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "[default]\nrespond = { status = 200, body = \"activated\\n\" }\n");
    let check = activated(&[], &["check"], &path, |addr| {
        let _ = TcpStream::connect(addr);
    });
    let out = check.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("config OK"), "{}", text(&out.stdout));

    let mut answer = String::new();
    let mut run = activated(&[], &["run"], &path, |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").unwrap();
        let _ = stream.read_to_string(&mut answer);
    });
    let _ = Command::new("kill").arg("-TERM").arg(run.id().to_string()).status();
    let _ = run.wait();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("activated\n"), "{answer}");
}

/// Found by a probe: a connected socket (`Accept=yes`) was taken for a
/// listener: hookgate said it was ready, then failed to accept every 100 ms,
/// forever, and the client hung. It is refused at start.
#[test]
fn a_socket_from_systemd_that_is_not_listening_is_refused() {
    if !common::have_tool("systemd-socket-activate", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "[default]\nrespond = { status = 200 }\n");
    let mut closed = None;
    let run = activated(&["--accept"], &["run"], &path, |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        closed = Some(stream.read(&mut [0; 64]).map_err(|e| e.kind()));
    });
    // hookgate exited, so the connection it was handed closed unanswered.
    assert_eq!(closed, Some(Ok(0)));
    let _ = Command::new("kill").arg("-TERM").arg(run.id().to_string()).status();
    let out = run.wait_with_output().unwrap();
    assert!(text(&out.stderr).contains("socket 0 from systemd is not listening"), "{}", text(&out.stderr));
}

/// Starts `hookgate ARGS -c FILE` under `systemd-socket-activate OPTIONS` on
/// a free loopback port, and calls `first` with the address once it listens
/// (the first connection starts hookgate).
fn activated(options: &[&str], args: &[&str], file: &Path, first: impl FnOnce(SocketAddr)) -> std::process::Child {
    let addr = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let child = Command::new("systemd-socket-activate")
        .args(options)
        .arg(format!("--listen={addr}"))
        .arg(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .arg("-c")
        .arg(file)
        .env_remove("HOOKGATE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-socket-activate");
    let listening = common::eventually(Duration::from_secs(20), || TcpStream::connect(addr).is_ok());
    assert!(listening, "systemd-socket-activate never listened");
    first(addr);
    child
}
