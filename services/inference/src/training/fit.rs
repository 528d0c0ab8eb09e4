//! Fitting a logistic model on named raw inputs: the feature vocabulary, standardisation, the
//! design matrix (built by the serving scorer's own encoder), the L2 strength by
//! cross-validation, and the final fit with linfa-logistic.

use std::collections::BTreeMap;

use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use super::TrainError;
use super::metrics::roc_auc;
use crate::models::artifact::{AlphaScore, Encoding, FeatureSpec, Regularisation, Transform};
use crate::models::logistic::{LogisticScorer, MISSING, OTHER, Raw, RawInputs, sigmoid};

/// A category level (or set member) needs this many training rows for its own feature;
/// rarer levels share the `_other` feature.
pub(crate) const MIN_LEVEL_ROWS: usize = 10;
/// L2 strengths tried (the loss is summed over rows, so 1.0 is scikit-learn's `C = 1`).
pub(crate) const ALPHAS: [f64; 6] = [0.01, 0.1, 1.0, 3.0, 10.0, 30.0];
/// Cross-validation folds on the training file.
pub(crate) const FOLDS: usize = 5;
const MAX_ITERATIONS: u64 = 1000;
const GRADIENT_TOLERANCE: f64 = 1e-6;

/// A fitted model, ready to go into an artifact.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    pub(crate) features: Vec<FeatureSpec>,
    pub(crate) references: BTreeMap<String, String>,
    pub(crate) intercept: f64,
    pub(crate) regularisation: Regularisation,
}

/// Fits on `rows` with `labels`. `numeric` names the numeric inputs and their transforms;
/// every other input is a category or a set, as its [`Raw`] variant says.
pub(crate) fn fit(
    rows: &[RawInputs],
    labels: &[bool],
    numeric: &[(&str, Transform)],
) -> Result<Fitted, TrainError> {
    if rows.len() != labels.len() || rows.is_empty() {
        return Err(TrainError::Empty);
    }
    let (mut features, references) = vocabulary(rows, numeric);
    let scorer = LogisticScorer::from_parts(features.clone(), &references, 0.0)
        .map_err(|e| TrainError::Invalid(e.to_string()))?;
    let x = design(&scorer, rows);

    let mut candidates = Vec::with_capacity(ALPHAS.len());
    for alpha in ALPHAS {
        candidates.push(AlphaScore {
            alpha,
            cv_auc: cross_validate(&x, labels, alpha)?,
        });
    }
    // Best mean AUC; on a tie the stronger penalty (the simpler model).
    let best = candidates
        .iter()
        .rev()
        .fold(None::<&AlphaScore>, |best, c| match best {
            Some(b) if b.cv_auc >= c.cv_auc => Some(b),
            _ => Some(c),
        })
        .map_or(1.0, |c| c.alpha);

    let (weights, intercept) = fit_once(&x, labels, best)?;
    for (f, w) in features.iter_mut().zip(weights) {
        f.weight = w;
    }
    let regularisation = Regularisation {
        penalty: "l2".into(),
        alpha: best,
        folds: FOLDS,
        candidates,
    };
    Ok(Fitted {
        features,
        references,
        intercept,
        regularisation,
    })
}

