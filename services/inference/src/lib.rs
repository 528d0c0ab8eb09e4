//! The inference service: consumes LEAD_EVENTS, keeps lead profiles, runs the three models
//! through a two-level cache and publishes intelligence to LEAD_INTEL.
//!
//! Layout: `consume/` gets events off the stream and schedules them, `pipeline/` processes
//! one event (profile, models, publish), `cache/` is L1 plus Redis, `models/` the three
//! models, `profile` the lead profile merge, `datasets/` and `training/` read the public CSVs
//! and fit the classifiers, `replay` and `rebuild` reprocess the durable streams.

pub mod cache;
pub mod consume;
pub mod datasets;
pub mod health_http;
pub mod models;
pub mod pipeline;
pub mod profile;
pub mod rebuild;
pub mod replay;
pub mod seen;
pub mod service;
pub mod training;

pub use service::{Inference, StartError};
