//! A `dedupe` table shared through Redis (`[cluster]`): the first request
//! with a key claims it in Redis as well as in this host's table, and its
//! answer is stored there, so a repeat that lands on another host is answered
//! once too.
//!
//! One Redis key per dedupe key (`dedupe:<route>:<hex of the key>`) holds
//! either a claim in flight (`i` + the claiming node and a token of its own)
//! or the first answer (`a` + status, content-type length, content type,
//! body; set for the window over the claim it replaces). Claiming is one
//! script, a `SET NX` that returns what is held when it is not free, in one
//! round trip. A claim expires after the window or twice the upstream's
//! `response_timeout`, whichever is shorter: a request lasts no longer (its
//! waiters give up at `response_timeout`), and a claim whose host died, or
//! whose release failed, must not hold its key for a whole window. A ticket
//! dropped unanswered deletes the key only while it still holds its own
//! claim. A repeat that finds another host's claim polls it (every `POLL`)
//! within the same wait limit as a local wait, then answers with the stored
//! answer (remembered in this host's table too) or claims again.
//!
//! This host's table stays in front: a repeat on the same host is answered,
//! or waits, there without asking Redis. Redis is a helper: an error, a
//! timeout or a degraded cluster leaves the local decision standing
//! (`fell_back`), and a value that does not parse is no answer (the request
//! is forwarded).

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use redis::Script;
use tokio::time::Instant;

use super::{Answer, Key, MAX_BODY, MAX_CONTENT_TYPE, Settled, Ticket};
use crate::cluster::{Call, Cluster};

/// How often a repeat looks again at another host's claim in flight.
const POLL: Duration = Duration::from_millis(40);

/// Claims KEYS[1] with ARGV[1] for ARGV[2] ms when it holds no claim and no
/// answer (a value of neither kind is overwritten); else returns what it holds.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held then
  local kind = string.sub(held, 1, 1)
  if kind == 'i' or kind == 'a' then return held end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
",
    )
});

/// Stores the answer ARGV[2] for ARGV[3] ms over this ticket's claim ARGV[1]
/// (or where no claim is left); never over another host's claim or answer.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
",
    )
});

/// Deletes KEYS[1] if it still holds the claim ARGV[1].
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// One route's way to the shared table.
pub struct Shared {
    cluster: Arc<Cluster>,
    route: Arc<str>,
}

/// A claim this host holds in Redis, carried by its ticket: the answer is
/// stored over it (`store`), or it is deleted if the ticket ends unanswered.
pub struct SharedClaim {
    cluster: Arc<Cluster>,
    name: String,
    marker: String,
    window: Duration,
}

impl Shared {
    pub fn new(cluster: Arc<Cluster>, route: Arc<str>) -> Shared {
        Shared { cluster, route }
    }

    /// Whether claims go to Redis now (false while degraded).
    #[inline]
    pub fn is_up(&self) -> bool {
        self.cluster.is_up()
    }

    /// Counts a claim this host's table decided alone, Redis skipped.
    pub fn fell_back(&self) {
        self.cluster.fell_back(Call::Dedupe);
    }

    /// The Redis key of `key` on this route.
    fn name(&self, key: &Key) -> String {
        let mut hex = String::with_capacity(self.route.len() + 1 + 2 * key.as_bytes().len());
        hex.push_str(&self.route);
        hex.push(':');
        for byte in key.as_bytes() {
            let _ = write!(hex, "{byte:02x}");
        }
        self.cluster.key("dedupe", &hex)
    }

    /// Claims `ticket`'s key in Redis, after this host's table gave it the
    /// ticket: `Forward` with the claim in the ticket; `Repeat` with the
    /// answer another host stored (remembered here too); `TimedOut` when
    /// another host's claim is still in flight at `deadline`. A failed call
    /// or a value that does not parse forwards with this host's claim alone.
    pub async fn settle(
        &self,
        mut ticket: Ticket,
        window: Duration,
        wait_limit: Duration,
        deadline: Instant,
    ) -> Settled {
        let name = self.name(&ticket.key);
        let marker = marker(self.cluster.node());
        // See the module header.
        let ttl = window.min(wait_limit * 2).max(Duration::from_millis(1));
        loop {
            let mut claim = CLAIM.key(&name);
            claim.arg(&marker).arg(ttl.as_millis() as u64);
            let held = match self.cluster.invoke::<Option<Vec<u8>>>(Call::Dedupe, &claim).await {
                Ok(held) => held,
                Err(_) => {
                    self.cluster.fell_back(Call::Dedupe);
                    return Settled::Forward(ticket);
                }
            };
            let cluster = self.cluster.clone();
            match held.as_deref().map(parse) {
                None => {
                    ticket.shared = Some(Box::new(SharedClaim { cluster, name, marker, window }));
                    return Settled::Forward(ticket);
                }
                Some(Held::Answer(answer)) => {
                    // Later repeats on this host are answered from its own table.
                    ticket.remember(answer.status, answer.content_type.as_ref(), &answer.body);
                    return Settled::Repeat(answer);
                }
                Some(Held::InFlight) if Instant::now() >= deadline => return Settled::TimedOut,
                Some(Held::InFlight) => tokio::time::sleep_until(deadline.min(Instant::now() + POLL)).await,
                Some(Held::Malformed) => {
                    tracing::debug!(key = %name, "dedupe: a value in Redis that is no claim or answer; forwarding");
                    return Settled::Forward(ticket);
                }
            }
        }
    }
}

