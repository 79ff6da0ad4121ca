//! Threat intelligence.
