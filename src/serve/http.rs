//! The loopback HTTP server: `/metrics`, `/healthz` and the token-guarded API.
//!
//! [`spawn_with`] binds the socket on the caller's thread (so a bad or busy address is
//! an immediate error), then runs axum on a single-threaded tokio runtime in a thread
//! of its own; the pipeline never blocks on a scrape. [`ServerHandle`] stops it.
//!
//! Exposure is opt-in twice over: the listen address must be loopback unless
//! `allow_remote` is set, and every route that changes state sits under `/api/v1`
//! behind a bearer token (`PALISADE_API_TOKEN`). Without a token those routes are
//! refused outright; read-only routes need none.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crossbeam_channel::{Receiver, Sender};

use super::metrics::Metrics;
use crate::config::MetricsConfig;
use crate::store::Store;

/// The environment variable holding the API bearer token.
pub const TOKEN_ENV: &str = "PALISADE_API_TOKEN";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot resolve listen address {listen:?}: {source}; use host:port, e.g. 127.0.0.1:9464"
    )]
    BadAddress {
        listen: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing to listen on {addr}: it is not a loopback address and the endpoint has no \
         TLS; use 127.0.0.1, or set `metrics.allow_remote = true` to expose it deliberately"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}; is another process using the port?")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the HTTP server's runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// How to run the server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `host:port`; port 0 picks a free port (see [`ServerHandle::local_addr`]).
    pub listen: String,
    /// Allow a non-loopback `listen`.
    pub allow_remote: bool,
    /// Bearer token for state-changing routes; `None` refuses them all.
    pub api_token: Option<String>,
    /// The store `/healthz` checks, when there is one.
    pub store_path: Option<PathBuf>,
}

impl ServerOptions {
    /// The address the server would bind, refused as [`spawn_with`] refuses it (not
    /// loopback without `allow_remote`, unresolvable): `config check` asks this so that
    /// a configuration it passes is one `watch` starts with.
    pub fn check_listen(&self) -> Result<SocketAddr, ServeError> {
        resolve(&self.listen, self.allow_remote)
    }

    /// Options from the `[metrics]` config, with the token from `PALISADE_API_TOKEN`.
    pub fn from_config(cfg: &MetricsConfig, store_path: Option<PathBuf>) -> ServerOptions {
        ServerOptions {
            listen: cfg.listen.clone(),
            allow_remote: cfg.allow_remote,
            api_token: token_from_env(),
            store_path,
        }
    }
}

fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// A running server; dropping it also shuts the server down.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    reloads: Receiver<()>,
}

impl ServerHandle {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Receives one message per accepted `POST /api/v1/reload` (coalesced while one
    /// is pending); the pipeline polls it and reloads its rules.
    pub fn reload_requests(&self) -> &Receiver<()> {
        &self.reloads
    }

    /// Stops accepting, lets in-flight requests finish, and joins the thread.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the HTTP server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "HTTP server stopped with an error");
        }
    }
}

/// Starts the server on `listen` (loopback only), token from `PALISADE_API_TOKEN`.
pub fn spawn(
    listen: &str,
    metrics: Arc<Metrics>,
    store_path: Option<PathBuf>,
) -> Result<ServerHandle, ServeError> {
    let opts = ServerOptions {
        listen: listen.to_string(),
        allow_remote: false,
        api_token: token_from_env(),
        store_path,
    };
    spawn_with(opts, metrics)
}

/// Starts the server with explicit options.
pub fn spawn_with(opts: ServerOptions, metrics: Arc<Metrics>) -> Result<ServerHandle, ServeError> {
    let addr = resolve(&opts.listen, opts.allow_remote)?;
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    let addr = std_listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind { addr, source })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;

    let (reload_tx, reloads) = crossbeam_channel::bounded(1);
    let state = AppState {
        metrics,
        api_token: opts.api_token.map(Arc::from),
        store_path: opts.store_path,
        reload_tx,
    };
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("palisade-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                axum::serve(listener, router(state))
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await
            })
        })
        .map_err(ServeError::Runtime)?;
    tracing::info!(%addr, "Serving /metrics and /healthz");
    Ok(ServerHandle {
        addr,
        shutdown: Some(shutdown),
        thread: Some(thread),
        reloads,
    })
}

/// Resolves `listen` and enforces the loopback rule.
fn resolve(listen: &str, allow_remote: bool) -> Result<SocketAddr, ServeError> {
    let bad = |source| ServeError::BadAddress {
        listen: listen.to_string(),
        source,
    };
    let addr = listen
        .to_socket_addrs()
        .map_err(bad)?
        .next()
        .ok_or_else(|| bad(io::Error::other("no address")))?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback { addr });
    }
    Ok(addr)
}

/// What handlers share.
#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    api_token: Option<Arc<str>>,
    store_path: Option<PathBuf>,
    reload_tx: Sender<()>,
}

/// The routes: read-only ones open, `/api/v1` behind the bearer-token layer.
fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.encode();
    ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let Some(path) = state.store_path.clone() else {
        return axum::Json(serde_json::json!({"status": "ok"})).into_response();
    };
    let checked = tokio::task::spawn_blocking(move || Store::open_read_only(&path).map(|_| ()));
    match checked.await {
        Ok(Ok(())) => {
            axum::Json(serde_json::json!({"status": "ok", "store": "ok"})).into_response()
        }
        Ok(Err(e)) => unhealthy(e.to_string()),
        Err(e) => unhealthy(format!("store check did not finish: {e}")),
    }
}

fn unhealthy(reason: String) -> Response {
    let body = serde_json::json!({"status": "degraded", "store": reason});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn reload(State(state): State<AppState>) -> Response {
    // A full channel means a reload is already pending: one is enough.
    let _ = state.reload_tx.try_send(());
    (StatusCode::ACCEPTED, "reload requested\n").into_response()
}

/// Lets a request through only with `Authorization: Bearer <PALISADE_API_TOKEN>`.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.api_token.as_deref() else {
        let msg = format!("state-changing API disabled: set {TOKEN_ENV} to enable it\n");
        return (StatusCode::FORBIDDEN, msg).into_response();
    };
    if bearer(req.headers()).is_some_and(|got| constant_time_eq(got, expected)) {
        return next.run(req).await;
    }
    let mut resp = (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without an early exit, so response time does not leak the prefix matched.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests;
