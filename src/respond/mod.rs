//! respond (being written)
