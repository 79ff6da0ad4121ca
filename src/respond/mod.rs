//! Response: alerting and threat intelligence (policy and bans live beside them).

pub mod alert;
pub mod intel;
