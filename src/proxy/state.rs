//! The state one config load produces: routes, limits, upstream clients, and
//! per route its metric handles and guard state. Requests load it once from the
//! server's `ArcSwap` and keep it to the end, so a reload never changes a
//! request mid-flight.

use std::sync::Arc;

use crate::config::Config;
use crate::guards::GuardState;
use crate::metrics::{Metrics, RouteMetrics};
use crate::routes::Action;
use crate::upstream::UpstreamClient;

/// Everything a request needs that comes from one config load: routes,
/// limits, upstream clients and the metric handles that go with them.
pub struct State {
    pub config: Config,
    /// One client per `config.upstreams` entry, same order.
    pub upstreams: Vec<UpstreamClient>,
    /// One per route, same order as the route table.
    route_metrics: Vec<RouteMetrics>,
    default_metrics: RouteMetrics,
    unrouted_metrics: RouteMetrics,
    /// One per route: rate-limit buckets and in-flight counters.
    guard_states: Vec<GuardState>,
}

/// Which route a request was counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef {
    /// Refused before a route was chosen (bad target, bad Host, ...).
    Unrouted,
    Default,
    Route(usize),
}

impl State {
    pub fn new(config: Config, metrics: &Metrics) -> Self {
        let upstreams: Vec<UpstreamClient> =
            config.upstreams.iter().map(|u| UpstreamClient::new(u.clone(), metrics.upstream(&u.name))).collect();
        let upstream_of = |action: &Action| match action {
            Action::Upstream(i) => config.upstreams[*i].name.to_string(),
            Action::Respond(_) => NONE.to_string(),
        };
        let route_metrics =
            config.routes.routes().iter().map(|r| metrics.route(&r.name, &upstream_of(&r.action))).collect();
        let default_metrics = metrics.route("default", &upstream_of(config.routes.default_action()));
        let unrouted_metrics = metrics.route(NONE, NONE);
        let guard_states = config.routes.routes().iter().map(|r| GuardState::new(&r.guards)).collect();
        State { config, upstreams, route_metrics, default_metrics, unrouted_metrics, guard_states }
    }

    pub fn guard_state(&self, route: usize) -> &GuardState {
        &self.guard_states[route]
    }

    /// Forgets idle rate-limit buckets; returns how many are tracked, per route.
    pub fn sweep_guards(&self) -> Vec<(Arc<str>, usize)> {
        let routes = self.config.routes.routes();
        routes.iter().zip(&self.guard_states).map(|(r, g)| (r.name.clone(), g.sweep())).collect()
    }

    pub fn route_metrics(&self, route: RouteRef) -> &RouteMetrics {
        match route {
            RouteRef::Unrouted => &self.unrouted_metrics,
            RouteRef::Default => &self.default_metrics,
            RouteRef::Route(i) => &self.route_metrics[i],
        }
    }
}

const NONE: &str = "-";
