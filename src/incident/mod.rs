//! Incidents: what palisade keeps about an attack beyond its detections.
//!
//! - [`evidence`]: container logs and inspect data for a time window, written to an
//!   owner-only folder with a SHA-256 manifest.

pub mod evidence;
