//! Dynamic loss scaling for mixed precision, as PyTorch's `GradScaler` does it: the loss is
//! multiplied by the scale before the backward pass, so that small gradients survive the f16
//! activations, and the gradients are divided by it before clipping and the optimizer step. A step
//! whose gradients hold an inf or a NaN is skipped and the scale halved; after `GROWTH_INTERVAL`
//! good steps in a row the scale doubles.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::train::clip_grad::{clip_factor, clip_global_norm, scale_grads, squared_norm};

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
        let Some(unscale) = self.check(&total) else {
            return false;
        };
        scale_grads(module, grads, constant(unscale, &total.device()));
        true
    }

    /// The gradients' inverse scale when `total`, their sum of squares, is finite (the scale grows
    /// after `GROWTH_INTERVAL` such steps in a row); `None` when it is not (the scale is halved and
    /// the step must be skipped). Reads `total` back from the device: one number.
    fn check(&mut self, total: &Tensor<1>) -> Option<f64> {
        let used = self.scale;
        if !total.clone().into_scalar::<f32>().is_finite() {
            self.scale /= 2.0;
            self.good_steps = 0;
            return None;
        }
        self.good_steps += 1;
        if self.good_steps == GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        Some(1.0 / used)
    }
}

/// `loss` times the scale under mixed precision (`Some`), else `loss`: what to call `backward` on.
pub fn scaled(loss_scale: Option<&LossScale>, loss: Tensor<1>) -> Tensor<1> {
    match loss_scale {
        Some(scale) => scale.scale_loss(loss),
        None => loss,
    }
}

/// `[value]` on `device`.
fn constant(value: f64, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(vec![value as f32], [1]), device)
}

/// One optimizer step of `module` from its `grads`: under mixed precision (`loss_scale`) unscale
/// them or, when they overflowed, skip the step; then clip their global norm if asked; then step.
/// Returns the module and whether the step was applied.
///
/// Both need the sum of squares of every gradient, computed once (on wgpu in a few launches);
/// unscaling and clipping then make one factor on the device, which the optimizer applies as it
/// reads each gradient (on wgpu inside the multi-tensor AdamW): no pass over the gradients of its
/// own.
pub fn optimizer_step<M: Module>(
    optim: &mut ModuleOptimizer,
    lr: f64,
    module: M,
    mut grads: GradientsParams,
    loss_scale: Option<&mut LossScale>,
    clip_grad_norm: Option<f64>,
) -> (M, bool) {
    use crate::train::adamw_gpu;
    if !crate::train::grads_gpu::multi_tensor() {
        // As before the multi-tensor sum (for `flyp bench step`'s before/after comparison).
        if let Some(scale) = loss_scale
            && !scale.unscale(&module, &mut grads)
        {
            return (module, false);
        }
        if let Some(max) = clip_grad_norm {
            clip_global_norm(&module, &mut grads, max);
        }
        return (adamw_gpu::step(optim, lr, module, grads, None), true);
    }
    let total = (loss_scale.is_some() || clip_grad_norm.is_some())
        .then(|| squared_norm(&module, &grads))
        .flatten();
    let Some(total) = total else {
        return (adamw_gpu::step(optim, lr, module, grads, None), true);
    };
    let unscale = match loss_scale {
        Some(scale) => match scale.check(&total) {
            Some(unscale) => unscale,
            None => return (module, false),
        },
        None => 1.0,
    };
    let device = total.device();
    let factor = match clip_grad_norm {
        Some(max) => {
            let clip = clip_factor(total, max, unscale);
            Some(if unscale == 1.0 {
                clip
            } else {
                clip.mul_scalar(unscale)
            })
        }
        None => (unscale != 1.0).then(|| constant(unscale, &device)),
    };
    (adamw_gpu::step(optim, lr, module, grads, factor), true)
}
