//! Classifier metrics: ROC AUC (ties handled by average ranks), Brier score, log loss and
//! calibration bins.

use serde::{Deserialize, Serialize};

/// ROC AUC of `scores` against `labels`: the probability that a random positive scores above
/// a random negative, ties counting one half (the Mann-Whitney statistic with average ranks,
/// which equals the trapezoid area under the ROC curve). `None` when either class is absent
/// or the lengths differ.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));

    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean squared difference between predicted probability and outcome.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(labels)
        .map(|(p, &y)| (p - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / n
}

/// Mean negative log-likelihood, probabilities clamped to `[1e-15, 1 - 1e-15]`.
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(labels)
        .map(|(p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lowest predicted probability of the bin (inclusive).
    pub lower: f64,
    /// Highest predicted probability of the bin (exclusive, except for the last bin).
    pub upper: f64,
    /// Rows whose prediction falls in the bin.
    pub rows: usize,
    /// Their mean predicted probability.
    pub mean_predicted: f64,
    /// The share of them that were positive.
    pub observed_rate: f64,
}

/// `bins` equal-width bins over 0..1; empty bins are left out.
pub fn calibration(probabilities: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let i = ((p * bins as f64) as usize).min(bins - 1);
        let (n, sum, pos) = &mut sums[i];
        *n += 1;
        *sum += p;
        *pos += usize::from(y);
    }
    sums.into_iter()
        .enumerate()
        .filter(|(_, (n, _, _))| *n > 0)
        .map(|(i, (n, sum, pos))| CalibrationBin {
            lower: i as f64 / bins as f64,
            upper: (i + 1) as f64 / bins as f64,
            rows: n,
            mean_predicted: sum / n as f64,
            observed_rate: pos as f64 / n as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_inverted_and_random_orderings() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        // One of four positive-negative pairs is misordered.
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &labels), Some(0.75));
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // All scores equal: every pair is a tie.
        assert_eq!(roc_auc(&[0.5; 4], &[false, true, false, true]), Some(0.5));
        // Pairs: (n0.2,p0.5) win, (n0.2,p0.2) tie, (n0.5,p0.5) tie, (n0.5,p0.2) loss.
        let auc = roc_auc(&[0.2, 0.5, 0.5, 0.2], &[false, false, true, true]).unwrap();
        assert!((auc - 0.5).abs() < 1e-12, "{auc}");
        // p0.3 beats n0.1, ties n0.3; p0.9 beats both: (1 + 0.5 + 1 + 1) / 4.
        let auc = roc_auc(&[0.1, 0.3, 0.3, 0.9], &[false, false, true, true]).unwrap();
        assert!((auc - 0.875).abs() < 1e-12, "{auc}");
    }

    #[test]
    fn auc_is_undefined_with_one_class() {
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[0.1], &[true, false]), None);
    }

    #[test]
    fn brier_and_calibration() {
        let p = [0.0, 1.0, 0.25, 0.75];
        let y = [false, true, false, true];
        assert!((brier(&p, &y) - 0.03125).abs() < 1e-12);
        let bins = calibration(&p, &y, 2);
        assert_eq!(bins.len(), 2);
        assert_eq!((bins[0].rows, bins[0].observed_rate), (2, 0.0));
        assert_eq!((bins[1].rows, bins[1].observed_rate), (2, 1.0));
        assert!(log_loss(&p, &y) < 0.2);
    }
}
