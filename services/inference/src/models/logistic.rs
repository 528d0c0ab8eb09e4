//! Scoring with a logistic artifact: raw inputs to encoded features, log-odds, probability,
//! and each feature's contribution. Training builds its design matrix with the same
//! [`LogisticScorer::encode`], so a model is trained on exactly what it later scores.

use std::collections::{BTreeMap, HashMap};

use leadbus_shared::intel::Factor;
use serde::Serialize;

use super::artifact::{Artifact, ArtifactError, Encoding, FeatureSpec, Transform};

/// Level that stands for an absent category.
pub const MISSING: &str = "_missing";
/// Level that stands for a category too rare in training, or never seen.
pub const OTHER: &str = "_other";

/// One raw input as a model extracts it from a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Raw {
    /// A number; `None` when unknown.
    Number(Option<f64>),
    /// A category token; `None` when unknown.
    Category(Option<String>),
    /// A set of tokens (services, household); `None` when unknown.
    Set(Option<Vec<String>>),
}

/// Named raw inputs, in a fixed order.
pub type RawInputs = Vec<(&'static str, Raw)>;

/// How one input is encoded.
#[derive(Debug, Clone)]
enum InputCode {
    Numeric {
        index: usize,
        transform: Transform,
        mean: f64,
        std: f64,
    },
    Category {
        levels: HashMap<String, usize>,
        other: Option<usize>,
        reference: String,
    },
    Set {
        members: HashMap<String, usize>,
    },
}

/// A scorer built from an artifact.
#[derive(Debug, Clone)]
pub struct LogisticScorer {
    features: Vec<FeatureSpec>,
    inputs: HashMap<String, InputCode>,
    intercept: f64,
}

/// A score with every non-zero contribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// Intercept plus contributions.
    pub log_odds: f64,
    /// `1 / (1 + e^-log_odds)`.
    pub probability: f64,
    /// Contributions to the log-odds, largest absolute value first, ties by name.
    pub factors: Vec<Factor>,
}

impl LogisticScorer {
    /// A scorer for the artifact's features and intercept.
    pub fn new(artifact: &Artifact) -> Result<Self, ArtifactError> {
        artifact.validate()?;
        Self::from_parts(
            artifact.features.clone(),
            &artifact.references,
            artifact.intercept,
        )
    }

    /// A scorer from features, reference levels and intercept (training uses this before the
    /// artifact exists).
    pub(crate) fn from_parts(
        features: Vec<FeatureSpec>,
        references: &BTreeMap<String, String>,
        intercept: f64,
    ) -> Result<Self, ArtifactError> {
        let mut inputs: HashMap<String, InputCode> = HashMap::new();
        for (index, f) in features.iter().enumerate() {
            let clash = || ArtifactError::Invalid(format!("input {} mixes encodings", f.input));
            match &f.encoding {
                Encoding::Numeric {
                    transform,
                    mean,
                    std,
                } => {
                    let code = InputCode::Numeric {
                        index,
                        transform: *transform,
                        mean: *mean,
                        std: *std,
                    };
                    if inputs.insert(f.input.clone(), code).is_some() {
                        return Err(clash());
                    }
                }
                Encoding::Category { level } => {
                    let entry =
                        inputs
                            .entry(f.input.clone())
                            .or_insert_with(|| InputCode::Category {
                                levels: HashMap::new(),
                                other: None,
                                reference: references.get(&f.input).cloned().unwrap_or_default(),
                            });
                    let InputCode::Category { levels, other, .. } = entry else {
                        return Err(clash());
                    };
                    if level == OTHER {
                        *other = Some(index);
                    }
                    levels.insert(level.clone(), index);
                }
                Encoding::Member { member } => {
                    let entry = inputs
                        .entry(f.input.clone())
                        .or_insert_with(|| InputCode::Set {
                            members: HashMap::new(),
                        });
                    let InputCode::Set { members } = entry else {
                        return Err(clash());
                    };
                    members.insert(member.clone(), index);
                }
            }
        }
        Ok(LogisticScorer {
            features,
            inputs,
            intercept,
        })
    }

