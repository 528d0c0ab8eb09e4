//! Lead scoring: the probability that a lead converts, with the factors behind it.
//!
//! A logistic regression over what the profile knows at any moment: site activity (visits and
//! pages per visit `log1p`, time on site linear, and whether there was any activity at all),
//! where the lead came from (source, origin), who it is (occupation, city) and its opt-outs.
//! Trained on X Education leads without the columns sales writes after contact (see
//! `models/README.md`).

use leadbus_shared::intel::{Band, LeadScore};
use serde::{Deserialize, Serialize};

use super::artifact::{Artifact, ArtifactError, Transform};
use super::logistic::{LogisticScorer, Raw, RawInputs};
use super::{Model, ModelError};
use crate::profile::LeadProfile;

/// Factors reported with a score.
pub const TOP_FACTORS: usize = 5;

/// Numeric inputs and their transformation (the rest are categories).
pub(crate) const NUMERIC_INPUTS: [(&str, Transform); 3] = [
    ("visits", Transform::Log1p),
    ("time_on_site_s", Transform::Identity),
    ("pages_per_visit", Transform::Log1p),
];

/// Exactly what the lead score reads from a profile; its JSON is hashed into the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadFeatures {
    /// Site visits.
    pub visits: f64,
    /// Seconds on the site over all interactions.
    pub time_on_site_s: f64,
    /// Pages seen per visit (0 without visits).
    pub pages_per_visit: f64,
    /// Marketing source token.
    pub source: Option<String>,
    /// How the lead entered the CRM.
    pub origin: Option<String>,
    /// Occupation token.
    pub occupation: Option<String>,
    /// City token.
    pub city: Option<String>,
    /// Asked not to be emailed.
    pub do_not_email: Option<bool>,
    /// Asked not to be called.
    pub do_not_call: Option<bool>,
}

impl LeadFeatures {
    /// Reads the features from a profile. Training, offline evaluation and serving all call
    /// this, so each sees the same numbers for the same events.
    pub fn from_profile(profile: &LeadProfile) -> Self {
        let a = &profile.attributes;
        let visits = profile.visits as f64;
        LeadFeatures {
            visits,
            time_on_site_s: profile.time_on_site_s,
            pages_per_visit: if visits > 0.0 {
                profile.page_views / visits
            } else {
                0.0
            },
            source: a.source.as_ref().map(|s| s.value.clone()),
            origin: a.origin.as_ref().map(|s| s.value.clone()),
            occupation: a.occupation.as_ref().map(|s| s.value.clone()),
            city: a.city.as_ref().map(|s| s.value.clone()),
            do_not_email: a.do_not_email.as_ref().map(|s| s.value),
            do_not_call: a.do_not_call.as_ref().map(|s| s.value),
        }
    }

    /// The named raw inputs the artifact encodes.
    pub fn raw(&self) -> RawInputs {
        let flag = |v: Option<bool>| Raw::Category(v.map(|b| if b { "yes" } else { "no" }.into()));
        // Leads with no site activity at all (mostly API and Lead Add Form entries) convert
        // unlike those with a little: this lets the linear model tell them apart.
        let idle = self.visits == 0.0 && self.time_on_site_s == 0.0;
        let activity = if idle { "none" } else { "some" };
        vec![
            ("visits", Raw::Number(Some(self.visits))),
            ("site_activity", Raw::Category(Some(activity.into()))),
            ("time_on_site_s", Raw::Number(Some(self.time_on_site_s))),
            ("pages_per_visit", Raw::Number(Some(self.pages_per_visit))),
            ("source", Raw::Category(self.source.clone())),
            ("origin", Raw::Category(self.origin.clone())),
            ("occupation", Raw::Category(self.occupation.clone())),
            ("city", Raw::Category(self.city.clone())),
            ("do_not_email", flag(self.do_not_email)),
            ("do_not_call", flag(self.do_not_call)),
        ]
    }
}

/// The lead-scoring model: an artifact and its scorer.
#[derive(Debug, Clone)]
pub struct LeadScoreModel {
    artifact: Artifact,
    scorer: LogisticScorer,
}

impl LeadScoreModel {
    /// A model from a validated artifact.
    pub fn new(artifact: Artifact) -> Result<Self, ArtifactError> {
        if artifact.model != "lead_score" {
            return Err(ArtifactError::Invalid(format!(
                "artifact is for {:?}, not lead_score",
                artifact.model
            )));
        }
        let scorer = LogisticScorer::new(&artifact)?;
        Ok(LeadScoreModel { artifact, scorer })
    }

    /// The artifact in use.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// Scores features; never fails for a validated artifact.
    pub fn score(&self, input: &LeadFeatures) -> LeadScore {
        let e = self.scorer.explain(&input.raw());
        let t = self.artifact.thresholds;
        let band = if e.probability >= t.high {
            Band::Hot
        } else if e.probability >= t.medium {
            Band::Warm
        } else {
            Band::Cold
        };
        let mut factors = e.factors;
        factors.truncate(TOP_FACTORS);
        LeadScore {
            score: e.probability,
            band,
            factors,
            model_version: self.artifact.version.clone(),
        }
    }
}

impl Model for LeadScoreModel {
    type Input = LeadFeatures;
    type Output = LeadScore;

    fn name(&self) -> &'static str {
        "lead_score"
    }

    fn version(&self) -> &str {
        &self.artifact.version
    }

    fn input(&self, profile: &LeadProfile) -> LeadFeatures {
        LeadFeatures::from_profile(profile)
    }

    fn run(&self, input: &LeadFeatures) -> Result<LeadScore, ModelError> {
        let out = self.score(input);
        if out.score.is_finite() {
            Ok(out)
        } else {
            Err(ModelError {
                model: "lead_score",
                reason: "score is not a finite number".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::artifact::tests::sample_artifact;

    fn features(time: f64, source: &str) -> LeadFeatures {
        LeadFeatures {
            visits: 3.0,
            time_on_site_s: time,
            pages_per_visit: 2.0,
            source: Some(source.into()),
            origin: None,
            occupation: None,
            city: None,
            do_not_email: Some(false),
            do_not_call: None,
        }
    }

    #[test]
    fn scores_are_deterministic_with_ordered_factors() {
        let m = LeadScoreModel::new(sample_artifact()).unwrap();
        let input = features(1800.0, "reference");
        let a = m.run(&input).unwrap();
        assert_eq!(a, m.run(&input).unwrap());
        assert_eq!(m.cache_key(&input), m.cache_key(&input.clone()));
        assert!(a.factors.len() <= TOP_FACTORS);
        for w in a.factors.windows(2) {
            assert!(w[0].contribution.abs() >= w[1].contribution.abs());
        }
        assert_eq!(a.factors[0].feature, "time_on_site_s");
        assert_eq!(a.factors[0].value, 1800.0);
        assert_eq!(a.model_version, "lead-score-test-1");
    }

    #[test]
    fn bands_follow_the_thresholds() {
        let m = LeadScoreModel::new(sample_artifact()).unwrap();
        assert_eq!(m.score(&features(1e6, "reference")).band, Band::Hot);
        assert_eq!(m.score(&features(0.0, "google")).band, Band::Cold);
        assert_ne!(
            m.cache_key(&features(1.0, "a")),
            m.cache_key(&features(2.0, "a"))
        );
    }

    #[test]
    fn refuses_an_artifact_of_another_model() {
        let mut a = sample_artifact();
        a.model = "churn".into();
        assert!(LeadScoreModel::new(a).is_err());
    }
}
