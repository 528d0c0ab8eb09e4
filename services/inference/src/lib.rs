//! The inference service: consumes LEAD_EVENTS, keeps lead profiles, runs the models and
//! publishes intelligence to LEAD_INTEL.

pub mod profile;
pub mod models;
