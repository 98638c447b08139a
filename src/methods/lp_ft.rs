//! LP-FT (Kumar et al., 2022): the linear probe first, then FT ([`super::finetune`]) starting
//! from the probe's head, at a smaller learning rate (`flyp compare` scales its --lr by
//! --lp-ft-lr-scale); clipped at 1.0 like FT. WiSE-FT applies.

use std::sync::Arc;

use super::finetune::HeadCrossEntropy;
use super::{Method, Objective, Options};

/// LP-FT as users pick it.
pub struct LpFt;

impl Method for LpFt {
    fn name(&self) -> &'static str {
        "lp-ft"
    }
    fn label(&self) -> &'static str {
        "LP-FT"
    }
    fn about(&self) -> &'static str {
        "A linear probe first, then fine-tuning that starts from the probe's head (use a smaller learning rate, e.g. a tenth)"
    }
    fn objective(&self, _: Options) -> Option<Arc<dyn Objective>> {
        Some(Arc::new(HeadCrossEntropy))
    }
    fn probes_first(&self) -> bool {
        true
    }
    fn reference_clip_grad_norm(&self) -> Option<f64> {
        Some(1.0)
    }
    fn compare_lr_scale(&self, lp_ft_lr_scale: f64) -> f64 {
        lp_ft_lr_scale
    }
    fn demo_lr(&self) -> f64 {
        3e-5
    }
    fn colour(&self) -> usize {
        1
    }
}
