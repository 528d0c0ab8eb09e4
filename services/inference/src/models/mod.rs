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

mod standin_models {
    use super::*;
    use leadbus_shared::intel::{Band, ChurnRisk, LeadScore, Matches, RiskLevel};

    /// Stand-in.
    #[derive(Debug)]
    pub struct LeadScoreModel;
    /// Stand-in.
    #[derive(Debug)]
    pub struct ChurnModel;
    /// Stand-in.
    #[derive(Debug)]
    pub struct PropertyMatcher;

    impl Model for LeadScoreModel {
        type Input = u64;
        type Output = LeadScore;
        fn name(&self) -> &'static str {
            "lead_score"
        }
        fn version(&self) -> &str {
            "standin"
        }
        fn input(&self, p: &LeadProfile) -> u64 {
            p.visits
        }
        fn run(&self, i: &u64) -> Result<LeadScore, ModelError> {
            Ok(LeadScore {
                score: 1.0 / (1.0 + *i as f64),
                band: Band::Cold,
                factors: vec![],
                model_version: "standin".into(),
            })
        }
    }
    impl Model for ChurnModel {
        type Input = u64;
        type Output = ChurnRisk;
        fn name(&self) -> &'static str {
            "churn"
        }
        fn version(&self) -> &str {
            "standin"
        }
        fn input(&self, p: &LeadProfile) -> u64 {
            p.visits
        }
        fn run(&self, _: &u64) -> Result<ChurnRisk, ModelError> {
            Ok(ChurnRisk {
                risk: 0.5,
                level: RiskLevel::Medium,
                drivers: vec![],
                model_version: "standin".into(),
            })
        }
    }
    impl Model for PropertyMatcher {
        type Input = u64;
        type Output = Matches;
        fn name(&self) -> &'static str {
            "property_match"
        }
        fn version(&self) -> &str {
            "standin"
        }
        fn input(&self, p: &LeadProfile) -> u64 {
            p.visits
        }
        fn run(&self, _: &u64) -> Result<Matches, ModelError> {
            Ok(Matches {
                items: vec![],
                reason: Some("standin".into()),
                model_version: "standin".into(),
            })
        }
    }
}
pub use standin_models::*;

/// The three models.
#[derive(Debug)]
pub struct Models {
    /// Lead scoring.
    pub lead_score: std::sync::Arc<LeadScoreModel>,
    /// Churn.
    pub churn: std::sync::Arc<ChurnModel>,
    /// Matching.
    pub matcher: std::sync::Arc<PropertyMatcher>,
}

impl Models {
    /// Stand-in loader.
    pub fn load(
        _models_dir: Option<&std::path::Path>,
        _data_dir: &std::path::Path,
    ) -> Result<Models, ModelError> {
        Ok(Models {
            lead_score: std::sync::Arc::new(LeadScoreModel),
            churn: std::sync::Arc::new(ChurnModel),
            matcher: std::sync::Arc::new(PropertyMatcher),
        })
    }
}
