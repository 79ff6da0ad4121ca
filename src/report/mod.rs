//! Reports built from the store for people: `palisade status` today.
//!
//! Reports take the store and a reference instant from the caller (wall clock for a
//! live daemon, the last event time for a replay) and never look at the clock
//! themselves, so the same database always yields the same report.

pub mod status;

pub use status::{StatusOptions, StatusReport, status, status_with};
