//! Global-norm gradient clipping, as torch's `clip_grad_norm_` does it: one norm over every
//! gradient of the model, every gradient scaled by min(1, max_norm / norm). (burn's
//! `GradientClippingConfig::Norm` clips each tensor on its own, which is not the same.)
//! The scale stays on the device: nothing is read back.

use burn::backend::Cube;
use burn::backend::tensor::FloatTensor;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::grads_gpu;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
    /// The f32 gradients on wgpu, kept for one multi-tensor sum ([`grads_gpu`]); `None`: every
    /// gradient is summed here, one at a time.
    batched: Option<Vec<FloatTensor<Cube>>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            if let Some(batched) = &mut self.batched
                && let Some(g) = grads_gpu::batchable(&g)
            {
                batched.push(g);
                return;
            }
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

/// The sum of squares of every gradient of `module`'s parameters (`None`: no gradients): the f32
/// gradients on wgpu in a few launches ([`grads_gpu`]), any other a sum per gradient.
pub(crate) fn squared_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut norm = SquaredNorm {
        grads,
        total: None,
        batched: grads_gpu::multi_tensor().then(Vec::new),
    };
    module.visit(&mut norm);
    let batched = norm
        .batched
        .filter(|b| !b.is_empty())
        .map(grads_gpu::sum_squares);
    match (batched, norm.total) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
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
    scale_grads(module, grads, clip_factor(total, max_norm, 1.0));
}

/// Clipping's factor on the device, min(1, max / (norm + 1e-6)) as torch, for gradients whose sum
/// of squares is `total` once multiplied by `unscale` (the loss scale's inverse, or 1).
pub(crate) fn clip_factor(total: Tensor<1>, max_norm: f64, unscale: f64) -> Tensor<1> {
    let norm = total.sqrt();
    let norm = if unscale == 1.0 {
        norm
    } else {
        norm.mul_scalar(unscale)
    };
    (norm + 1e-6).recip().mul_scalar(max_norm).clamp_max(1.0)
}
