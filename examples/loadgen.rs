//! A fixed-rate HTTP/1.1 load generator for latency at light load:
//! `cargo run --release --example loadgen -- URL RATE CONNS SECONDS [BODY_FILE]`.
//!
//! Each of CONNS keep-alive connections sends GETs (or, given BODY_FILE, POSTs
//! of that file's bytes as `application/json`) on its own schedule, so the
//! total is RATE requests per second as long as answers come back within a
//! connection's interval (at light load they do). Prints one line:
//! `requests=N errors=E p50_us=X p99_us=Y` (a request unanswered within 5 s is an
//! error). Used by `bench/compare.sh`, `bench/slow_clients.sh` and `bench/spool.sh`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn usage() -> ! {
    eprintln!("usage: loadgen http://HOST:PORT/PATH RATE CONNS SECONDS [BODY_FILE]");
    std::process::exit(2)
}

/// A new connection, or `None` if none is made within 5 s.
async fn connect(authority: &str) -> Option<TcpStream> {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(authority)).await.ok()?.ok()
}

/// Reads one response with a Content-Length body; false on any error.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return head.starts_with("http/1.1 2");
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(5..=6).contains(&args.len()) {
        usage();
    }
    let url = args[1].strip_prefix("http://").unwrap_or_else(|| usage());
    let (authority, path) = url.split_once('/').map_or((url, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let rate: f64 = args[2].parse().unwrap_or_else(|_| usage());
    let conns: usize = args[3].parse().unwrap_or_else(|_| usage());
    let seconds: f64 = args[4].parse().unwrap_or_else(|_| usage());
    let request = match args.get(5) {
        None => format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes(),
        Some(file) => {
            let body = std::fs::read(file).unwrap_or_else(|e| {
                eprintln!("loadgen: cannot read {file}: {e}");
                std::process::exit(2)
            });
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            [head.into_bytes(), body].concat()
        }
    };
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (authority, request) = (authority.to_string(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut stream = connect(&authority).await;
            let mut buf = Vec::with_capacity(64 * 1024);
            // Spread the connections' schedules over one interval.
            let mut next = Instant::now() + interval.mul_f64(i as f64 / conns as f64);
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                next += interval;
                let Some(s) = stream.as_mut() else {
                    errors += 1;
                    stream = connect(&authority).await;
                    continue;
                };
                // Timed from the write: tokio's timer has millisecond resolution,
                // too coarse to time from the schedule at these latencies.
                let sent = Instant::now();
                // A request not answered within 5 s counts as failed (its connection is replaced).
                let exchange = async { s.write_all(&request).await.is_ok() && read_response(s, &mut buf).await };
                let ok = tokio::time::timeout(Duration::from_secs(5), exchange).await.unwrap_or(false);
                if ok {
                    latencies.push(sent.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                    stream = connect(&authority).await;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((latencies, e)) = task.await {
            all.extend(latencies);
            errors += e;
        }
    }
    all.sort_unstable();
    let pick =
        |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!("requests={} errors={errors} p50_us={} p99_us={}", all.len(), pick(0.50), pick(0.99));
}
