//! AdamW (decoupled weight decay, bias-corrected moments), the optimizer of every method, as
//! burn's `AdamW` computes it, with the whole update of a parameter in one pass on Flex and the
//! updates of all parameters in a few launches on wgpu.
//!
//! burn 0.22.1's `AdamW` spends about a dozen tensor ops per parameter (each moment scaled and
//! added, corrected, a square root, a division, the decay, the step), each a fresh allocation and a
//! pass on one thread: 50 ms of a 440 ms tiny FLYP step on this 2-core CPU. On Flex the update of
//! each parameter here is one pass over both cores that rewrites the parameter and its moments in
//! place. On wgpu, when the step goes through [`adamw_gpu::step`], every f32 parameter's update
//! is one fusion operation (see there). Everywhere else (other precisions) it is burn's `AdamW`
//! itself. The state is burn's `AdamWState`, so checkpoints written before this change resume
//! unchanged.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, backend_extension};
use burn::optim::{
    AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::prelude::*;
use rayon::prelude::*;

use crate::model::cpu::{contiguous, f32_values, f32s, owned_data};
use crate::train::adamw_gpu::{self, Intercept};

/// burn's `AdamW` with these settings (no AMSGrad, no cautious decay), fused on Flex.
#[derive(Clone)]
pub struct FusedAdamW {
    fallback: AdamW,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

/// A module optimizer running [`FusedAdamW`] on every parameter.
pub fn adamw(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> ModuleOptimizer {
    let fallback = AdamWConfig::new()
        .with_beta_1(beta_1)
        .with_beta_2(beta_2)
        .with_epsilon(epsilon)
        .with_weight_decay(weight_decay)
        .build();
    ModuleOptimizer::from(FusedAdamW {
        fallback,
        beta_1,
        beta_2,
        epsilon,
        weight_decay,
    })
}

/// The scalars of one update, as the f32 values burn's ops use.
#[derive(Debug, Clone, Copy)]
pub struct AdamWScalars {
    pub(crate) beta_1: f32,
    pub(crate) beta_2: f32,
    pub(crate) epsilon: f32,
    /// `1 − β₁ᵗ` and `1 − β₂ᵗ`.
    pub(crate) correction_1: f32,
    pub(crate) correction_2: f32,
    /// `1 − lr·weight_decay` (exactly 1 without decay, as burn skips the product then).
    pub(crate) keep: f32,
    pub(crate) lr: f32,
}

#[backend_extension(Flex)]
pub trait AdamWBackend: burn::backend::Backend {
    /// The parameter and both moments after one step (the moments start at zero).
    fn adamw_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        scalars: AdamWScalars,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

impl AdamWBackend for Flex {
    fn adamw_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        scalars: AdamWScalars,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let AdamWScalars {
            beta_1,
            beta_2,
            epsilon,
            correction_1,
            correction_2,
            keep,
            lr,
        } = scalars;
        let (mut p, mut m, mut v) = (
            owned_data(param),
            owned_data(moment_1),
            owned_data(moment_2),
        );
        let g = contiguous(grad); // only read: no copy even when shared
        let (factor_1, factor_2) = (1.0 - beta_1, 1.0 - beta_2);
        let g = f32s(&g);
        f32_values(&mut p)
            .par_chunks_mut(CHUNK)
            .zip(f32_values(&mut m).par_chunks_mut(CHUNK))
            .zip(f32_values(&mut v).par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| {
                for (((p, m), v), g) in p.iter_mut().zip(m).zip(v).zip(g) {
                    // The order of burn's ops: moments, bias correction, step, decay.
                    *m = *m * beta_1 + *g * factor_1;
                    *v = *v * beta_2 + (*g * *g) * factor_2;
                    let delta = (*m / correction_1) / ((*v / correction_2).sqrt() + epsilon);
                    *p = *p * keep - delta * lr;
                }
            });
        (
            FlexTensor::from_data(p),
            FlexTensor::from_data(m),
            FlexTensor::from_data(v),
        )
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let plain = state
            .as_ref()
            .is_none_or(|s| s.momentum.max_moment_2.is_none());
        let time = state.as_ref().map_or(0, |s| s.momentum.time) + 1;
        let decay = lr * self.weight_decay as f64;
        let t = time as i32;
        let scalars = AdamWScalars {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            correction_1: 1.0 - self.beta_1.powi(t),
            correction_2: 1.0 - self.beta_2.powi(t),
            keep: if decay == 0.0 {
                1.0
            } else {
                (1.0 - decay) as f32
            },
            lr: lr as f32,
        };
        let moments = state
            .as_ref()
            .map(|s| (&s.momentum.moment_1, &s.momentum.moment_2));
        let grad = match adamw_gpu::intercept(&tensor, grad, plain, moments, scalars, time) {
            Intercept::No(grad) => *grad,
            Intercept::Collected => return (tensor, None),
            Intercept::Skip => return (tensor, state),
            Intercept::Applied(new, time) => {
                let [param, moment_1, moment_2] = *new;
                let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
                return (param, Some(AdamWState::new(momentum)));
            }
        };
        let fused = plain && crate::model::on_flex_f32(&tensor) && grad.dtype() == tensor.dtype();
        if !fused {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let (moment_1, moment_2) = match state {
            Some(AdamWState { momentum }) => (momentum.moment_1, momentum.moment_2),
            None => (tensor.zeros_like(), tensor.zeros_like()),
        };
        let (param, moment_1, moment_2) = <burn::backend::Dispatch as AdamWBackend>::adamw_update(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            scalars,
        );
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_dispatch(moment_1),
            Tensor::from_dispatch(moment_2),
        );
        (
            Tensor::from_dispatch(param),
            Some(AdamWState::new(momentum)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::max_difference;
    use burn::tensor::Distribution;

    #[test]
    fn fused_steps_match_burns_adamw() {
        let device = Device::flex();
        let fused = FusedAdamW {
            fallback: AdamWConfig::new().build(),
            beta_1: 0.9,
            beta_2: 0.98,
            epsilon: 1e-6,
            weight_decay: 0.1,
        };
        let reference = AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.98)
            .with_epsilon(1e-6)
            .with_weight_decay(0.1)
            .build();
        let start = Tensor::<2>::random([37, 300], Distribution::Normal(0.0, 1.0), &device);
        let (mut ours, mut theirs) = (start.clone(), start);
        let (mut our_state, mut their_state) = (None, None);
        for step in 0..4 {
            let spread = [1.0, 1e-3, 10.0, 0.5][step];
            let grad = Tensor::<2>::random([37, 300], Distribution::Normal(0.0, spread), &device);
            let lr = 1e-3 * (step + 1) as f64;
            (ours, our_state) = fused.step(lr, ours, grad.clone(), our_state);
            (theirs, their_state) = reference.step(lr, theirs, grad, their_state);
            let diff = (ours.clone() - theirs.clone())
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(diff <= 1e-6, "step {step}: parameters differ by {diff}");
            let (a, b) = (our_state.as_ref().unwrap(), their_state.as_ref().unwrap());
            assert_eq!(a.momentum.time, b.momentum.time);
            for (name, x, y) in [
                ("moment_1", &a.momentum.moment_1, &b.momentum.moment_1),
                ("moment_2", &a.momentum.moment_2, &b.momentum.moment_2),
            ] {
                let (diff, scale) = max_difference(x.clone(), y.clone());
                assert!(
                    diff <= 1e-6 * scale,
                    "step {step}: {name} differs by {diff} at {scale}"
                );
            }
        }
    }
}
