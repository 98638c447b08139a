//! The learning-rate schedule of FLYP's and WiSE-FT's code: linear warmup from 0, then cosine decay
//! to 0 over the remaining steps.

use std::f64::consts::PI;

/// The learning rate at `step` (0-based) of `total` steps with `warmup` warmup steps.
pub fn warmup_cosine(step: usize, total: usize, warmup: usize, base_lr: f64) -> f64 {
    if step < warmup {
        return base_lr * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
    0.5 * (1.0 + (PI * progress).cos()) * base_lr
}

/// FLYP's default warmup (500 steps) capped at 10 % of the run, as short runs need.
pub fn default_warmup(total: usize) -> usize {
    500.min(total / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let lr = |s| warmup_cosine(s, 110, 10, 1e-5);
        assert!((lr(0) - 1e-6).abs() < 1e-18); // (0 + 1) / 10 of base, as open_clip's assign_learning_rate
        assert!((lr(9) - 1e-5).abs() < 1e-18);
        assert!((lr(10) - 1e-5).abs() < 1e-18); // cosine starts at the top
        assert!((lr(60) - 0.5e-5).abs() < 1e-15); // half way down
        assert!(lr(109) < 1e-8 && lr(109) > 0.0);
        assert_eq!(default_warmup(2000), 200);
        assert_eq!(default_warmup(100_000), 500);
    }
}
