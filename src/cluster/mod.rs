//! Several hosts, one state (`[cluster]`): the handle to the Redis that
//! hookgate instances share, its health, and the leader lease.
//!
//! Without `[cluster]` nothing here runs and every host keeps its state alone.
//! With it, the guards ask Redis (dedupe claims, rate-limit buckets), and one
//! host at a time, the leader, repairs the Telegram webhook and orders ACME
//! certificates. Redis is a helper, never a dependency of traffic:
//! - every call has a deadline (`call_timeout`, 50 ms by default) and its
//!   caller falls back to the host's own tables when it fails;
//! - a host that saw a call fail is **degraded**: calls on the request path
//!   are skipped at once (no 50 ms each) until the health probe, once a
//!   second, reaches Redis again; then the host rejoins, with no restart;
//! - while degraded no host is leader (`lease`), so repair and ACME wait.
//!
//! The connection is redis-rs's `ConnectionManager`: one multiplexed
//! connection, reconnected with back-off in the background, cloned per call.
//! `Cluster::call` and `Cluster::invoke` are the one way to Redis: they time
//! the call, count it, and mark the host degraded or up. `acme` keeps ACME's
//! certificate and challenges in Redis, sealed; `json`, the leader's small
//! JSON values (the Telegram repair's memory, the webhook view).

mod acme;
mod json;
mod lease;

pub use acme::SharedCertificate;
pub use lease::Fence;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionInfo, FromRedisValue, IntoConnectionInfo, ScriptInvocation};
use tokio::sync::watch;

use crate::metrics::{ClusterMetrics, Metrics};
use crate::secret::Secret;

/// A validated `[cluster]`.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub redis: RedisUrl,
    /// `password_file`: sent with `AUTH`; never in the URL.
    pub password: Option<Secret>,
    /// Put before every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// This host's name on the status page, in metrics and in the lease.
    pub node: String,
    /// The deadline of one call on the request path.
    pub call_timeout: Duration,
    /// How long the leader's lease lasts unless renewed.
    pub lease: Duration,
    /// `encryption_key_file`: the key certificates are encrypted with in Redis.
    pub encryption_key: Option<Secret>,
}

impl ClusterSettings {
    pub const DEFAULT_KEY_PREFIX: &str = "hookgate:";
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(50);
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

    /// What a reload compares to say that a changed `[cluster]` waits for a
    /// restart: every setting, the secrets by their bytes.
    pub fn fingerprint(&self) -> impl PartialEq + use<> {
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_vec());
        let ClusterSettings { redis, password, key_prefix, node, call_timeout, lease, encryption_key } = self;
        let text = (redis.as_str().to_string(), key_prefix.clone(), node.clone());
        (text, *call_timeout, *lease, secret(password), secret(encryption_key))
    }

    /// The host name, for `node` when the file does not set one.
    pub fn host_name() -> String {
        let name = rustix::system::uname().nodename().to_string_lossy().into_owned();
        if name.is_empty() { "hookgate".to_string() } else { name }
    }
}

/// A `redis://` or `rediss://` URL, parsed; shown as written.
#[derive(Clone)]
pub struct RedisUrl {
    written: String,
    info: ConnectionInfo,
}

impl RedisUrl {
    /// Parses `url`. A password in it is refused: it would show wherever the
    /// URL does (the status page, logs); it goes in `password_file`.
    pub fn parse(url: &str) -> Result<Self, ClusterError> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ClusterError::Url(format!("{url:?}: the scheme must be redis:// or rediss://")));
        }
        let info = url.into_connection_info().map_err(|e| ClusterError::Url(format!("{url:?}: {e}")))?;
        // The URL is shown on the status page, in logs and by `check`.
        if info.redis_settings().password().is_some() || url.to_ascii_lowercase().contains("password=") {
            return Err(ClusterError::PasswordInUrl);
        }
        Ok(RedisUrl { written: url.to_string(), info })
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

impl PartialEq for RedisUrl {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

/// Why a call to Redis (or the cluster's set-up) failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("invalid redis URL {0}")]
    Url(String),
    #[error("a password goes in password_file, never in the redis URL")]
    PasswordInUrl,
    #[error("Redis did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("Redis: {0}")]
    Redis(String),
    /// ACME state is shared only sealed, and `[cluster]` has no `encryption_key_file`.
    #[error("[cluster] has no encryption_key_file: ACME certificates are not shared")]
    NoEncryptionKey,
    /// Degraded: the call was not tried (see the module header).
    #[error("Redis is unreachable (degraded)")]
    Degraded,
}

/// What a call is for: its `call` label in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Dedupe,
    RateLimit,
    Lease,
    Acme,
    Probe,
}

