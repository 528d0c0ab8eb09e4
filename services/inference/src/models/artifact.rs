//! The JSON artifact of a logistic model: what it reads, its parameters, the data it was
//! trained on and how well it did. Pretty-printed, committed, and loadable at start-up.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::training::metrics::CalibrationBin;

/// `kind` of every artifact this module reads.
pub const LOGISTIC_KIND: &str = "logistic_regression";

/// A model artifact could not be read or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file could not be read or written.
    #[error("cannot access artifact {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JSON does not fit the artifact shape.
    #[error("artifact is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// The content is inconsistent (non-finite weight, zero scale, unknown kind...).
    #[error("artifact is invalid: {0}")]
    Invalid(String),
}

/// A trained logistic model and everything needed to trust it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Version, part of every cache key: `<model>-<yyyy.mm.dd>-<hash of the parameters>`.
    pub version: String,
    /// Always [`LOGISTIC_KIND`].
    pub kind: String,
    /// Which model: `lead_score` or `churn`.
    pub model: String,
    /// What the probability means.
    pub target: String,
    /// Encoded features with their weights, in the order of the sum.
    pub features: Vec<FeatureSpec>,
    /// Log-odds of a lead at the training means and every category at its reference level.
    pub intercept: f64,
    /// For each categorical input, the level that has no feature (its contribution is zero,
    /// and other levels' contributions are relative to it).
    pub references: BTreeMap<String, String>,
    /// Probability cut-offs of the levels (hot/warm/cold or high/medium/low).
    pub thresholds: Thresholds,
    /// How the L2 strength was chosen.
    pub regularisation: Regularisation,
    /// The training file.
    pub trained_on: DataRef,
    /// The evaluation file (used only for the metrics).
    pub evaluated_on: DataRef,
    /// How well the model did on both.
    pub metrics: Metrics,
    /// Source columns not used, and why.
    pub excluded_columns: Vec<ExcludedColumn>,
    /// How source columns reach the profile and the features.
    pub feature_mapping: Vec<ColumnMapping>,
}

/// One encoded feature and its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Name in factors: the input (`time_on_site_s`) or `input=level` (`source=reference`).
    pub name: String,
    /// The raw input the model extracts from a profile.
    pub input: String,
    /// How the input becomes the feature value.
    #[serde(flatten)]
    pub encoding: Encoding,
    /// Coefficient on the encoded value.
    pub weight: f64,
}

/// How a raw input becomes a feature value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case")]
pub enum Encoding {
    /// `(transform(x) - mean) / std`; a missing value counts as the mean, so it adds nothing.
    Numeric {
        /// Applied before standardising.
        transform: Transform,
        /// Training mean of the transformed value.
        mean: f64,
        /// Training standard deviation of the transformed value (1 when it was 0).
        std: f64,
    },
    /// 1 when the input category equals `level`. The level `_missing` stands for an absent
    /// value; `_other` for a level too rare in training or never seen.
    Category {
        /// The level.
        level: String,
    },
    /// 1 when the input set contains `member`.
    Member {
        /// The member.
        member: String,
    },
}

/// Transformation of a numeric input before standardisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The value itself.
    Identity,
    /// `ln(1 + max(x, 0))`, for skewed counts and durations.
    Log1p,
}

impl Transform {
    /// Applies the transformation.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Transform::Identity => x,
            Transform::Log1p => x.max(0.0).ln_1p(),
        }
    }
}

/// Probability cut-offs: `>= high` is hot/high, `>= medium` warm/medium, else cold/low.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Lower bound of the top level.
    pub high: f64,
    /// Lower bound of the middle level.
    pub medium: f64,
}

/// The L2 penalty and how it was picked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regularisation {
    /// Always `l2`: `alpha / 2 · |w|²` added to the summed log loss; the intercept is free.
    pub penalty: String,
    /// The chosen strength.
    pub alpha: f64,
    /// Folds of the cross-validation on the training file that picked it.
    pub folds: usize,
    /// Mean cross-validated ROC AUC of every candidate.
    pub candidates: Vec<AlphaScore>,
}

/// One candidate L2 strength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaScore {
    /// The strength.
    pub alpha: f64,
    /// Its mean ROC AUC over the folds.
    pub cv_auc: f64,
}

/// A data file a model was trained or evaluated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRef {
    /// Path relative to the data directory, with `/` separators.
    pub path: String,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Rows used.
    pub rows: usize,
    /// Rows skipped as unreadable.
    pub skipped: usize,
    /// The label column.
    pub label: String,
    /// Share of rows with a positive label.
    pub positive_rate: f64,
}

/// Metrics on the training and the evaluation file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// On the training file (optimistic).
    pub train: SplitMetrics,
    /// On the held-out evaluation file.
    pub eval: SplitMetrics,
}

/// Metrics on one file, computed through the serving path (events, profile, model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Rows scored.
    pub rows: usize,
    /// ROC AUC.
    pub roc_auc: f64,
    /// Brier score.
    pub brier: f64,
    /// Mean log loss.
    pub log_loss: f64,
    /// Reliability in ten equal-width bins (empty bins left out).
    pub calibration: Vec<CalibrationBin>,
    /// Rows and positive rate at each level of the thresholds.
    pub levels: Vec<LevelStat>,
}

/// How one level (hot, warm, cold...) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelStat {
    /// Level name.
    pub level: String,
    /// Rows at that level.
    pub rows: usize,
    /// Share of them that were positive.
    pub positive_rate: f64,
}

/// A source column the model does not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedColumn {
    /// Column name in the CSV.
    pub column: String,
    /// Why it is left out.
    pub reason: String,
}

