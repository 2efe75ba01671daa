//! # keyboardia-server
//!
//! The native host of Keyboardia: one binary that serves the HTTP API, upgrades WebSockets,
//! stores sessions in SQLite and samples in a local directory, and serves the web app.
//! It drives `keyboardia_core` (every session rule lives there) the way the Cloudflare Durable
//! Object does.
//!
//! Start reading at [`run`]; then [`sessions`] (one task per live session, storage before
//! sending), [`store`] (SQLite with group commit), [`http`] and [`ws`] (the edges).

#![forbid(unsafe_code)]

pub mod assets;
pub mod blobs;
pub mod error;
pub mod http;
pub mod library;
pub mod metrics;
pub mod sessions;
pub mod store;
pub mod ws;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{header, Method};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use keyboardia_core::rate::AddressLimiter;
use keyboardia_core::LiveConfig;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::assets::WebFiles;
use crate::blobs::Blobs;
use crate::metrics::Metrics;
use crate::sessions::Sessions;

/// Command-line and environment configuration.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "keyboardia",
    version,
    about = "Keyboardia: a multiplayer step sequencer server"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "KEYBOARDIA_ADDR", default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,
    /// Where the database and the sample store live.
    #[arg(long, env = "KEYBOARDIA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// A built web app to serve (`cargo xtask build-web` makes target/web-dist) instead of the
    /// one built into the binary.
    #[arg(long, env = "KEYBOARDIA_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "KEYBOARDIA_LOG_JSON")]
    pub log_json: bool,
    /// Origins allowed to open WebSockets besides this site's own ("*" for any).
    #[arg(
        long = "allowed-origin",
        env = "KEYBOARDIA_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Origins allowed to call the API from other sites (CORS); "*" for any.
    #[arg(
        long = "cors-origin",
        env = "KEYBOARDIA_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub cors_origins: Vec<String>,
    /// Seconds a session with no players stays in memory.
    #[arg(long, env = "KEYBOARDIA_IDLE_UNLOAD_SECS", default_value_t = 30.0)]
    pub idle_unload_secs: f64,
    /// Requests per second (sustained) one address may make to endpoints that create things.
    #[arg(long, env = "KEYBOARDIA_API_RATE", default_value_t = 10.0)]
    pub api_rate: f64,
    /// Burst allowance for the above.
    #[arg(long, env = "KEYBOARDIA_API_BURST", default_value_t = 60.0)]
    pub api_burst: f64,
    /// fsync every commit (survives power loss, not just a killed process); slower.
    #[arg(long, env = "KEYBOARDIA_SYNC_FULL")]
    pub sync_full: bool,
    /// A prepared instrument library to install into the sample store (`cargo xtask samples`
    /// makes target/sample-library), instead of the one built into the binary.
    #[arg(long, env = "KEYBOARDIA_LIBRARY")]
    pub library: Option<PathBuf>,
    /// Do not render the built-in kit (nor install the instrument library) into an empty
    /// sample store on start.
    #[arg(long = "no-kit", env = "KEYBOARDIA_NO_KIT", action = clap::ArgAction::SetFalse)]
    pub kit: bool,
}

impl Config {
    /// Defaults with a given data directory (for tests and embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        let mut c = Config::parse_from(["keyboardia"]);
        c.data_dir = data_dir.into();
        // Tests start many servers; the one that checks the kit turns it back on.
        c.kit = false;
        c
    }
}

/// The per-address limit on creating things (the core's [`AddressLimiter`], shared by the
/// handlers).
pub struct AddrLimiter(Mutex<AddressLimiter<IpAddr>>);

