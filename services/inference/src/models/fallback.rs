//! What stands in for a model that fails when no earlier output of the lead can be found:
//! the documented fallback of each model. A result carrying one is marked `degraded`.
//!
//! - lead score: the conversion rate of the training data, banded like any score, with one
//!   factor `fallback=training_base_rate` saying so;
//! - churn: the churn rate of the training data, no drivers;
//! - property matching: no items, and the reason says matching was unavailable.

use leadbus_shared::intel::{Band, ChurnRisk, Factor, LeadScore, Matches};

use super::{ChurnModel, LeadScoreModel, Model, PropertyMatcher};

/// A model's documented fallback output.
pub trait Fallback: Model {
    /// The output used when the model fails and nothing earlier is known.
    fn fallback(&self) -> Self::Output;
}

impl Fallback for LeadScoreModel {
    fn fallback(&self) -> LeadScore {
        let a = self.artifact();
        let rate = a.trained_on.positive_rate;
        let band = if rate >= a.thresholds.high {
            Band::Hot
        } else if rate >= a.thresholds.medium {
            Band::Warm
        } else {
            Band::Cold
        };
        LeadScore {
            score: rate,
            band,
            factors: vec![Factor {
                feature: "fallback=training_base_rate".into(),
                value: rate,
                contribution: 0.0,
            }],
            model_version: self.version().to_owned(),
        }
    }
}

impl Fallback for ChurnModel {
    fn fallback(&self) -> ChurnRisk {
        let a = self.artifact();
        let risk = a.trained_on.positive_rate;
        let level = super::churn::risk_level(risk, &a.thresholds);
        ChurnRisk {
            risk,
            level,
            drivers: Vec::new(),
            model_version: self.version().to_owned(),
        }
    }
}

impl Fallback for PropertyMatcher {
    fn fallback(&self) -> Matches {
        Matches {
            items: Vec::new(),
            reason: Some("property matching is unavailable right now; no earlier matches".into()),
            model_version: self.version().to_owned(),
        }
    }
}
