//! Dynamic loss scaling for mixed precision, as PyTorch's `GradScaler` does it: the loss is
//! multiplied by the scale before the backward pass, so that small gradients survive the f16
//! activations, and the gradients are divided by it before clipping and the optimizer step. A step
//! whose gradients hold an inf or a NaN is skipped and the scale halved; after `GROWTH_INTERVAL`
//! good steps in a row the scale doubles.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::train::clip_grad::{clip_global_norm, scale_grads, squared_norm};

/// GradScaler's defaults.
const INITIAL_SCALE: f64 = 65536.0;
const GROWTH_INTERVAL: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct LossScale {
    pub scale: f64,
    good_steps: usize,
}

impl Default for LossScale {
    fn default() -> Self {
        Self {
            scale: INITIAL_SCALE,
            good_steps: 0,
        }
    }
}

impl LossScale {
    pub fn scale_loss(&self, loss: Tensor<1>) -> Tensor<1> {
        loss.mul_scalar(self.scale)
    }

    /// Divide `grads` by the scale. Returns `false` when any gradient is not finite: then the
    /// gradients are left as they are, the scale is halved and the caller skips the step. Reads
    /// one number back from the device.
    pub fn unscale<M: Module>(&mut self, module: &M, grads: &mut GradientsParams) -> bool {
        let Some(total) = squared_norm(module, grads) else {
            return true;
        };
        let device = total.device();
        if !total.into_scalar::<f32>().is_finite() {
            self.scale /= 2.0;
            self.good_steps = 0;
            return false;
        }
        let factor = Tensor::<1>::from_data(
            TensorData::new(vec![(1.0 / self.scale) as f32], [1]),
            &device,
        );
        scale_grads(module, grads, factor);
        self.good_steps += 1;
        if self.good_steps == GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }
}

/// `loss` times the scale under mixed precision (`Some`), else `loss`: what to call `backward` on.
pub fn scaled(loss_scale: Option<&LossScale>, loss: Tensor<1>) -> Tensor<1> {
    match loss_scale {
        Some(scale) => scale.scale_loss(loss),
        None => loss,
    }
}

/// One optimizer step of `module` from its `grads`: under mixed precision (`loss_scale`) unscale
/// them or, when they overflowed, skip the step; then clip their global norm if asked; then step.
/// Returns the module and whether the step was applied.
pub fn optimizer_step<M: Module>(
    optim: &mut ModuleOptimizer,
    lr: f64,
    module: M,
    mut grads: GradientsParams,
    loss_scale: Option<&mut LossScale>,
    clip_grad_norm: Option<f64>,
) -> (M, bool) {
    if let Some(scale) = loss_scale
        && !scale.unscale(&module, &mut grads)
    {
        return (module, false);
    }
    if let Some(max) = clip_grad_norm {
        clip_global_norm(&module, &mut grads, max);
    }
    (
        crate::train::adamw_gpu::step(optim, lr, module, grads),
        true,
    )
}