impl Call {
    pub const ALL: [Call; 5] = [Call::Dedupe, Call::RateLimit, Call::Lease, Call::Acme, Call::Probe];

    pub fn as_str(self) -> &'static str {
        match self {
            Call::Dedupe => "dedupe",
            Call::RateLimit => "rate_limit",
            Call::Lease => "lease",
            Call::Acme => "acme",
            Call::Probe => "probe",
        }
    }
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DEGRADED: u8 = 2;

/// How often a host probes Redis (and so how soon a degraded host rejoins).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The deadline of calls off the request path (the probe, the lease, ACME).
const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// The running cluster membership: one per process, for its whole life
/// (`[cluster]` is read at start-up; a reload that changes it says so).
pub struct Cluster {
    settings: ClusterSettings,
    redis: ConnectionManager,
    /// `UNKNOWN` until the first call, then `UP` or `DEGRADED`.
    state: AtomicU8,
    health: Mutex<Health>,
    metrics: ClusterMetrics,
    /// `Some` while this host holds the lease.
    leadership: watch::Sender<Option<Fence>>,
    /// The lease's holder as last read (this host or another), for the status page.
    leader: Mutex<Option<String>>,
    /// Set at shutdown: the lease is not taken again once released.
    stopping: AtomicBool,
}

/// What the status page says about Redis besides up or down.
#[derive(Debug, Clone, Default)]
struct Health {
    since: Option<Instant>,
    last_error: Option<String>,
}

/// The cluster as `hookgate status`, the status page and `/status.json` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterReport {
    pub node: String,
    pub redis: String,
    /// `connecting` (no call answered or failed yet), `sharing`, or
    /// `degraded` (Redis unreachable: state per host, no leader).
    pub state: &'static str,
    /// Seconds in the current state.
    pub for_seconds: u64,
    pub last_error: Option<String>,
    /// The lease holder's node name, if any host holds it.
    pub leader: Option<String>,
    pub is_leader: bool,
}

