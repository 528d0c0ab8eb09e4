//! Scoring labelled CSVs offline through the serving path: row, its events, the lead profile
//! (events applied in order), `Model::input`, `Model::run`. The `load` command prints the
//! lead-score AUC from here beside the one measured through the bus; they agree because both
//! run the same code on the same events.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use leadbus_shared::{LeadEvent, LeadId, TenantId};
use tracing::warn;

use super::TrainError;
use super::metrics::roc_auc;
use crate::datasets::{leads, telco};
use crate::models::{ChurnModel, LeadScoreModel, Model};
use crate::profile::LeadProfile;

/// Tenant of the profiles built offline (features never depend on it).
pub const OFFLINE_TENANT: &str = "offline";

/// Time stamped on offline events (features never depend on it).
pub fn offline_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// One labelled row with the probability the model gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRow {
    /// Prospect ID or customer id.
    pub id: String,
    /// The label.
    pub label: bool,
    /// The model's probability.
    pub score: f64,
}

/// A labelled file scored offline.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineEval {
    /// Rows read and scored, in file order.
    pub scored: Vec<ScoredRow>,
    /// Rows the reader skipped, plus rows without a valid id or that the model refused.
    pub skipped: usize,
    /// ROC AUC over `scored`; `None` when a class is absent.
    pub roc_auc: Option<f64>,
}

/// The profile a set of events builds, applied in the order given.
pub fn profile_of(events: &[LeadEvent], tenant: &TenantId, lead: &LeadId) -> LeadProfile {
    let mut profile = LeadProfile::new(tenant.clone(), lead.clone());
    for e in events {
        profile.apply(e);
    }
    profile
}

/// The tenant of offline profiles.
pub(crate) fn offline_tenant() -> Result<TenantId, TrainError> {
    TenantId::new(OFFLINE_TENANT).map_err(|e| TrainError::Invalid(e.to_string()))
}

/// The profile of a leads row, built from [`leads::row_events`]; `None` when the row's
/// Prospect ID is not a valid lead id.
pub fn lead_profile(row: &leads::LeadRow, tenant: &TenantId) -> Option<LeadProfile> {
    let lead = row.lead_id().ok()?;
    Some(profile_of(
        &leads::row_events(row, tenant, &lead, offline_time()),
        tenant,
        &lead,
    ))
}

/// The profile of a Telco row, built from [`telco::row_events`]; `None` when the customer id
/// is not a valid lead id.
pub fn telco_profile(row: &telco::TelcoRow, tenant: &TenantId) -> Option<LeadProfile> {
    let lead = row.lead_id().ok()?;
    Some(profile_of(
        &telco::row_events(row, tenant, &lead, offline_time()),
        tenant,
        &lead,
    ))
}

/// Scores a leads CSV with the lead-score model, as the live system would.
pub fn evaluate_lead_score(model: &LeadScoreModel, csv: &Path) -> Result<OfflineEval, TrainError> {
    let tenant = offline_tenant()?;
    let loaded = leads::read(csv)?;
    let rows = loaded.rows.iter().map(|row| {
        let score = match lead_profile(row, &tenant) {
            Some(profile) => model
                .run(&model.input(&profile))
                .map(|s| s.score)
                .map_err(|e| e.to_string()),
            None => Err("Prospect ID is not a valid lead id".to_owned()),
        };
        (row.prospect_id.clone(), row.converted, score)
    });
    Ok(collect(rows, loaded.skipped))
}

/// Scores a Telco CSV with the churn model, as the live system would.
pub fn evaluate_churn(model: &ChurnModel, csv: &Path) -> Result<OfflineEval, TrainError> {
    let tenant = offline_tenant()?;
    let loaded = telco::read(csv)?;
    let rows = loaded.rows.iter().map(|row| {
        let risk = match telco_profile(row, &tenant) {
            Some(profile) => model
                .run(&model.input(&profile))
                .map(|r| r.risk)
                .map_err(|e| e.to_string()),
            None => Err("customerID is not a valid lead id".to_owned()),
        };
        (row.customer_id.clone(), row.churned, risk)
    });
    Ok(collect(rows, loaded.skipped))
}

fn collect(
    rows: impl Iterator<Item = (String, bool, Result<f64, String>)>,
    skipped: usize,
) -> OfflineEval {
    let mut scored = Vec::new();
    let mut refused = 0;
    for (id, label, score) in rows {
        match score {
            Ok(score) => scored.push(ScoredRow { id, label, score }),
            Err(error) => {
                refused += 1;
                warn!(id, %error, "row not scored");
            }
        }
    }
    let scores: Vec<f64> = scored.iter().map(|r| r.score).collect();
    let labels: Vec<bool> = scored.iter().map(|r| r.label).collect();
    OfflineEval {
        roc_auc: roc_auc(&scores, &labels),
        scored,
        skipped: skipped + refused,
    }
}
