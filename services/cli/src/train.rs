//! `leadbus train`: fit the lead-score or churn model from a CSV, report how it does on the
//! evaluation file, and write its artifact.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use leadbus_inference::models::artifact::{Artifact, SplitMetrics};
use leadbus_inference::training::{train_churn, train_lead_score};
use leadbus_shared::Config;

/// Which classifier to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TrainModel {
    /// Conversion probability, from the X Education leads (`leads/`).
    LeadScore,
    /// Going-cold probability, from the IBM Telco sample (`churn/`).
    Churn,
}

impl TrainModel {
    fn folder(self) -> &'static str {
        match self {
            TrainModel::LeadScore => "leads",
            TrainModel::Churn => "churn",
        }
    }

    fn artifact_file(self) -> &'static str {
        match self {
            TrainModel::LeadScore => "lead_score.json",
            TrainModel::Churn => "churn.json",
        }
    }
}

/// `leadbus train lead-score|churn [--train CSV] [--eval CSV] [--out JSON]`.
#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The model to fit.
    #[arg(value_enum)]
    pub(crate) model: TrainModel,
    /// Folder with the datasets; defaults to the configured `data_dir` (`../shared/data`).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Training CSV; defaults to `<data-dir>/leads/train.csv` or `<data-dir>/churn/train.csv`.
    #[arg(long)]
    pub(crate) train: Option<PathBuf>,
    /// Evaluation CSV, only scored for the report; defaults to `eval.csv` beside the default
    /// training file.
    #[arg(long)]
    pub(crate) eval: Option<PathBuf>,
    /// Where to write the artifact; defaults to `services/inference/models/<model>.json`.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// Fits the model, prints the report and writes the artifact.
pub(crate) fn run(config: &Config, args: TrainArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(|| config.data_dir.clone());
    let folder = data_dir.join(args.model.folder());
    let train = args.train.unwrap_or_else(|| folder.join("train.csv"));
    let eval = args.eval.unwrap_or_else(|| folder.join("eval.csv"));
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("services/inference/models").join(args.model.artifact_file())
    });

    let artifact = match args.model {
        TrainModel::LeadScore => train_lead_score(&train, &eval, &data_dir),
        TrainModel::Churn => train_churn(&train, &eval, &data_dir),
    }
    .with_context(|| format!("cannot train from {}", train.display()))?;
    print_report(&artifact);
    artifact
        .write(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("artifact written to {}", out.display());
    Ok(())
}

fn print_report(a: &Artifact) {
    println!("model {} version {}", a.model, a.version);
    for (name, data) in [("train", &a.trained_on), ("eval", &a.evaluated_on)] {
        println!(
            "{name:5} {}  rows {}  skipped {}  {} positive {:.2}%",
            data.path,
            data.rows,
            data.skipped,
            data.label,
            100.0 * data.positive_rate
        );
    }
    let r = &a.regularisation;
    let cv: Vec<String> = r
        .candidates
        .iter()
        .map(|c| format!("{}: {:.4}", c.alpha, c.cv_auc))
        .collect();
    println!(
        "L2 alpha {} chosen by {}-fold CV AUC on train ({})",
        r.alpha,
        r.folds,
        cv.join(", ")
    );
    println!(
        "features {} (intercept {:.4})",
        a.features.len(),
        a.intercept
    );
    print_split("train", &a.metrics.train);
    print_split("eval", &a.metrics.eval);
    println!("calibration on eval (predicted -> observed):");
    for b in &a.metrics.eval.calibration {
        println!(
            "  {:.1}-{:.1}  rows {:5}  predicted {:.3}  observed {:.3}",
            b.lower, b.upper, b.rows, b.mean_predicted, b.observed_rate
        );
    }
    let t = a.thresholds;
    println!("levels on eval (>= {} / >= {} / below):", t.high, t.medium);
    for l in &a.metrics.eval.levels {
        println!(
            "  {:7} rows {:5}  positive {:.3}",
            l.level, l.rows, l.positive_rate
        );
    }
}

fn print_split(name: &str, m: &SplitMetrics) {
    println!(
        "{name:5} ROC AUC {:.4}  Brier {:.4}  log loss {:.4}  ({} rows)",
        m.roc_auc, m.brier, m.log_loss, m.rows
    );
}
