//! Posture checks: how the protected stack is set up, as opposed to what its logs say.
//!
//! - [`containers`]: Docker containers (privileged, root, docker socket, capabilities,
//!   host namespaces, writable root filesystem, published ports, image
//!   vulnerabilities through trivy).
//!
//! Checks return [`containers::Finding`]s that serialise for `check --json` and turn
//! into [`crate::detect::Detection`]s, so they reach the same alerting as log rules.

pub mod containers;
