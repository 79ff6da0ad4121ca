//! sigma (being written)
