//! The three models behind one interface, so caching and scheduling treat them alike.
//!
//! A model turns a lead profile into an input (exactly what it reads, nothing more), and an
//! input into an output. The cache key is a hash of the input and the model version, so an
//! unchanged input is a hit and a changed one is never served stale.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::profile::LeadProfile;

/// A model failed to produce an output for an input.
#[derive(Debug, thiserror::Error)]
#[error("{model} failed: {reason}")]
pub struct ModelError {
    /// Which model.
    pub model: &'static str,
    /// Why.
    pub reason: String,
}

/// One of the three models.
pub trait Model: Send + Sync + 'static {
    /// Exactly what the model reads from a profile.
    type Input: Serialize + Send + Sync + 'static;
    /// What it produces; cached as JSON.
    type Output: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;

    /// Short stable name: `lead_score`, `churn`, `property_match`.
    fn name(&self) -> &'static str;

    /// Version of the artifact (and catalogue) in use; part of every cache key.
    fn version(&self) -> &str;

    /// Extracts the input from a profile.
    fn input(&self, profile: &LeadProfile) -> Self::Input;

    /// Runs the model.
    fn run(&self, input: &Self::Input) -> Result<Self::Output, ModelError>;

    /// Stable key of `input` for this model version: 128-bit xxh3 of the serialised input.
    fn cache_key(&self, input: &Self::Input) -> String {
        let bytes = serde_json::to_vec(input).unwrap_or_default();
        let hash = xxhash_rust::xxh3::xxh3_128(&bytes);
        format!("{}:{}:{hash:032x}", self.name(), self.version())
    }
}
