//! Training the two classifiers from the public CSVs, through the serving path.
//!
//! Rows become events, events become a lead profile, the profile becomes the model's input:
//! the same steps the live system takes. The L2 strength is chosen by cross-validation on the
//! training file alone; the evaluation file is only scored for the reported metrics. Training
//! is deterministic: the same files give the same parameters.

mod documentation;
pub mod evaluate;
mod fit;
pub mod metrics;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use chrono::Utc;
use sha2::{Digest, Sha256};
use tracing::info;

use self::evaluate::{OfflineEval, lead_profile, offline_tenant, telco_profile};
use self::fit::Fitted;
use crate::datasets::{DatasetError, leads, telco};
use crate::models::artifact::{
    Artifact, ArtifactError, DataRef, LOGISTIC_KIND, LevelStat, Metrics, SplitMetrics, Thresholds,
};
use crate::models::{ChurnFeatures, ChurnModel, LeadFeatures, LeadScoreModel, churn};
use crate::models::{lead_score, logistic::RawInputs};

/// Lead bands: hot from this probability (more likely than not to convert)...
pub const LEAD_HOT: f64 = 0.50;
/// ... warm from this one (one in four, well under the 38.5% base rate), cold below.
pub const LEAD_WARM: f64 = 0.25;
/// Churn levels: high from this risk (more likely than not)...
pub const CHURN_HIGH: f64 = 0.50;
/// ... medium from this one (above the 26.5% base rate), low below.
pub const CHURN_MEDIUM: f64 = 0.30;

/// Training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A CSV could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A file could not be hashed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The optimiser failed.
    #[error("fitting failed: {0}")]
    Fit(#[from] linfa_logistic::error::Error),
    /// The trained artifact is unusable.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// No rows, or only one class.
    #[error("not enough data: need rows of both classes")]
    Empty,
    /// Something inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Fits the lead score on `train_csv` (an X Education leads file), scores `eval_csv`, and
/// returns the artifact. Paths in it are recorded relative to `data_dir`.
pub fn train_lead_score(
    train_csv: &Path,
    eval_csv: &Path,
    data_dir: &Path,
) -> Result<Artifact, TrainError> {
    let tenant = offline_tenant()?;
    let train = leads::read(train_csv)?;
    let (inputs, labels): (Vec<LeadFeatures>, Vec<bool>) = train
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                LeadFeatures::from_profile(&lead_profile(r, &tenant)?),
                r.converted,
            ))
        })
        .unzip();
    let raw: Vec<RawInputs> = inputs.iter().map(LeadFeatures::raw).collect();
    let fitted = fit::fit(&raw, &labels, &lead_score::NUMERIC_INPUTS)?;

    let label = leads::LABEL_COLUMN;
    let mut artifact = artifact_from(fitted, "lead_score", LEAD_HOT, LEAD_WARM)?;
    artifact.target = "probability that the lead converts (X Education `Converted`)".into();
    artifact.trained_on = data_ref(train_csv, data_dir, &labels, train.skipped, label)?;
    artifact.excluded_columns = documentation::lead_excluded();
    artifact.feature_mapping = documentation::lead_mapping();

    let model = LeadScoreModel::new(artifact.clone())?;
    let train_eval = evaluate::evaluate_lead_score(&model, train_csv)?;
    let eval = evaluate::evaluate_lead_score(&model, eval_csv)?;
    finish(
        artifact,
        &train_eval,
        &eval,
        eval_csv,
        data_dir,
        label,
        ["hot", "warm", "cold"],
    )
}

/// Fits the churn model on `train_csv` (a Telco file), scores `eval_csv`, and returns the
/// artifact. Paths in it are recorded relative to `data_dir`.
pub fn train_churn(
    train_csv: &Path,
    eval_csv: &Path,
    data_dir: &Path,
) -> Result<Artifact, TrainError> {
    let tenant = offline_tenant()?;
    let train = telco::read(train_csv)?;
    let (inputs, labels): (Vec<ChurnFeatures>, Vec<bool>) = train
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                ChurnFeatures::from_profile(&telco_profile(r, &tenant)?),
                r.churned,
            ))
        })
        .unzip();
    let raw: Vec<RawInputs> = inputs.iter().map(ChurnFeatures::raw).collect();
    let fitted = fit::fit(&raw, &labels, &churn::NUMERIC_INPUTS)?;

    let label = telco::LABEL_COLUMN;
    let mut artifact = artifact_from(fitted, "churn", CHURN_HIGH, CHURN_MEDIUM)?;
    artifact.target = "probability that the lead goes cold (IBM Telco sample `Churn`)".into();
    artifact.trained_on = data_ref(train_csv, data_dir, &labels, train.skipped, label)?;
    artifact.excluded_columns = documentation::churn_excluded();
    artifact.feature_mapping = documentation::churn_mapping();

    let model = ChurnModel::new(artifact.clone())?;
    let train_eval = evaluate::evaluate_churn(&model, train_csv)?;
    let eval = evaluate::evaluate_churn(&model, eval_csv)?;
    finish(
        artifact,
        &train_eval,
        &eval,
        eval_csv,
        data_dir,
        label,
        ["high", "medium", "low"],
    )
}

