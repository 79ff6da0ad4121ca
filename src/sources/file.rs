//! File sources: reading whole files for `scan`, following them for `watch`.
