//! Intel.
