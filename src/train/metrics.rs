//! Classification metrics: top-1 accuracy, macro-F1 (iWILDCam's metric), per-class precision and
//! recall, and the confusion matrix.

use serde::{Deserialize, Serialize};

/// Metrics of one evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub images: usize,
    pub top1: f64,
    /// Mean over classes of F1 (a class absent from both labels and predictions is left out).
    pub macro_f1: f64,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// From predicted and true class indices (both `< classes`).
    pub fn from_predictions(predicted: &[usize], truth: &[usize], classes: usize) -> Self {
        let mut confusion = vec![vec![0usize; classes]; classes];
        for (&p, &t) in predicted.iter().zip(truth) {
            if p < classes && t < classes {
                confusion[t][p] += 1;
            }
        }
        let images = truth.len();
        let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let mut precision = Vec::with_capacity(classes);
        let mut recall = Vec::with_capacity(classes);
        let mut f1s = Vec::new();
        for (c, row) in confusion.iter().enumerate() {
            let tp = row[c];
            let predicted_c: usize = confusion.iter().map(|r| r[c]).sum();
            let actual_c: usize = row.iter().sum();
            let (p, r) = (ratio(tp, predicted_c), ratio(tp, actual_c));
            precision.push(p);
            recall.push(r);
            if predicted_c + actual_c > 0 {
                f1s.push(if p + r == 0.0 {
                    0.0
                } else {
                    2.0 * p * r / (p + r)
                });
            }
        }
        let macro_f1 = if f1s.is_empty() {
            0.0
        } else {
            f1s.iter().sum::<f64>() / f1s.len() as f64
        };
        Self {
            images,
            top1: ratio(correct, images),
            macro_f1,
            precision,
            recall,
            confusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_a_hand_count() {
        // truth:     0 0 0 1 1 2
        // predicted: 0 1 0 1 2 2
        let m = Metrics::from_predictions(&[0, 1, 0, 1, 2, 2], &[0, 0, 0, 1, 1, 2], 3);
        assert!((m.top1 - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert_eq!(m.precision, vec![1.0, 0.5, 0.5]);
        assert_eq!(m.recall, vec![2.0 / 3.0, 0.5, 1.0]);
        let f1 = |p: f64, r: f64| 2.0 * p * r / (p + r);
        let want = (f1(1.0, 2.0 / 3.0) + f1(0.5, 0.5) + f1(0.5, 1.0)) / 3.0;
        assert!((m.macro_f1 - want).abs() < 1e-12);
    }
}
