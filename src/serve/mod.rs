//! serve (being written)
