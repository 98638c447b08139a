//! QuickGELU, `x·σ(1.702·x)`, as one burn backend extension with a hand-written backward under
//! autodiff, on Flex and on wgpu.
//!
//! burn has no QuickGELU: written with its ops, the activation uses `x` twice, so autodiff
//! differentiates the product and the sigmoid apart and adds the two gradients. Here the backward
//! is the derivative in one expression, `grad·σ(αx)·(1 + αx·(1 − σ(αx)))`.
//! - Flex runs element-wise ops one scalar libm call at a time (`expf` per element, on one
//!   thread): a profile of the evaluation pass put a quarter of its time in QuickGELU's three ops,
//!   and training paid for them again in their backward ops. On Flex each direction is one pass
//!   over the tensor, split over rayon's threads, with a polynomial `exp` of about 1 ulp that the
//!   compiler vectorises.
//! - On wgpu the forward is the trait's default body: the three burn ops the model wrote before,
//!   which burn's fusion compiles into one kernel, so evaluation launches what it did. The f32
//!   backward is one WGSL kernel (`shaders/quick_gelu_backward.wgsl`) where autodiff launched
//!   three: two element-wise chains and the sum of their gradients. A backward written as burn ops
//!   fused into one chain too, but on llvmpipe the final product with the incoming gradient ran
//!   as a kernel of its own (autotune left the matrix product it follows unfused). Other float
//!   types (f16 under mixed precision) take the default body, burn's ops, fused.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::backend::{Autodiff, AutodiffBackend, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use burn_cubecl::cubecl::prelude::CubeDim;

use super::cpu::{exp_f32, map_f32, zip_map_f32};
use crate::shader;
use crate::wgsl::{Pass, empty, f32_contiguous, grid};

/// QuickGELU, `y = x·σ(1.702·x)`, with its gradient. The default bodies are burn's element-wise
/// ops (wgpu runs them fused); Flex has its own vectorised passes, and wgpu a WGSL kernel for the
/// f32 backward.
#[backend_extension(Flex, Cube, Fusion, Autodiff)]
pub trait QuickGeluBackend: burn::backend::Backend {
    #[fusion(default)]
    fn quick_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let sigmoid = Self::sigmoid(Self::float_mul_scalar(x.clone(), ALPHA.into()));
        Self::float_mul(x, sigmoid)
    }

    /// `grad · dy/dx` at `x`: `grad·σ(αx)·(1 + αx·(1 − σ(αx)))`.
    #[fusion(default)]
    fn quick_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let ax = Self::float_mul_scalar(x, ALPHA.into());
        let s = Self::sigmoid(ax.clone());
        let one_minus_s = Self::float_add_scalar(Self::float_neg(s.clone()), 1.0.into());
        let slope = Self::float_add_scalar(Self::float_mul(ax, one_minus_s), 1.0.into());
        Self::float_mul(grad, Self::float_mul(s, slope))
    }

    /// [`Self::quick_gelu_backward`] for f32 tensors, in one kernel.
    #[fusion(meta = same_as_x)]
    fn quick_gelu_backward_f32(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn same_as_x(x: &TensorSpec, _grad: &TensorSpec) -> TensorSpec {
    TensorSpec::new(x.shape.clone(), DType::F32)
}

/// QuickGELU where the extension applies: f32 on Flex ([`super::cpu::applies`]) or any float
/// type on wgpu ([`super::gpu::on_cube`]).
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<burn::backend::Dispatch as QuickGeluBackend>::quick_gelu(
        x.into_dispatch(),
    ))
}

/// The forward and the backward for other float types are burn's element-wise ops (the trait's
/// default bodies).
impl QuickGeluBackend for CubeBackend {
    fn quick_gelu_backward_f32(x: CubeTensor, grad: CubeTensor) -> CubeTensor {
        /// Elements per workgroup: 256 invocations, 32 each (the shader's SPAN).
        const PER_GROUP: usize = 256 * 32;
        let (x, grad) = (f32_contiguous(x), f32_contiguous(grad));
        let n = x.meta.shape().num_elements();
        let dx = empty(&x, x.meta.shape().clone());
        let mut pass = Pass::default();
        pass.launch(
            shader!("quick_gelu_backward.wgsl"),
            CubeDim::new_1d(256),
            grid(n.div_ceil(PER_GROUP), 32768),
            &[&x.handle, &grad.handle, &dx.handle],
            &[n as u32],
        );
        pass.run(&x);
        dx
    }
}

impl QuickGeluBackend for Flex {
    fn quick_gelu(x: FlexTensor) -> FlexTensor {
        map_f32(x, quick_gelu_f32)
    }

    fn quick_gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        zip_map_f32(grad, x, |g, x| g * quick_gelu_derivative(x))
    }

    fn quick_gelu_backward_f32(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        Self::quick_gelu_backward(x, grad)
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
            let dx = if ops.state.dtype() == DType::F32 {
                B::quick_gelu_backward_f32(ops.state, grad)
            } else {
                B::quick_gelu_backward(ops.state, grad)
            };
            grads.register::<B>(node.id, dx);
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

    fn quick_gelu_backward_f32(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::quick_gelu_backward_f32(
            x.into_primitive(),
            grad.into_primitive(),
        ))
    }
}

/// QuickGELU's slope inside the sigmoid.
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
    use super::super::cpu::max_difference;
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
        assert!(super::super::cpu::applies(&x));
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
        assert!(super::super::cpu::applies(&Tensor::<2>::zeros(
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