/// An artifact with the fitted parameters and a version; data and metrics are filled later.
fn artifact_from(
    fitted: Fitted,
    model: &str,
    high: f64,
    medium: f64,
) -> Result<Artifact, TrainError> {
    let params = &(
        &fitted.features,
        fitted.intercept,
        &fitted.references,
        high,
        medium,
    );
    let params = serde_json::to_vec(params).map_err(ArtifactError::from)?;
    let hash = xxhash_rust::xxh3::xxh3_64(&params) as u32;
    let empty = DataRef {
        path: String::new(),
        sha256: String::new(),
        rows: 0,
        skipped: 0,
        label: String::new(),
        positive_rate: 0.0,
    };
    Ok(Artifact {
        version: format!(
            "{}-{}-{hash:08x}",
            model.replace('_', "-"),
            Utc::now().format("%Y.%m.%d")
        ),
        kind: LOGISTIC_KIND.into(),
        model: model.into(),
        target: String::new(),
        features: fitted.features,
        intercept: fitted.intercept,
        references: fitted.references,
        thresholds: Thresholds { high, medium },
        regularisation: fitted.regularisation,
        trained_on: empty.clone(),
        evaluated_on: empty,
        metrics: Metrics {
            train: empty_split(),
            eval: empty_split(),
        },
        excluded_columns: Vec::new(),
        feature_mapping: Vec::new(),
    })
}

fn empty_split() -> SplitMetrics {
    SplitMetrics {
        rows: 0,
        roc_auc: 0.0,
        brier: 0.0,
        log_loss: 0.0,
        calibration: Vec::new(),
        levels: Vec::new(),
    }
}

/// Fills in the evaluation file and the metrics of both files, and validates the result.
fn finish(
    mut artifact: Artifact,
    train: &OfflineEval,
    eval: &OfflineEval,
    eval_csv: &Path,
    data_dir: &Path,
    label: &str,
    levels: [&str; 3],
) -> Result<Artifact, TrainError> {
    let eval_labels: Vec<bool> = eval.scored.iter().map(|r| r.label).collect();
    artifact.evaluated_on = data_ref(eval_csv, data_dir, &eval_labels, eval.skipped, label)?;
    let t = artifact.thresholds;
    artifact.metrics = Metrics {
        train: split_metrics(train, t, levels)?,
        eval: split_metrics(eval, t, levels)?,
    };
    artifact.validate()?;
    info!(
        model = artifact.model,
        version = artifact.version,
        alpha = artifact.regularisation.alpha,
        train_auc = artifact.metrics.train.roc_auc,
        eval_auc = artifact.metrics.eval.roc_auc,
        "model trained"
    );
    Ok(artifact)
}

/// AUC, Brier, log loss, calibration and level statistics of a scored file.
pub fn split_metrics(
    scored: &OfflineEval,
    t: Thresholds,
    names: [&str; 3],
) -> Result<SplitMetrics, TrainError> {
    let p: Vec<f64> = scored.scored.iter().map(|r| r.score).collect();
    let y: Vec<bool> = scored.scored.iter().map(|r| r.label).collect();
    let roc_auc = scored.roc_auc.ok_or(TrainError::Empty)?;
    let mut levels = Vec::with_capacity(3);
    for (i, name) in names.iter().enumerate() {
        let in_level = |q: f64| match i {
            0 => q >= t.high,
            1 => q >= t.medium && q < t.high,
            _ => q < t.medium,
        };
        let members: Vec<bool> = p
            .iter()
            .zip(&y)
            .filter(|(q, _)| in_level(**q))
            .map(|(_, l)| *l)
            .collect();
        levels.push(LevelStat {
            level: (*name).into(),
            rows: members.len(),
            positive_rate: rate(&members),
        });
    }
    Ok(SplitMetrics {
        rows: p.len(),
        roc_auc,
        brier: metrics::brier(&p, &y),
        log_loss: metrics::log_loss(&p, &y),
        calibration: metrics::calibration(&p, &y, 10),
        levels,
    })
}

fn rate(labels: &[bool]) -> f64 {
    labels.iter().filter(|l| **l).count() as f64 / labels.len().max(1) as f64
}

/// The file's path relative to `data_dir`, its SHA-256, and its label statistics.
fn data_ref(
    path: &Path,
    data_dir: &Path,
    labels: &[bool],
    skipped: usize,
    label: &str,
) -> Result<DataRef, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.into(),
        source,
    })?;
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(DataRef {
        path: relative(path, data_dir),
        sha256,
        rows: labels.len(),
        skipped,
        label: label.into(),
        positive_rate: rate(labels),
    })
}

/// `path` relative to `data_dir` with `/` separators, or as given when it is elsewhere.
fn relative(path: &Path, data_dir: &Path) -> String {
    let rel = path
        .strip_prefix(data_dir)
        .ok()
        .map(Path::to_path_buf)
        .or_else(|| {
            let (p, d) = (path.canonicalize().ok()?, data_dir.canonicalize().ok()?);
            p.strip_prefix(d).ok().map(Path::to_path_buf)
        });
    let rel = rel.unwrap_or_else(|| path.to_path_buf());
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