impl AddrLimiter {
    pub fn allow(&self, ip: IpAddr, now: f64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(ip, now)
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub sessions: Sessions,
    pub blobs: Blobs,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<AddrLimiter>,
    pub allowed_origins: Arc<Vec<String>>,
    pub web: WebFiles,
}

/// The router, apart from `main` so tests can build it.
pub fn app(state: AppState, cors_origins: &[String]) -> Router {
    let cors = if cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(cors_origins.iter().filter_map(|o| o.parse().ok()))
    };
    let cors = CorsLayer::new()
        .allow_origin(cors)
        .allow_methods([Method::GET, Method::POST, Method::PATCH])
        .allow_headers([header::CONTENT_TYPE]);
    let api = Router::new()
        .route(
            "/sessions",
            post(http::create_session).get(http::list_sessions),
        )
        .route(
            "/sessions/{id}",
            get(http::get_session).patch(http::patch_session),
        )
        .route("/sessions/{id}/remix", post(http::remix_session))
        .route("/sessions/{id}/publish", post(http::publish_session))
        .route("/sessions/{id}/recordings", post(http::upload_recording))
        .route("/sessions/{id}/ws", get(ws::upgrade))
        .route("/sessions/{id}/export.wav", get(http::export_wav))
        .route("/sessions/{id}/export.mid", get(http::export_midi))
        .route("/sessions/{id}/qr.svg", get(http::session_qr))
        .route("/samples/{*path}", get(http::get_sample))
        .route("/instruments", get(http::instruments))
        .route("/instruments/{*id}", get(http::instrument))
        .fallback(http::api_not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(cors);
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(http::healthz))
        .route("/metrics", get(http::metrics))
        .fallback(http::app)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Runs the server on `listener` until `shutdown` resolves, then closes every socket cleanly and
/// flushes storage.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store_stats = Arc::new(store::StoreStats::default());
    let (store, store_thread) = store::Store::open(
        &config.data_dir.join("keyboardia.db"),
        config.sync_full,
        store_stats.clone(),
    )?;
    let blobs = Blobs::new(config.data_dir.join("blobs"))?;
    if config.kit {
        blobs.render_kit_if_missing();
    }
    // The instrument library: one given with --library always; the built-in one unless told
    // not to (--no-kit).
    let library = match (&config.library, config.kit) {
        (Some(d), _) => Some(library::Library::Dir(d.clone())),
        (None, true) => library::Library::choose(None),
        (None, false) => None,
    };
    match library {
        Some(lib) => {
            let n = library::install(&lib, blobs.root()).map_err(|e| {
                anyhow::anyhow!(
                    "cannot install the instrument library into {}: {e:#}",
                    blobs.root().display()
                )
            })?;
            if n > 0 {
                tracing::info!(files = n, "installed the instrument library into the sample store");
            }
        }
        None if config.kit => tracing::warn!(
            "this build carries no instrument library, so sampled instruments are silent: start it with `cargo xtask run`, or give one with --library"
        ),
        None => {}
    }
    let metrics = Arc::new(Metrics::new(store_stats));
    let live = LiveConfig {
        idle_unload_ms: config.idle_unload_secs * 1000.0,
        ..LiveConfig::default()
    };
    let sessions = Sessions::new(store, live, metrics.clone());
    let state = AppState {
        sessions: sessions.clone(),
        blobs,
        metrics,
        limiter: Arc::new(AddrLimiter(Mutex::new(AddressLimiter::new(
            config.api_rate,
            config.api_burst,
            100_000,
        )))),
        allowed_origins: Arc::new(config.allowed_origins.clone()),
        web: WebFiles::choose(config.web_dir.clone()),
    };
    let router = app(state, &config.cors_origins);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let closer = sessions.clone();
    // Small frames must leave at once: without TCP_NODELAY, Nagle's algorithm and delayed ACKs
    // add up to 40 ms to a broadcast.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: closing sockets and flushing sessions");
        // Close every WebSocket (they would otherwise keep the server open) and flush.
        closer.shutdown().await;
        let _ = stop_tx.send(true);
    });
    serve.await?;
    let _ = stop_rx;
    sessions.shutdown().await;
    drop(sessions);
    // The storage thread ends when the last handle is gone; wait for its final checkpoint.
    tokio::task::spawn_blocking(move || store_thread.join())
        .await
        .ok();
    Ok(())
}
