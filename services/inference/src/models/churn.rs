//! Churn: the probability that a lead with an account goes cold, with its drivers.
//!
//! A logistic regression over the account facts in the profile (tenure, contract, fees,
//! payment, paperless billing, services, household), trained on IBM's fictional Telco churn
//! sample mapped onto `Account` (see `datasets::telco`). A lead with no account facts gets the
//! training churn rate as its risk and no drivers: the model has nothing to say about it.

use leadbus_shared::event::Account;
use leadbus_shared::intel::{ChurnRisk, RiskLevel};
use serde::{Deserialize, Serialize};

use super::artifact::{Artifact, ArtifactError, Transform};
use super::logistic::{LogisticScorer, Raw, RawInputs};
use super::{Model, ModelError};
use crate::profile::LeadProfile;

/// Drivers reported with a risk.
pub const TOP_DRIVERS: usize = 5;

/// Numeric inputs and their transformation (the rest are categories or sets).
pub(crate) const NUMERIC_INPUTS: [(&str, Transform); 3] = [
    ("tenure_months", Transform::Log1p),
    ("monthly_fee", Transform::Identity),
    ("total_billed", Transform::Log1p),
];

/// Exactly what churn reads from a profile: its account facts, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnFeatures {
    /// The lead's account; `None` when no event has stated one.
    pub account: Option<Account>,
}

impl ChurnFeatures {
    /// Reads the features from a profile.
    pub fn from_profile(profile: &LeadProfile) -> Self {
        ChurnFeatures {
            account: profile.attributes.account.as_ref().map(|s| s.value.clone()),
        }
    }

    /// The named raw inputs the artifact encodes; empty without an account.
    pub fn raw(&self) -> RawInputs {
        let Some(a) = &self.account else {
            return Vec::new();
        };
        let sorted = |v: &Option<Vec<String>>| {
            v.clone().map(|mut v| {
                v.sort();
                v
            })
        };
        vec![
            ("tenure_months", Raw::Number(a.tenure_months)),
            ("monthly_fee", Raw::Number(a.monthly_fee)),
            ("total_billed", Raw::Number(a.total_billed)),
            ("contract", Raw::Category(a.contract.clone())),
            ("payment_method", Raw::Category(a.payment_method.clone())),
            (
                "paperless",
                Raw::Category(a.paperless.map(|b| if b { "yes" } else { "no" }.into())),
            ),
            ("services", Raw::Set(sorted(&a.services))),
            ("household", Raw::Set(sorted(&a.household))),
        ]
    }
}

/// The churn model: an artifact and its scorer.
#[derive(Debug, Clone)]
pub struct ChurnModel {
    artifact: Artifact,
    scorer: LogisticScorer,
}

impl ChurnModel {
    /// A model from a validated artifact.
    pub fn new(artifact: Artifact) -> Result<Self, ArtifactError> {
        if artifact.model != "churn" {
            return Err(ArtifactError::Invalid(format!(
                "artifact is for {:?}, not churn",
                artifact.model
            )));
        }
        let scorer = LogisticScorer::new(&artifact)?;
        Ok(ChurnModel { artifact, scorer })
    }

    /// The artifact in use.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// Risk for features; a lead without an account gets the training churn rate.
    pub fn assess(&self, input: &ChurnFeatures) -> ChurnRisk {
        let (risk, drivers) = if input.account.is_some() {
            let e = self.scorer.explain(&input.raw());
            let mut drivers = e.factors;
            drivers.truncate(TOP_DRIVERS);
            (e.probability, drivers)
        } else {
            (self.artifact.trained_on.positive_rate, Vec::new())
        };
        let level = risk_level(risk, &self.artifact.thresholds);
        ChurnRisk {
            risk,
            level,
            drivers,
            model_version: self.artifact.version.clone(),
        }
    }
}

/// The level of a churn risk under the artifact's thresholds.
pub(crate) fn risk_level(risk: f64, t: &super::artifact::Thresholds) -> RiskLevel {
    if risk >= t.high {
        RiskLevel::High
    } else if risk >= t.medium {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

impl Model for ChurnModel {
    type Input = ChurnFeatures;
    type Output = ChurnRisk;

    fn name(&self) -> &'static str {
        "churn"
    }

    fn version(&self) -> &str {
        &self.artifact.version
    }

    fn input(&self, profile: &LeadProfile) -> ChurnFeatures {
        ChurnFeatures::from_profile(profile)
    }

    fn run(&self, input: &ChurnFeatures) -> Result<ChurnRisk, ModelError> {
        let out = self.assess(input);
        if out.risk.is_finite() {
            Ok(out)
        } else {
            Err(ModelError {
                model: "churn",
                reason: "risk is not a finite number".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::artifact::tests::sample_artifact;

    fn model() -> ChurnModel {
        let mut a = sample_artifact();
        a.model = "churn".into();
        a.trained_on.positive_rate = 0.265;
        ChurnModel::new(a).unwrap()
    }

    #[test]
    fn no_account_gives_the_base_rate_without_drivers() {
        let out = model().run(&ChurnFeatures { account: None }).unwrap();
        assert_eq!(out.risk, 0.265);
        assert!(out.drivers.is_empty());
        assert_eq!(out.level, RiskLevel::Low);
    }

    #[test]
    fn account_members_drive_the_risk() {
        let account = Account {
            services: Some(vec!["valuation".into(), "alerts".into()]),
            ..Account::default()
        };
        let m = model();
        let out = m
            .run(&ChurnFeatures {
                account: Some(account.clone()),
            })
            .unwrap();
        assert_eq!(out.drivers[0].feature, "services=alerts");
        assert_eq!(
            out,
            m.run(&ChurnFeatures {
                account: Some(account)
            })
            .unwrap()
        );
    }
}
