//! Intelligence the inference service publishes to LEAD_INTEL (DESIGN.md section 3).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{LeadId, TenantId};

/// The last subject token of an intelligence message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntelType {
    /// The lead score changed.
    LeadScoreUpdate,
    /// Churn ran for this lead.
    ChurnRiskAlert,
    /// Property matching ran for this lead.
    PropertyMatchFound,
    /// Derived behaviour (reserved).
    BehavioralInsight,
    /// Everything the event produced, in one message; exactly one per event.
    IntelligenceComplete,
    /// Service figures (reserved).
    PerformanceMetrics,
}

impl IntelType {
    /// Every intel type.
    pub const ALL: [IntelType; 6] = [
        IntelType::LeadScoreUpdate,
        IntelType::ChurnRiskAlert,
        IntelType::PropertyMatchFound,
        IntelType::BehavioralInsight,
        IntelType::IntelligenceComplete,
        IntelType::PerformanceMetrics,
    ];

    /// The subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            IntelType::LeadScoreUpdate => "lead_score_update",
            IntelType::ChurnRiskAlert => "churn_risk_alert",
            IntelType::PropertyMatchFound => "property_match_found",
            IntelType::BehavioralInsight => "behavioral_insight",
            IntelType::IntelligenceComplete => "intelligence_complete",
            IntelType::PerformanceMetrics => "performance_metrics",
        }
    }
}

impl fmt::Display for IntelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IntelType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntelType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown intel type {s:?}"))
    }
}

/// What the models concluded about a lead after one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intelligence {
    /// Message shape version.
    pub schema: u32,
    /// Whose lead.
    pub tenant_id: TenantId,
    /// Which lead.
    pub lead_id: LeadId,
    /// The event this answers.
    pub event_id: String,
    /// Grows with every update of this lead; drop anything older than one seen.
    pub revision: u64,
    /// Conversion probability, when scoring ran.
    pub lead_score: Option<LeadScore>,
    /// Going-cold probability, when churn ran.
    pub churn: Option<ChurnRisk>,
    /// Best listings, when matching ran.
    pub matches: Option<Matches>,
    /// Time from receipt to publish, in milliseconds.
    pub processing_time_ms: f64,
    /// Where each part came from.
    pub cache: BTreeMap<String, CacheSource>,
    /// True when a fallback stood in for a model.
    pub degraded: bool,
    /// True when produced by a replay.
    pub replay: bool,
    /// When this was produced.
    pub generated_at: DateTime<Utc>,
}

/// Where a model output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSource {
    /// The in-process cache.
    L1,
    /// Redis.
    L2,
    /// The model ran.
    Computed,
    /// The model failed; a fallback stood in.
    Fallback,
}

/// A feature's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// Feature name, `name=value` for a category.
    pub feature: String,
    /// The feature's value for this lead.
    pub value: f64,
    /// Its signed contribution to the log-odds.
    pub contribution: f64,
}

/// Temperature of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Likely to convert.
    Hot,
    /// Could go either way.
    Warm,
    /// Unlikely to convert.
    Cold,
}

/// Output of the lead-scoring model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadScore {
    /// Probability of conversion, 0..1.
    pub score: f64,
    /// Hot, warm or cold.
    pub band: Band,
    /// Top contributing features, largest absolute contribution first.
    pub factors: Vec<Factor>,
    /// Version of the artifact that scored.
    pub model_version: String,
}

/// How urgent a churn risk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Needs attention now.
    High,
    /// Worth watching.
    Medium,
    /// Fine.
    Low,
}

/// Output of the churn model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnRisk {
    /// Probability the lead goes cold, 0..1.
    pub risk: f64,
    /// High, medium or low.
    pub level: RiskLevel,
    /// Top drivers, largest absolute contribution first.
    pub drivers: Vec<Factor>,
    /// Version of the artifact that scored.
    pub model_version: String,
}

/// Output of property matching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matches {
    /// Best listings, best first.
    pub items: Vec<PropertyMatch>,
    /// Why `items` is empty; `None` when it is not.
    pub reason: Option<String>,
    /// Version of the matcher and catalogue.
    pub model_version: String,
}

/// One listing matched to a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyMatch {
    /// Catalogue id of the listing.
    pub property_id: String,
    /// Match quality, 0..1.
    pub score: f64,
    /// Why it matched.
    pub reasons: Vec<String>,
}
