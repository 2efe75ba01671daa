//! Prometheus metrics (`/metrics`).

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::StoreStats;

/// Counters and gauges the host updates.
pub struct Metrics {
    registry: Registry,
    pub ws_connections_total: Counter,
    pub ws_connections_open: Gauge<i64, AtomicI64>,
    pub ws_messages_in_total: Counter,
    pub changes_committed_total: Counter,
    pub sessions_created_total: Counter,
    pub live_sessions: Gauge<i64, AtomicI64>,
    pub http_rate_limited_total: Counter,
    pub store: Arc<StoreStats>,
    store_commits: Counter<u64, AtomicU64>,
    store_commit_seconds: Counter<f64, AtomicU64>,
}

impl Metrics {
    pub fn new(store: Arc<StoreStats>) -> Metrics {
        let mut registry = Registry::with_prefix("keyboardia");
        let m = Metrics {
            ws_connections_total: Counter::default(),
            ws_connections_open: Gauge::default(),
            ws_messages_in_total: Counter::default(),
            changes_committed_total: Counter::default(),
            sessions_created_total: Counter::default(),
            live_sessions: Gauge::default(),
            http_rate_limited_total: Counter::default(),
            store_commits: Counter::default(),
            store_commit_seconds: Counter::default(),
            store,
            registry: Registry::default(),
        };
        registry.register(
            "ws_connections",
            "WebSocket connections accepted",
            m.ws_connections_total.clone(),
        );
        registry.register(
            "ws_connections_open",
            "WebSocket connections open now",
            m.ws_connections_open.clone(),
        );
        registry.register(
            "ws_messages_in",
            "WebSocket messages received",
            m.ws_messages_in_total.clone(),
        );
        registry.register(
            "changes_committed",
            "Edits committed to the log",
            m.changes_committed_total.clone(),
        );
        registry.register(
            "sessions_created",
            "Sessions created (new, remix, publish)",
            m.sessions_created_total.clone(),
        );
        registry.register(
            "live_sessions",
            "Sessions loaded in memory",
            m.live_sessions.clone(),
        );
        registry.register(
            "http_rate_limited",
            "HTTP requests refused with 429",
            m.http_rate_limited_total.clone(),
        );
        registry.register(
            "store_commits",
            "Storage transactions committed",
            m.store_commits.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time spent in storage transactions",
            m.store_commit_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn render(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let commits = self.store.commits.load(Relaxed);
        self.store_commits
            .inc_by(commits.saturating_sub(self.store_commits.get()));
        let secs = self.store.commit_micros.load(Relaxed) as f64 / 1e6;
        self.store_commit_seconds
            .inc_by((secs - self.store_commit_seconds.get()).max(0.0));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding metrics into a String cannot fail");
        out
    }
}
