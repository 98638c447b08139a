//! QuickGELU on the Flex CPU backend in one vectorised pass, forward and backward.
//!
//! Flex runs element-wise ops one scalar libm call at a time (`expf` per element, on one thread):
//! a profile of the evaluation pass put a quarter of its time in QuickGELU's three ops
//! (`x·1.702`, `sigmoid`, the product), and training pays for them again in their backward ops.
//! Here the activation is a burn backend extension for Flex, with a hand-written backward under
//! autodiff: each direction is one pass over the tensor, split over rayon's threads, with a
//! polynomial `exp` of about 1 ulp that the compiler vectorises. wgpu devices keep burn's ops
//! (there they fuse).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, backend_extension};
use burn::prelude::*;

use super::{exp_f32, map_f32, zip_map_f32};

/// QuickGELU, `y = x·σ(1.702·x)`, with its gradient.
#[backend_extension(Flex, Autodiff)]
pub trait QuickGeluBackend: burn::backend::Backend {
    fn quick_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `grad · dy/dx` at `x`.
    fn quick_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// QuickGELU for a tensor [`super::applies`] accepts.
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<burn::backend::Dispatch as QuickGeluBackend>::quick_gelu(
        x.into_dispatch(),
    ))
}

impl QuickGeluBackend for Flex {
    fn quick_gelu(x: FlexTensor) -> FlexTensor {
        map_f32(x, quick_gelu_f32)
    }

    fn quick_gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        zip_map_f32(grad, x, |g, x| g * quick_gelu_derivative(x))
    }
}

#[derive(Debug)]
struct QuickGeluBackward;

impl<B: burn::backend::Backend + QuickGeluBackend> Backward<B, 1> for QuickGeluBackward {
    /// The input.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::quick_gelu_backward(ops.state, grad));
        }
    }
}

impl<B: burn::backend::Backend + QuickGeluBackend, C: CheckpointStrategy> QuickGeluBackend
    for Autodiff<B, C>
{
    fn quick_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let parents = [x.node()];
        let x = x.into_primitive();
        match QuickGeluBackward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(x.clone(), B::quick_gelu(x)),
            OpsKind::UnTracked(prep) => prep.finish(B::quick_gelu(x)),
        }
    }

    fn quick_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        // Second derivatives are not needed: the result is not tracked.
        Self::from_inner(B::quick_gelu_backward(
            x.into_primitive(),
            grad.into_primitive(),
        ))
    }
}

const ALPHA: f32 = 1.702;

#[inline(always)]
fn quick_gelu_f32(x: f32) -> f32 {
    x / (1.0 + exp_f32(-ALPHA * x))
}

/// d/dx [x·σ(αx)] = σ(αx)·(1 + αx·(1 − σ(αx))).
#[inline(always)]
fn quick_gelu_derivative(x: f32) -> f32 {
    let s = 1.0 / (1.0 + exp_f32(-ALPHA * x));
    s * (1.0 + ALPHA * x * (1.0 - s))
}

#[cfg(test)]
mod tests {
    use super::super::max_difference;
    use super::*;

    #[test]
    fn exp_matches_libm_to_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
    }

    fn burn_quick_gelu(x: Tensor<2>) -> Tensor<2> {
        x.clone() * burn::tensor::activation::sigmoid(x * ALPHA)
    }

    #[test]
    fn quick_gelu_and_its_gradient_on_flex_match_burn_ops() {
        let device = Device::flex();
        let x = Tensor::<2>::random(
            [67, 129],
            burn::tensor::Distribution::Normal(0.0, 4.0),
            &device,
        );
        let upstream = Tensor::<2>::random(
            [67, 129],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        assert!(super::super::applies(&x));
        let (diff, scale) = max_difference(quick_gelu(x.clone()), burn_quick_gelu(x.clone()));
        assert!(
            diff <= 1e-6 * scale,
            "forward: max difference {diff} at scale {scale}"
        );

        let autodiff = device.clone().autodiff();
        let gradient = |ours: bool| {
            let x = Tensor::<2>::from_data(x.to_data(), &autodiff).require_grad();
            let y = if ours {
                quick_gelu(x.clone())
            } else {
                burn_quick_gelu(x.clone())
            };
            let upstream = Tensor::<2>::from_data(upstream.to_data(), &autodiff);
            let grads = (y * upstream).sum().backward();
            let grad = x.grad(&grads).expect("x is tracked");
            Tensor::<2>::from_data(grad.to_data(), &device)
        };
        assert!(super::super::applies(&Tensor::<2>::zeros(
            [2, 2],
            &autodiff
        )));
        let (diff, scale) = max_difference(gradient(true), gradient(false));
        assert!(
            diff <= 1e-5 * scale,
            "gradient: max difference {diff} at scale {scale}"
        );
    }
}
