//! The inference service: consumes LEAD_EVENTS, keeps lead profiles, runs the models and
//! publishes intelligence to LEAD_INTEL.

pub mod datasets;
pub mod models;
pub mod profile;
pub mod training;