    /// Number of encoded features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// True when the model has no features (intercept only).
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Encodes raw inputs into the feature vector. Inputs the artifact does not know are
    /// ignored; inputs it expects but does not get add nothing.
    pub fn encode(&self, raw: &[(&str, Raw)]) -> Vec<f64> {
        let mut x = vec![0.0; self.features.len()];
        for (name, value) in raw {
            let Some(code) = self.inputs.get(*name) else {
                continue;
            };
            match (code, value) {
                (
                    InputCode::Numeric {
                        index,
                        transform,
                        mean,
                        std,
                    },
                    Raw::Number(v),
                ) => {
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        x[*index] = (transform.apply(v) - mean) / std;
                    }
                }
                (
                    InputCode::Category {
                        levels,
                        other,
                        reference,
                    },
                    Raw::Category(v),
                ) => {
                    let level = v.as_deref().unwrap_or(MISSING);
                    if let Some(&i) = levels.get(level) {
                        x[i] = 1.0;
                    } else if level != reference
                        && let Some(i) = other
                    {
                        x[*i] = 1.0;
                    }
                }
                (InputCode::Set { members }, Raw::Set(Some(items))) => {
                    for item in items {
                        if let Some(&i) = members.get(item.as_str()) {
                            x[i] = 1.0;
                        }
                    }
                }
                _ => {}
            }
        }
        x
    }

    /// Log-odds and probability of `raw`, with every non-zero contribution.
    pub fn explain(&self, raw: &[(&str, Raw)]) -> Explained {
        let x = self.encode(raw);
        let numbers: HashMap<&str, f64> = raw
            .iter()
            .filter_map(|(name, v)| match v {
                Raw::Number(Some(v)) => Some((*name, *v)),
                _ => None,
            })
            .collect();
        let mut log_odds = self.intercept;
        let mut factors = Vec::new();
        for (f, xi) in self.features.iter().zip(&x) {
            let contribution = f.weight * xi;
            log_odds += contribution;
            if contribution == 0.0 {
                continue;
            }
            let value = match f.encoding {
                Encoding::Numeric { .. } => numbers.get(f.input.as_str()).copied().unwrap_or(0.0),
                _ => 1.0,
            };
            factors.push(Factor {
                feature: f.name.clone(),
                value,
                contribution,
            });
        }
        factors.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then(a.feature.cmp(&b.feature))
        });
        Explained {
            log_odds,
            probability: sigmoid(log_odds),
            factors,
        }
    }
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::artifact::tests::sample_artifact;

    fn raw(time: f64, source: Option<&str>, services: &[&str]) -> RawInputs {
        vec![
            ("time_on_site_s", Raw::Number(Some(time))),
            ("source", Raw::Category(source.map(str::to_owned))),
            (
                "services",
                Raw::Set(Some(services.iter().map(|s| (*s).to_owned()).collect())),
            ),
        ]
    }

    #[test]
    fn encodes_numbers_categories_and_sets() {
        let s = LogisticScorer::new(&sample_artifact()).unwrap();
        // time: (ln(1 + e^2 - 1) - 1) / 0.5 = 2; source reference; one member.
        let x = s.encode(&raw(
            std::f64::consts::E.powi(2) - 1.0,
            Some("google"),
            &["alerts"],
        ));
        assert!((x[0] - 2.0).abs() < 1e-12);
        assert_eq!(&x[1..], &[0.0, 0.0, 0.0, 1.0]);
        // Unseen level goes to `_other`, absent to `_missing`.
        assert_eq!(s.encode(&raw(0.0, Some("tiktok"), &[]))[2], 1.0);
        assert_eq!(s.encode(&raw(0.0, None, &[]))[3], 1.0);
        // A missing number adds nothing.
        let x = s.encode(&[("time_on_site_s", Raw::Number(None))]);
        assert_eq!(x, vec![0.0; 5]);
    }

    #[test]
    fn factors_are_ordered_by_absolute_contribution_then_name() {
        let s = LogisticScorer::new(&sample_artifact()).unwrap();
        let e = s.explain(&raw(
            std::f64::consts::E - 1.0,
            Some("reference"),
            &["alerts"],
        ));
        let names: Vec<_> = e.factors.iter().map(|f| f.feature.as_str()).collect();
        // reference 1.5, alerts -1.5 (tie: by name), time at the mean adds 0.
        assert_eq!(names, ["services=alerts", "source=reference"]);
        let sum: f64 = e.factors.iter().map(|f| f.contribution).sum();
        assert!((e.log_odds - (-0.5 + sum)).abs() < 1e-12);
        assert!((e.probability - sigmoid(e.log_odds)).abs() < 1e-15);
    }

    #[test]
    fn explaining_is_deterministic() {
        let s = LogisticScorer::new(&sample_artifact()).unwrap();
        let r = raw(123.0, Some("olark_chat"), &["alerts", "valuation"]);
        assert_eq!(s.explain(&r), s.explain(&r));
    }
}
