//! The state one config load produces: routes, limits, upstream clients, and
//! per route its metric handles and guard state. Requests load it once from the
//! server's `ArcSwap` and keep it to the end, so a reload never changes a
//! request mid-flight.

use std::sync::Arc;

use crate::access::RouteRef;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::guards::GuardState;
use crate::metrics::{Metrics, RouteMetrics};
use crate::routes::Action;
use crate::spool::depot::Depot;
use crate::upstream::UpstreamClient;

/// Everything a request needs that comes from one config load: routes,
/// limits, upstream clients and, per route, its runtime record.
pub struct State {
    pub config: Config,
    /// One client per `config.upstreams` entry, same order.
    pub upstreams: Vec<UpstreamClient>,
    /// One per route, same order as the route table.
    routes: Vec<RouteRuntime>,
    default_metrics: Arc<RouteMetrics>,
    unrouted_metrics: Arc<RouteMetrics>,
    /// The spool, once opened (it outlives reloads); `None` without one, or
    /// when it could not be opened: `store` routes then forward as without it.
    pub depot: Option<Arc<Depot>>,
    /// `[cluster]`'s membership (it outlives reloads): the guards, the
    /// Telegram repair and ACME share their state through it.
    pub cluster: Option<Arc<Cluster>>,
}

/// What a route holds at run time besides its config: its metric handles and
/// its guards' state (rate-limit buckets, in-flight counters).
struct RouteRuntime {
    metrics: Arc<RouteMetrics>,
    guards: GuardState,
}

impl State {
    /// `previous` is the state this one replaces on a reload: per-route
    /// state that must outlive a reload (dedupe tables) is carried over by
    /// route name. With `cluster`, the guards share their state through it.
    pub fn new(config: Config, metrics: &Metrics, previous: Option<&State>, cluster: Option<&Arc<Cluster>>) -> Self {
        let upstreams: Vec<UpstreamClient> =
            config.upstreams.iter().map(|u| UpstreamClient::new(u.clone(), metrics.upstream(&u.name))).collect();
        let upstream_of = |action: &Action| match action {
            Action::Upstream(i) => config.upstreams[*i].name.to_string(),
            Action::Respond(_) => NONE.to_string(),
        };
        let routes = config
            .routes
            .routes()
            .iter()
            .map(|r| {
                let mut route_metrics = metrics.route(&r.name, &upstream_of(&r.action));
                route_metrics.verify = r.guards.verify.as_ref().map(|_| metrics.verify(&r.name));
                RouteRuntime {
                    metrics: Arc::new(route_metrics),
                    guards: GuardState::new(
                        &r.guards,
                        previous.and_then(|p| p.route_runtime(&r.name)),
                        cluster.map(|c| (c, &*r.name)),
                    ),
                }
            })
            .collect();
        let default_metrics = Arc::new(metrics.route("default", &upstream_of(config.routes.default_action())));
        let unrouted_metrics = Arc::new(metrics.route(NONE, NONE));
        let depot = previous.and_then(|p| p.depot.clone());
        let cluster = cluster.cloned();
        State { config, upstreams, routes, default_metrics, unrouted_metrics, depot, cluster }
    }

    /// The same state with `depot` as its spool.
    pub fn with_depot(mut self, depot: Option<Arc<Depot>>) -> Self {
        self.depot = depot;
        self
    }

    /// Whether requests of `route` are kept: it has `store` and the spool is open.
    #[inline(always)]
    pub fn keeps(&self, route: RouteRef) -> bool {
        match route {
            RouteRef::Route(i) => self.depot.is_some() && self.config.routes.routes()[i].store.is_some(),
            _ => false,
        }
    }

    fn route_runtime(&self, name: &str) -> Option<&GuardState> {
        let index = self.config.routes.routes().iter().position(|r| *r.name == *name)?;
        Some(&self.routes[index].guards)
    }

    pub fn guard_state(&self, route: usize) -> &GuardState {
        &self.routes[route].guards
    }

    /// Forgets idle rate-limit buckets; returns how many are tracked, per route.
    pub fn sweep_guards(&self) -> Vec<(Arc<str>, usize)> {
        let routes = self.config.routes.routes();
        routes.iter().zip(&self.routes).map(|(r, run)| (r.name.clone(), run.guards.sweep())).collect()
    }

    /// The metric handles a request counted under `route` records into.
    pub fn route_metrics(&self, route: RouteRef) -> &Arc<RouteMetrics> {
        match route {
            RouteRef::Unrouted => &self.unrouted_metrics,
            RouteRef::Default => &self.default_metrics,
            RouteRef::Route(i) => &self.routes[i].metrics,
        }
    }
}

const NONE: &str = "-";
