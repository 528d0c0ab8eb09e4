//! Training and evaluation checks, on small synthetic data and, when present, the real files.

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::evaluate::{evaluate_churn, evaluate_lead_score, offline_tenant};
use super::fit::fit;
use crate::datasets::{find_data_dir, leads};
use crate::models::artifact::Transform;
use crate::models::logistic::{Raw, RawInputs};
use crate::models::{Models, load_catalogue};

/// The data directory, or `None` (with a note) when this checkout has none.
fn data_dir() -> Option<PathBuf> {
    let found = find_data_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    if found.is_none() {
        eprintln!("skipped: no shared/data found (set LEADBUS_DATA_DIR to run this test)");
    }
    found
}

fn synthetic() -> (Vec<RawInputs>, Vec<bool>) {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for i in 0..400u32 {
        let x = f64::from(i % 37) * 10.0;
        let source = ["google", "reference", "olark_chat", "rare"][(i % 4 + i % 3) as usize % 4];
        let label = (i * 7919) % 100
            < if source == "reference" {
                70
            } else {
                (x / 4.0) as u32
            };
        rows.push(vec![
            ("time_on_site_s", Raw::Number(Some(x))),
            ("source", Raw::Category(Some(source.into()))),
        ]);
        labels.push(label);
    }
    (rows, labels)
}

#[test]
fn fitting_is_deterministic_and_learns_the_signal() {
    let (rows, labels) = synthetic();
    let numeric = [("time_on_site_s", Transform::Identity)];
    let a = fit(&rows, &labels, &numeric).unwrap();
    let b = fit(&rows, &labels, &numeric).unwrap();
    assert_eq!(a.features, b.features);
    assert_eq!(a.intercept, b.intercept);
    assert!(a.features[0].weight > 0.0, "more time, more conversions");
    let reference = a
        .features
        .iter()
        .find(|f| f.name == "source=reference")
        .unwrap();
    assert!(reference.weight > 0.0);
}

#[test]
fn committed_artifacts_reproduce_their_recorded_eval_auc() {
    let Some(dir) = data_dir() else { return };
    let models = Models::load(None, &dir).unwrap();

    let lead = models.lead_score.artifact();
    let eval = evaluate_lead_score(&models.lead_score, &dir.join(&lead.evaluated_on.path)).unwrap();
    assert_eq!(eval.scored.len(), lead.evaluated_on.rows);
    let auc = eval.roc_auc.unwrap();
    assert!(
        (auc - lead.metrics.eval.roc_auc).abs() < 1e-12,
        "{auc} vs recorded"
    );
    assert!(auc > 0.85, "lead score eval AUC {auc}");

    let churn = models.churn.artifact();
    let eval = evaluate_churn(&models.churn, &dir.join(&churn.evaluated_on.path)).unwrap();
    let auc = eval.roc_auc.unwrap();
    assert!(
        (auc - churn.metrics.eval.roc_auc).abs() < 1e-12,
        "{auc} vs recorded"
    );
    assert!(auc > 0.83, "churn eval AUC {auc}");

    for a in [lead, churn] {
        for data in [&a.trained_on, &a.evaluated_on] {
            let bytes = std::fs::read(dir.join(&data.path)).unwrap();
            let sha: String = {
                use sha2::Digest;
                sha2::Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            };
            assert_eq!(sha, data.sha256, "{} changed since training", data.path);
        }
    }
}

#[test]
fn every_real_lead_row_makes_valid_small_events() {
    let Some(dir) = data_dir() else { return };
    let tenant = offline_tenant().unwrap();
    let now = Utc::now();
    for file in ["leads/train.csv", "leads/eval.csv"] {
        let loaded = leads::read(&dir.join(file)).unwrap();
        assert_eq!(loaded.skipped, 0);
        for row in &loaded.rows {
            let lead = row.lead_id().unwrap();
            for e in leads::row_events(row, &tenant, &lead, now) {
                leadbus_shared::validate::check_values(&e, now).unwrap();
                let size = serde_json::to_vec(&e).unwrap().len();
                assert!(
                    size < leadbus_shared::validate::DEFAULT_MAX_PAYLOAD,
                    "{size} bytes"
                );
            }
        }
    }
}

#[test]
fn the_real_catalogue_loads() {
    let Some(dir) = data_dir() else { return };
    let listings = load_catalogue(&dir);
    // 21,436 King County properties less the 33-bedroom typo; 13,466 in Melbourne.
    assert!(listings.len() > 34_000, "{}", listings.len());
}
