//! Global-norm gradient clipping, as torch's `clip_grad_norm_` does it: one norm over every
//! gradient of the model, every gradient scaled by min(1, max_norm / norm). (burn's
//! `GradientClippingConfig::Norm` clips each tensor on its own, which is not the same.)
//! The scale stays on the device: nothing is read back.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let factor = self.factor.clone().reshape([1; D]);
            self.grads.register::<D>(param.id, g * factor);
        }
    }
}

/// The sum of squares of every gradient of `module`'s parameters (`None`: no gradients).
pub(crate) fn squared_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut norm = SquaredNorm { grads, total: None };
    module.visit(&mut norm);
    norm.total
}

/// Multiply every gradient of `module`'s parameters by `factor` (`[1]`).
pub(crate) fn scale_grads<M: Module>(module: &M, grads: &mut GradientsParams, factor: Tensor<1>) {
    module.visit(&mut Scale { grads, factor });
}

/// Scale `grads` (of `module`'s parameters) so their global L2 norm is at most `max_norm`.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) {
    let Some(total) = squared_norm(module, grads) else {
        return;
    };
    // min(1, max / (norm + 1e-6)), as torch.
    let factor = (total.sqrt() + 1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    scale_grads(module, grads, factor);
}
