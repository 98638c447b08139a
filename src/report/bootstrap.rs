//! Paired bootstrap intervals for accuracies and their differences, resampling test images and
//! training seeds together (REFERENCE: a difference is claimed only when its interval excludes 0).
//!
//! Input: for each test set, for each method, for each seed, whether each test image was
//! classified correctly. One replicate draws the seeds with replacement (shared by every set and
//! method) and, per set, the images with replacement (shared by every method and seed): so a
//! difference between two methods is judged on the same images and seeds (paired), and both the
//! test sample and the training randomness count in its width.

use crate::data::SplitMix64;

/// `correct[set][method][seed][image]`, and the accuracies of `replicates` bootstrap draws.
pub struct Bootstrap {
    /// `[replicate][set][method]`
    pub draws: Vec<Vec<Vec<f64>>>,
    /// `[set][method]`: the accuracy on the data as measured (mean over seeds).
    pub measured: Vec<Vec<f64>>,
}

impl Bootstrap {
    /// Draw `replicates` replicates from `correct[set][method][seed][image]` (every method and
    /// seed of a set has the same images; every set the same seeds), seeded.
    pub fn new(correct: &[Vec<Vec<Vec<bool>>>], replicates: usize, seed: u64) -> Self {
        let seeds = correct
            .first()
            .and_then(|set| set.first())
            .map_or(0, Vec::len);
        let mean = |methods: &Vec<Vec<bool>>, seed_draw: &[usize], image_draw: &[usize]| {
            let total: usize = seed_draw
                .iter()
                .map(|&s| image_draw.iter().filter(|&&i| methods[s][i]).count())
                .sum();
            total as f64 / (seed_draw.len() * image_draw.len()).max(1) as f64
        };
        let all_seeds: Vec<usize> = (0..seeds).collect();
        let images =
            |set: &Vec<Vec<Vec<bool>>>| set.first().and_then(|m| m.first()).map_or(0, Vec::len);
        let measured = correct
            .iter()
            .map(|set| {
                let all: Vec<usize> = (0..images(set)).collect();
                set.iter().map(|m| mean(m, &all_seeds, &all)).collect()
            })
            .collect();
        let mut rng = SplitMix64::new(seed);
        let draws = (0..replicates)
            .map(|_| {
                let seed_draw: Vec<usize> = (0..seeds).map(|_| rng.below(seeds)).collect();
                correct
                    .iter()
                    .map(|set| {
                        let n = images(set);
                        let image_draw: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
                        set.iter()
                            .map(|m| mean(m, &seed_draw, &image_draw))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self { draws, measured }
    }

    /// The measured value of `stat` (a function of `[set][method]` accuracies) and its
    /// percentile interval at `level` (0.95: the 2.5th and 97.5th percentiles of the replicates).
    pub fn interval(&self, level: f64, stat: impl Fn(&[Vec<f64>]) -> f64) -> Interval {
        let mut values: Vec<f64> = self.draws.iter().map(|d| stat(d)).collect();
        values.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if values.is_empty() {
                return f64::NAN;
            }
            let i = (q * (values.len() - 1) as f64).round() as usize;
            values[i.min(values.len() - 1)]
        };
        let tail = (1.0 - level) / 2.0;
        Interval {
            value: stat(&self.measured),
            low: at(tail),
            high: at(1.0 - tail),
        }
    }
}

/// A measured value and its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// The interval lies entirely above or below 0.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize, every: usize) -> Vec<bool> {
        (0..n).map(|i| i % every == 0).collect()
    }

    #[test]
    fn a_method_against_itself_differs_by_exactly_zero() {
        let m = vec![pattern(50, 3), pattern(50, 2)];
        let b = Bootstrap::new(&[vec![m.clone(), m]], 500, 1);
        let d = b.interval(0.95, |a| a[0][0] - a[0][1]);
        assert_eq!((d.value, d.low, d.high), (0.0, 0.0, 0.0));
        assert!(!d.excludes_zero());
    }

    /// 400 images at 50 %: the normal approximation's 95 % interval is ±1.96·√(0.25/400) =
    /// ±4.9 points; the bootstrap's must agree to within a point.
    #[test]
    fn one_accuracy_interval_matches_the_normal_approximation() {
        let m = vec![pattern(400, 2)];
        let b = Bootstrap::new(&[vec![m]], 4000, 7);
        let i = b.interval(0.95, |a| a[0][0]);
        assert_eq!(i.value, 0.5);
        let half = (i.high - i.low) / 2.0;
        assert!((half - 0.049).abs() < 0.01, "{i:?}");
    }

    /// Two seeds that disagree widen the interval of the same images: the seeds are resampled.
    #[test]
    fn seeds_are_resampled_with_the_images() {
        let n = 200;
        let steady = vec![pattern(n, 2), pattern(n, 2)];
        let noisy = vec![vec![true; n], vec![false; n]];
        let b = Bootstrap::new(&[vec![steady, noisy]], 2000, 3);
        let width = |m: usize| {
            let i = b.interval(0.95, |a| a[0][m]);
            i.high - i.low
        };
        assert_eq!(b.measured[0], vec![0.5, 0.5]);
        assert!(width(1) > 2.0 * width(0), "{} vs {}", width(1), width(0));
    }
}
