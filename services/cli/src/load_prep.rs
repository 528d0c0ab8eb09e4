//! Turning a leads CSV into the events of `leadbus load`, and the offline AUC to compare with.

use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use leadbus_inference::datasets::leads;
use leadbus_inference::models::Models;
use leadbus_inference::training::evaluate::evaluate_lead_score;
use leadbus_shared::{Config, LeadEvent, LeadId, Priority, TenantId};

pub(crate) use leadbus_inference::training::metrics::roc_auc;

/// One row of the file, as the events that describe it.
#[derive(Debug)]
pub(crate) struct PreparedLead {
    /// `{run}-{Prospect ID}`.
    pub(crate) lead_id: LeadId,
    /// The `Converted` label.
    pub(crate) converted: Option<bool>,
    /// `lead_created`, then its `interaction_recorded` events.
    pub(crate) events: Vec<LeadEvent>,
}

/// Reads the CSV and builds each row's events, for `tenant`, at `priority`.
pub(crate) fn prepare(
    path: &Path,
    tenant: &TenantId,
    priority: Priority,
    run_id: &str,
) -> anyhow::Result<Vec<PreparedLead>> {
    let loaded = leads::read(path)?;
    if loaded.skipped > 0 {
        eprintln!("{} rows without an id or label skipped", loaded.skipped);
    }
    let now = Utc::now();
    loaded
        .rows
        .iter()
        .map(|row| {
            let lead_id =
                LeadId::new(format!("{run_id}-{}", row.prospect_id)).with_context(|| {
                    format!("Prospect ID {:?} cannot be a lead id", row.prospect_id)
                })?;
            let mut events = leads::row_events(row, tenant, &lead_id, now);
            for e in &mut events {
                e.priority = priority;
            }
            Ok(PreparedLead {
                lead_id,
                converted: Some(row.converted),
                events,
            })
        })
        .collect()
}

/// The lead-score model's ROC AUC on the same file, scored offline through the serving path.
pub(crate) fn offline_auc(path: &Path, config: &Config) -> anyhow::Result<f64> {
    let models = Models::load(config.models_dir.as_deref(), &config.data_dir)?;
    evaluate_lead_score(&models.lead_score, path)?
        .roc_auc
        .context("the file has only one class")
}
