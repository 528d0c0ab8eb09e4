//! Types every leadbus part shares: the event envelope and its validation, intelligence,
//! subjects, stream definitions, dead letters, event status, configuration and client tokens;
//! and the client API for Rust programs: `client::Producer` (publish, or publish and await the
//! result), `intel_client` (a handler on a tenant's intelligence) and `gateway_client` (event
//! status, latest intelligence and metrics over the gateway's HTTP API).
//!
//! Nothing in this crate panics on input: every decode or check returns an error that says
//! what was wrong.

pub mod auth;
pub mod client;
pub mod config;
pub mod dlq;
pub mod event;
pub mod gateway_client;
pub mod ids;
pub mod intel;
pub mod intel_client;
pub mod nats_url;
pub mod status;
pub mod status_recorder;
pub mod streams;
pub mod subjects;
pub mod validate;

pub use config::Config;
pub use event::{EventData, EventType, LeadEvent, Priority};
pub use ids::{LeadId, TenantId};
pub use intel::{IntelType, Intelligence};
