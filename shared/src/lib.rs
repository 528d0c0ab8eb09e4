//! Types every leadbus part shares: the event envelope and its validation, intelligence,
//! subjects, stream definitions, dead letters, configuration and client tokens.
//!
//! Nothing in this crate panics on input: every decode or check returns an error that says
//! what was wrong.

pub mod auth;
pub mod client;
pub mod config;
pub mod dlq;
pub mod event;
pub mod ids;
pub mod intel;
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
