//! eval (being written)