impl SharedClaim {
    /// Stores the answer (`data`: the content type, `type_len` bytes, then
    /// the body) over the claim, for the window, without waiting for Redis.
    pub fn store(self, status: u16, type_len: usize, data: &[u8]) {
        let value = encode(status, type_len, data);
        spawn(async move {
            let mut store = STORE.key(&self.name);
            store.arg(&self.marker).arg(value).arg(self.window.as_millis() as u64);
            let _ = self.cluster.invoke::<u8>(Call::Dedupe, &store).await;
        });
    }

    /// Deletes the claim, if it is still this ticket's, without waiting.
    pub fn release(self) {
        spawn(async move {
            let mut release = RELEASE.key(&self.name);
            release.arg(&self.marker);
            let _ = self.cluster.invoke::<u8>(Call::Dedupe, &release).await;
        });
    }
}

/// Runs `work` on the runtime, when there is one (a ticket may be dropped
/// outside it, in a unit test).
fn spawn(work: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(work);
    }
}

/// A claim's value: `i`, the node, and a token no other claim has.
fn marker(node: &str) -> String {
    static PROCESS: LazyLock<u64> =
        LazyLock::new(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("i{node}#{:016x}.{}", *PROCESS, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What a key holds in Redis.
#[derive(Debug, PartialEq)]
enum Held {
    InFlight,
    Answer(Answer),
    Malformed,
}

/// `a`, the status (3 digits), the content type's length (3 digits), the
/// content type and the body.
fn encode(status: u16, type_len: usize, data: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(7 + data.len());
    value.extend_from_slice(format!("a{status:03}{type_len:03}").as_bytes());
    value.extend_from_slice(data);
    value
}

/// Reads a value from Redis: anything out of shape (a status that is no
/// 2xx, lengths past the limits this host remembers) is `Malformed`.
fn parse(value: &[u8]) -> Held {
    let digits = |range: std::ops::Range<usize>| {
        let text = std::str::from_utf8(value.get(range)?).ok()?;
        text.bytes().all(|b| b.is_ascii_digit()).then(|| text.parse::<usize>().ok()).flatten()
    };
    match value.first() {
        Some(b'i') => return Held::InFlight,
        Some(b'a') => {}
        _ => return Held::Malformed,
    }
    let (Some(status), Some(type_len)) = (digits(1..4), digits(4..7)) else { return Held::Malformed };
    let rest = &value[7..];
    if !(200..300).contains(&status) || type_len > MAX_CONTENT_TYPE || type_len > rest.len() {
        return Held::Malformed;
    }
    let (content_type, body) = rest.split_at(type_len);
    if body.len() > MAX_BODY {
        return Held::Malformed;
    }
    let content_type = match content_type {
        [] => None,
        bytes => match HeaderValue::from_bytes(bytes) {
            Ok(value) => Some(value),
            Err(_) => return Held::Malformed,
        },
    };
    Held::Answer(Answer { status: status as u16, content_type, body: Bytes::copy_from_slice(body) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_as_stored_and_anything_else_is_no_answer() {
        let stored = encode(201, 16, b"application/json{\"ok\":true}");
        let Held::Answer(answer) = parse(&stored) else { panic!("{stored:?}") };
        assert_eq!(answer.status, 201);
        assert_eq!(answer.content_type.unwrap(), "application/json");
        assert_eq!(&answer.body[..], b"{\"ok\":true}");
        let Held::Answer(empty) = parse(&encode(200, 0, b"")) else { panic!() };
        assert_eq!((empty.content_type, empty.body.len()), (None, 0));
        assert_eq!(parse(marker("edge-1").as_bytes()), Held::InFlight);
        assert!(marker("edge-1").starts_with("iedge-1#") && marker("a") != marker("a"));
        let long = encode(200, 0, &[b'x'; MAX_BODY + 1]);
        for bad in [
            &b""[..],
            b"x",
            b"a",
            b"a20",
            b"a2000",
            b"a500000oops",
            b"a-20000",
            b"a+2000",
            b"a200009short",
            b"a200999",
            b"a200002\n\rbody",
            &long,
        ] {
            assert_eq!(parse(bad), Held::Malformed, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn keys_are_the_route_and_the_key_bytes_in_hex() {
        let settings = crate::config::Config::from_toml_str(
            "[cluster]\nredis = \"redis://127.0.0.1:1/0\"\nnode = \"n\"\n[default]\nrespond = { status = 404 }\n",
            "hookgate.toml",
        )
        .unwrap()
        .cluster
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let cluster = Cluster::start(settings, &crate::metrics::Metrics::disabled());
            let shared = Shared::new(cluster, "tg".into());
            assert_eq!(shared.name(&Key::new(b"12:\n").unwrap()), "hookgate:dedupe:tg:31323a0a");
        });
    }
}
