//! Serving palisade's state over loopback HTTP.
//!
//! - [`metrics`]: the Prometheus families the pipeline updates and `/metrics` encodes.
//! - [`http`]: the axum server (`/metrics`, `/healthz`, token-guarded `/api/v1`),
//!   run on its own thread so the pipeline never waits on a scrape.

pub mod http;
pub mod metrics;

pub use http::{ServeError, ServerHandle, ServerOptions, spawn, spawn_with};
pub use metrics::{Metrics, SourceMetrics};
