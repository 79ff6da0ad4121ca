//! respond (being written)

pub mod isolate;
