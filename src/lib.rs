//! palisade: sources → parsers → detection → response → store, metrics, reports.
//!
//! Start reading at [`pipeline`], which wires the stages together the same way for
//! `scan` (files already written) and `watch` (live). [`event::Event`] is the record
//! every stage after the parsers shares; [`detect::Detection`] is what rules produce.

pub mod config;
pub mod detect;
pub mod eval;
pub mod event;
pub mod incident;
pub mod parse;
pub mod pipeline;
pub mod posture;
pub mod report;
pub mod respond;
pub mod sample;
pub mod serve;
pub mod sources;
pub mod store;