impl Cluster {
    /// Connects lazily (a host starts, and serves, with Redis down) and starts
    /// the health probe and the lease.
    pub fn start(settings: ClusterSettings, metrics: &Metrics) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster::new(settings, metrics));
        tokio::spawn(probe(Arc::downgrade(&cluster)));
        tokio::spawn(lease::hold(Arc::downgrade(&cluster)));
        cluster
    }

    fn new(settings: ClusterSettings, metrics: &Metrics) -> Cluster {
        let mut info = settings.redis.info.clone();
        if let Some(password) = &settings.password {
            let redis = info.redis_settings().clone().set_password(String::from_utf8_lossy(password.expose()));
            info = info.set_redis_settings(redis);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(BACKGROUND_TIMEOUT))
            .set_response_timeout(Some(BACKGROUND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(PROBE_EVERY);
        let redis = redis::Client::open(info)
            .and_then(|client| ConnectionManager::new_lazy_with_config(client, config))
            .expect("a parsed URL makes a client");
        let guards = [Call::Dedupe, Call::RateLimit].map(Call::as_str);
        let metrics = metrics.cluster(&settings.node, &Call::ALL.map(Call::as_str), &guards);
        metrics.redis_up.set(0.0);
        Cluster {
            settings,
            redis,
            // Calls are tried until one fails.
            state: AtomicU8::new(UNKNOWN),
            health: Mutex::new(Health { since: Some(Instant::now()), last_error: None }),
            metrics,
            leadership: watch::Sender::new(None),
            leader: Mutex::new(None),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    pub fn node(&self) -> &str {
        &self.settings.node
    }

    /// The Redis key for `name` of `kind` (`dedupe`, `rate`, ...), under the prefix.
    pub fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.settings.key_prefix)
    }

    /// Whether calls are tried: false while degraded.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.state.load(Ordering::Relaxed) != DEGRADED
    }

    /// Runs `cmd` within `call_timeout` (request path) or the background
    /// deadline (`Call::Lease`, `Call::Acme`, `Call::Probe`).
    pub async fn call<T: FromRedisValue>(&self, call: Call, cmd: &redis::Cmd) -> Result<T, ClusterError> {
        let mut redis = self.redis.clone();
        self.timed(call, async move { cmd.query_async(&mut redis).await }).await
    }

    /// Runs a Lua script (`script.key(..).arg(..)`) as `call` does a command:
    /// one round trip for a whole check (GCRA, compare-and-renew).
    pub async fn invoke<T: FromRedisValue>(
        &self,
        call: Call,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        let mut redis = self.redis.clone();
        self.timed(call, async move { invocation.invoke_async(&mut redis).await }).await
    }

    async fn timed<T>(&self, call: Call, work: impl Future<Output = redis::RedisResult<T>>) -> Result<T, ClusterError> {
        let on_request_path = matches!(call, Call::Dedupe | Call::RateLimit);
        if on_request_path && !self.is_up() {
            return Err(ClusterError::Degraded);
        }
        let limit = if on_request_path { self.settings.call_timeout } else { BACKGROUND_TIMEOUT };
        let started = Instant::now();
        let outcome = match tokio::time::timeout(limit, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ClusterError::Redis(e.to_string())),
            Err(_) => Err(ClusterError::TimedOut(limit)),
        };
        self.metrics.call(call.as_str(), started.elapsed(), outcome.is_ok());
        // Any failure degrades, a refused password or a script's error too:
        // the state is not shared until Redis answers again, and the status
        // page shows the error.
        match &outcome {
            Ok(_) => self.mark_up(),
            Err(e) => self.mark_down(e),
        }
        outcome
    }

    /// Counts a request-path fallback to the host's own table (`what`: the
    /// guard), after a failed or skipped call.
    pub fn fell_back(&self, what: Call) {
        self.metrics.fallback(what.as_str());
    }

    fn mark_up(&self) {
        if self.state.swap(UP, Ordering::Relaxed) != UP {
            let mut health = lock(&self.health);
            health.since = Some(Instant::now());
            health.last_error = None;
            self.metrics.redis_up.set(1.0);
            tracing::info!(node = %self.settings.node, redis = %self.settings.redis.as_str(), "cluster: Redis reachable; sharing state");
        }
    }

    fn mark_down(&self, error: &ClusterError) {
        // No leader while Redis cannot confirm the lease; stepping down before
        // the state turns means no report ever shows a degraded leader.
        lease::step_down(self, "Redis is unreachable");
        let was = self.state.swap(DEGRADED, Ordering::Relaxed);
        let mut health = lock(&self.health);
        health.last_error = Some(error.to_string());
        if was != DEGRADED {
            health.since = Some(Instant::now());
            self.metrics.redis_up.set(0.0);
            tracing::warn!(node = %self.settings.node, redis = %self.settings.redis.as_str(), "cluster: degraded: {error}; dedupe and rate limits use this host's own tables, and no host leads, until Redis answers again");
        }
    }

    /// This host's lease, while it holds it: pass it to `still_leads` before acting.
    pub fn leadership(&self) -> Option<Fence> {
        self.leadership.borrow().clone()
    }

    /// Changes when this host gains or loses the lease.
    pub fn watch_leadership(&self) -> watch::Receiver<Option<Fence>> {
        self.leadership.subscribe()
    }

    /// Checks in Redis, just before an action, that `fence` still holds the
    /// lease: a host that paused past its lease must not act on old news.
    pub async fn still_leads(&self, fence: &Fence) -> bool {
        lease::still_holds(self, fence).await
    }

    /// Gives the lease up at shutdown, so another host takes it at once.
    pub async fn release(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        lease::release(self).await;
    }

    pub fn report(&self) -> ClusterReport {
        let health = lock(&self.health).clone();
        let leader = lock(&self.leader).clone();
        let state = self.state.load(Ordering::Relaxed);
        ClusterReport {
            node: self.settings.node.clone(),
            redis: self.settings.redis.as_str().to_string(),
            state: match state {
                UP => "sharing",
                DEGRADED => "degraded",
                _ => "connecting",
            },
            for_seconds: health.since.map_or(0, |since| since.elapsed().as_secs()),
            last_error: health.last_error,
            leader,
            is_leader: state != DEGRADED && self.leadership.borrow().is_some(),
        }
    }
}

/// Pings Redis once a second while the cluster lives: the way back from degraded.
async fn probe(cluster: std::sync::Weak<Cluster>) {
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(cluster) = cluster.upgrade() else { return };
        let _ = cluster.call::<String>(Call::Probe, &redis::cmd("PING")).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_redis_and_rediss_and_never_a_password() {
        assert!(RedisUrl::parse("redis://10.0.0.5:6379/0").is_ok());
        assert!(RedisUrl::parse("rediss://redis.example:6380/1").is_ok());
        assert!(RedisUrl::parse("redis://ops@10.0.0.5:6379/0").is_ok(), "an ACL user name may be in it");
        let with_password = RedisUrl::parse("redis://:hunter2@10.0.0.5:6379/0").unwrap_err();
        assert!(with_password.to_string().contains("password_file"), "{with_password}");
        assert!(!with_password.to_string().contains("hunter2"));
        assert_eq!(
            RedisUrl::parse("redis://10.0.0.5:6379/0?password=hunter2").unwrap_err(),
            ClusterError::PasswordInUrl
        );
        assert!(RedisUrl::parse("http://10.0.0.5:6379").is_err());
        assert!(RedisUrl::parse("redis://").is_err());
    }
}