/// How one source column reaches the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMapping {
    /// Column(s) in the CSV.
    pub column: String,
    /// Event and profile field it lands in.
    pub profile_field: String,
    /// The model input and its encoding.
    pub input: String,
}

impl Artifact {
    /// Parses and validates an artifact.
    pub fn from_json(text: &str) -> Result<Artifact, ArtifactError> {
        let artifact: Artifact = serde_json::from_str(text)?;
        artifact.validate()?;
        Ok(artifact)
    }

    /// Reads and validates an artifact file.
    pub fn read(path: &Path) -> Result<Artifact, ArtifactError> {
        let text = std::fs::read_to_string(path).map_err(|source| ArtifactError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Artifact::from_json(&text)
    }

    /// Pretty-printed JSON with a trailing newline.
    pub fn to_json(&self) -> Result<String, ArtifactError> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Writes the artifact as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ArtifactError> {
        std::fs::write(path, self.to_json()?).map_err(|source| ArtifactError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Rejects content no model could score with.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let fail = |m: String| Err(ArtifactError::Invalid(m));
        if self.kind != LOGISTIC_KIND {
            return fail(format!(
                "kind is {:?}; expected {LOGISTIC_KIND:?}",
                self.kind
            ));
        }
        if self.version.is_empty() {
            return fail("version is empty".into());
        }
        if !self.intercept.is_finite() {
            return fail("intercept is not finite".into());
        }
        for f in &self.features {
            if !f.weight.is_finite() {
                return fail(format!("weight of {} is not finite", f.name));
            }
            if let Encoding::Numeric { mean, std, .. } = f.encoding
                && !(mean.is_finite() && std.is_finite() && std > 0.0)
            {
                return fail(format!("{} needs a finite mean and a positive std", f.name));
            }
        }
        let t = self.thresholds;
        if !(0.0 <= t.medium && t.medium <= t.high && t.high <= 1.0) {
            return fail(format!(
                "thresholds {t:?} must satisfy 0 <= medium <= high <= 1"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn data(path: &str) -> DataRef {
        DataRef {
            path: path.into(),
            sha256: "00".repeat(32),
            rows: 4,
            skipped: 0,
            label: "Converted".into(),
            positive_rate: 0.5,
        }
    }

    fn split() -> SplitMetrics {
        SplitMetrics {
            rows: 4,
            roc_auc: 0.75,
            brier: 0.2,
            log_loss: 0.6,
            calibration: vec![CalibrationBin {
                lower: 0.3,
                upper: 0.4,
                rows: 4,
                mean_predicted: 0.33,
                observed_rate: 0.5,
            }],
            levels: vec![LevelStat {
                level: "warm".into(),
                rows: 4,
                positive_rate: 0.5,
            }],
        }
    }

    /// A small artifact: a log1p number, a category with `_other` and `_missing`, a set.
    pub(crate) fn sample_artifact() -> Artifact {
        let category = |level: &str, weight| FeatureSpec {
            name: format!("source={level}"),
            input: "source".into(),
            encoding: Encoding::Category {
                level: level.into(),
            },
            weight,
        };
        Artifact {
            version: "lead-score-test-1".into(),
            kind: LOGISTIC_KIND.into(),
            model: "lead_score".into(),
            target: "conversion".into(),
            features: vec![
                FeatureSpec {
                    name: "time_on_site_s".into(),
                    input: "time_on_site_s".into(),
                    encoding: Encoding::Numeric {
                        transform: Transform::Log1p,
                        mean: 1.0,
                        std: 0.5,
                    },
                    weight: 0.8,
                },
                category("reference", 1.5),
                category("_other", -0.3),
                category("_missing", -1.0),
                FeatureSpec {
                    name: "services=alerts".into(),
                    input: "services".into(),
                    encoding: Encoding::Member {
                        member: "alerts".into(),
                    },
                    weight: -1.5,
                },
            ],
            intercept: -0.5,
            references: BTreeMap::from([("source".to_owned(), "google".to_owned())]),
            thresholds: Thresholds {
                high: 0.7,
                medium: 0.35,
            },
            regularisation: Regularisation {
                penalty: "l2".into(),
                alpha: 1.0,
                folds: 5,
                candidates: vec![AlphaScore {
                    alpha: 1.0,
                    cv_auc: 0.8,
                }],
            },
            trained_on: data("leads/train.csv"),
            evaluated_on: data("leads/eval.csv"),
            metrics: Metrics {
                train: split(),
                eval: split(),
            },
            excluded_columns: vec![ExcludedColumn {
                column: "Tags".into(),
                reason: "leaky".into(),
            }],
            feature_mapping: vec![ColumnMapping {
                column: "Lead Source".into(),
                profile_field: "attributes.source".into(),
                input: "source (category)".into(),
            }],
        }
    }

    #[test]
    fn round_trips_through_pretty_json() {
        let a = sample_artifact();
        let text = a.to_json().unwrap();
        assert!(text.contains("\n  \"version\": \"lead-score-test-1\""));
        assert!(
            text.contains("\"encoding\": \"log1p\"") || text.contains("\"transform\": \"log1p\"")
        );
        assert_eq!(Artifact::from_json(&text).unwrap(), a);
    }

    #[test]
    fn refuses_inconsistent_content() {
        let mut a = sample_artifact();
        a.features[0].weight = f64::NAN;
        assert!(a.validate().is_err());
        let mut a = sample_artifact();
        a.thresholds = Thresholds {
            high: 0.2,
            medium: 0.5,
        };
        assert!(a.validate().is_err());
        let mut a = sample_artifact();
        a.kind = "tree".into();
        assert!(matches!(a.validate(), Err(ArtifactError::Invalid(_))));
        assert!(Artifact::from_json("{\"version\": 1}").is_err());
    }
}
