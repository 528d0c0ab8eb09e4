//! The three models behind one interface, so caching and scheduling treat them alike.
//!
//! A model turns a lead profile into an input (exactly what it reads, nothing more), and an
//! input into an output. The cache key is a hash of the input and the model version, so an
//! unchanged input is a hit and a changed one is never served stale.

pub mod artifact;
pub mod churn;
pub mod fallback;
pub mod lead_score;
pub mod logistic;
pub mod matching;

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

pub use self::artifact::{Artifact, ArtifactError};
pub use self::churn::{ChurnFeatures, ChurnModel};
pub use self::fallback::Fallback;
pub use self::lead_score::{LeadFeatures, LeadScoreModel};
pub use self::matching::{MatchInput, PropertyMatcher};
use crate::datasets::properties::{self, Listing};
use crate::datasets::{DatasetError, Loaded};
use crate::profile::LeadProfile;

/// The lead-score artifact built into the binary.
pub const EMBEDDED_LEAD_SCORE: &str = include_str!("../../models/lead_score.json");
/// The churn artifact built into the binary.
pub const EMBEDDED_CHURN: &str = include_str!("../../models/churn.json");
/// File name of the lead-score artifact in a models directory.
pub const LEAD_SCORE_FILE: &str = "lead_score.json";
/// File name of the churn artifact in a models directory.
pub const CHURN_FILE: &str = "churn.json";

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

/// The three models, loaded together; cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Models {
    /// Conversion probability.
    pub lead_score: Arc<LeadScoreModel>,
    /// Going-cold probability.
    pub churn: Arc<ChurnModel>,
    /// Catalogue ranking.
    pub matcher: Arc<PropertyMatcher>,
}

/// The models could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the {model} artifact from {origin}: {source}")]
pub struct LoadError {
    /// `lead_score` or `churn`.
    pub model: &'static str,
    /// The file, or `built-in`.
    pub origin: String,
    /// Why.
    #[source]
    pub source: ArtifactError,
}

impl Models {
    /// Loads the artifacts (from `models_dir` when it holds them, else the built-in ones) and
    /// the property catalogue from `data_dir`. A missing or unreadable catalogue is not an
    /// error: it is logged once, and matching answers [`matching::NO_CATALOGUE`].
    pub fn load(models_dir: Option<&Path>, data_dir: &Path) -> Result<Models, LoadError> {
        let lead = load_artifact(
            "lead_score",
            models_dir,
            LEAD_SCORE_FILE,
            EMBEDDED_LEAD_SCORE,
        )?;
        let lead_score = LeadScoreModel::new(lead.0).map_err(|source| LoadError {
            model: "lead_score",
            origin: lead.1,
            source,
        })?;
        let churn = load_artifact("churn", models_dir, CHURN_FILE, EMBEDDED_CHURN)?;
        let churn = ChurnModel::new(churn.0).map_err(|source| LoadError {
            model: "churn",
            origin: churn.1,
            source,
        })?;
        let matcher = PropertyMatcher::new(load_catalogue(data_dir));
        info!(
            lead_score = lead_score.version(),
            churn = churn.version(),
            matcher = matcher.version(),
            listings = matcher.len(),
            "models loaded"
        );
        Ok(Models {
            lead_score: Arc::new(lead_score),
            churn: Arc::new(churn),
            matcher: Arc::new(matcher),
        })
    }
}

/// The artifact in `dir/file` when that file exists, else the built-in text.
fn load_artifact(
    model: &'static str,
    dir: Option<&Path>,
    file: &str,
    embedded: &str,
) -> Result<(Artifact, String), LoadError> {
    if let Some(path) = dir.map(|d| d.join(file)).filter(|p| p.is_file()) {
        let origin = path.display().to_string();
        return match Artifact::read(&path) {
            Ok(a) => Ok((a, origin)),
            Err(source) => Err(LoadError {
                model,
                origin,
                source,
            }),
        };
    }
    let origin = "built-in".to_owned();
    match Artifact::from_json(embedded) {
        Ok(a) => Ok((a, origin)),
        Err(source) => Err(LoadError {
            model,
            origin,
            source,
        }),
    }
}

/// Every listing of the default catalogue files that can be read; a missing or broken file
/// is logged and left out.
pub fn load_catalogue(data_dir: &Path) -> Vec<Listing> {
    let mut listings = Vec::new();
    let mut failures = Vec::new();
    type Reader = fn(&Path) -> Result<Loaded<Listing>, DatasetError>;
    let readers: [(&str, Reader); 2] = [
        (properties::KING_COUNTY_FILE, properties::read_king_county),
        (properties::MELBOURNE_FILE, properties::read_melbourne),
    ];
    for (file, read) in readers {
        let path = data_dir.join(file);
        match read(&path) {
            Ok(loaded) => {
                info!(
                    path = %path.display(),
                    listings = loaded.rows.len(),
                    skipped = loaded.skipped,
                    "catalogue file read"
                );
                listings.extend(loaded.rows);
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    // One warning per load, whatever failed.
    if listings.is_empty() {
        tracing::error!(
            data_dir = %data_dir.display(),
            errors = ?failures,
            "no property catalogue loaded: matching finds nothing until data_dir (LEADBUS_DATA_DIR) names the datasets folder"
        );
    } else if !failures.is_empty() {
        warn!(errors = ?failures, "part of the property catalogue not loaded");
    }
    listings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("leadbus-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn built_in_artifacts_load_and_a_missing_catalogue_is_not_fatal() {
        let models = Models::load(None, &temp_dir("no-data")).unwrap();
        assert!(models.lead_score.version().starts_with("lead-score-"));
        assert!(models.churn.version().starts_with("churn-"));
        assert!(models.matcher.is_empty());
        let prefs = leadbus_shared::event::PropertyPreferences {
            bedrooms: Some(2),
            ..Default::default()
        };
        let out = models.matcher.find(Some(&prefs));
        assert_eq!(out.reason.as_deref(), Some(matching::NO_CATALOGUE));
    }

    #[test]
    fn a_models_dir_overrides_the_built_in_artifact() {
        let dir = temp_dir("models-dir");
        let mut lead = Artifact::from_json(EMBEDDED_LEAD_SCORE).unwrap();
        lead.version = "lead-score-override-1".into();
        lead.write(&dir.join(LEAD_SCORE_FILE)).unwrap();
        let models = Models::load(Some(&dir), &dir).unwrap();
        assert_eq!(models.lead_score.version(), "lead-score-override-1");
        // No churn file there: the built-in one is used.
        assert_eq!(
            models.churn.artifact(),
            &Artifact::from_json(EMBEDDED_CHURN).unwrap()
        );

        std::fs::write(dir.join(CHURN_FILE), "{ not json").unwrap();
        let err = Models::load(Some(&dir), &dir).unwrap_err();
        assert_eq!(err.model, "churn");
    }
}