/// Encoded features (weights zero) and each category's reference level.
fn vocabulary(
    rows: &[RawInputs],
    numeric: &[(&str, Transform)],
) -> (Vec<FeatureSpec>, BTreeMap<String, String>) {
    let mut features = Vec::new();
    for &(name, transform) in numeric {
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|r| r.iter().filter(|(n, _)| *n == name))
            .filter_map(|(_, v)| match v {
                Raw::Number(Some(v)) if v.is_finite() => Some(transform.apply(*v)),
                _ => None,
            })
            .collect();
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        features.push(FeatureSpec {
            name: name.into(),
            input: name.into(),
            encoding: Encoding::Numeric {
                transform,
                mean,
                std,
            },
            weight: 0.0,
        });
    }

    let mut references = BTreeMap::new();
    let Some(first) = rows.first() else {
        return (features, references);
    };
    for (name, kind) in first
        .iter()
        .filter(|(n, _)| !numeric.iter().any(|(m, _)| m == n))
    {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, v) in rows
            .iter()
            .flat_map(|r| r.iter().filter(|(n, _)| n == name))
        {
            match v {
                Raw::Category(c) => {
                    *counts
                        .entry(c.clone().unwrap_or_else(|| MISSING.into()))
                        .or_default() += 1;
                }
                Raw::Set(Some(items)) => {
                    for item in items {
                        *counts.entry(item.clone()).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        let spec = |level: &str, encoding| FeatureSpec {
            name: format!("{name}={level}"),
            input: (*name).into(),
            encoding,
            weight: 0.0,
        };
        if let Raw::Set(_) = kind {
            for (member, _) in counts.iter().filter(|(_, c)| **c >= MIN_LEVEL_ROWS) {
                features.push(spec(
                    member,
                    Encoding::Member {
                        member: member.clone(),
                    },
                ));
            }
            continue;
        }
        // The most common level is the reference; ties go to the first name.
        let Some(reference) = counts
            .iter()
            .fold(None::<(&String, usize)>, |best, (l, &c)| match best {
                Some((_, bc)) if bc >= c => best,
                _ => Some((l, c)),
            })
            .map(|(l, _)| l.clone())
        else {
            continue;
        };
        let mut rare = false;
        for (level, &count) in counts.iter().filter(|(l, _)| **l != reference) {
            if count >= MIN_LEVEL_ROWS {
                features.push(spec(
                    level,
                    Encoding::Category {
                        level: level.clone(),
                    },
                ));
            } else {
                rare = true;
            }
        }
        if rare {
            features.push(spec(
                OTHER,
                Encoding::Category {
                    level: OTHER.into(),
                },
            ));
        }
        references.insert((*name).to_owned(), reference);
    }
    (features, references)
}

/// The design matrix, encoded exactly as serving encodes.
fn design(scorer: &LogisticScorer, rows: &[RawInputs]) -> Array2<f64> {
    let mut x = Array2::zeros((rows.len(), scorer.len()));
    for (mut row, raw) in x.rows_mut().into_iter().zip(rows) {
        for (cell, v) in row.iter_mut().zip(scorer.encode(raw)) {
            *cell = v;
        }
    }
    x
}

/// Weights and intercept of the fit at `alpha`, oriented so the sigmoid is P(label = true).
fn fit_once(x: &Array2<f64>, y: &[bool], alpha: f64) -> Result<(Vec<f64>, f64), TrainError> {
    let dataset = Dataset::new(x.clone(), Array1::from(y.to_vec()));
    let model = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(MAX_ITERATIONS)
        .gradient_tolerance(GRADIENT_TOLERANCE)
        .fit(&dataset)?;
    // linfa models the probability of its "positive" class, which is whichever label it
    // chose (the more frequent one); flip the signs when that is `false`.
    let sign = if model.labels().pos.class { 1.0 } else { -1.0 };
    let weights = model.params().iter().map(|w| w * sign).collect();
    Ok((weights, model.intercept() * sign))
}

/// Mean ROC AUC over [`FOLDS`] folds (row `i` is in fold `i mod FOLDS`).
fn cross_validate(x: &Array2<f64>, y: &[bool], alpha: f64) -> Result<f64, TrainError> {
    let mut total = 0.0;
    for fold in 0..FOLDS {
        let (train, test): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|i| i % FOLDS != fold);
        let pick = |idx: &[usize]| x.select(ndarray::Axis(0), idx);
        let (weights, intercept) = fit_once(
            &pick(&train),
            &train.iter().map(|&i| y[i]).collect::<Vec<_>>(),
            alpha,
        )?;
        let w = Array1::from(weights);
        let scores: Vec<f64> = pick(&test)
            .dot(&w)
            .iter()
            .map(|z| sigmoid(z + intercept))
            .collect();
        let labels: Vec<bool> = test.iter().map(|&i| y[i]).collect();
        total += roc_auc(&scores, &labels).ok_or(TrainError::Empty)?;
    }
    Ok(total / FOLDS as f64)
}
