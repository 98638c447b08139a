//! LayerNorm as a burn backend extension on cubecl: one WGSL kernel forward, two backward (a row
//! pass for x, a column pass for γ and β). Under autodiff burn runs it as eight tensor ops, each
//! with its own backward: about twenty kernels each way.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, backend_extension};
use burn::tensor::DType;
use burn_cubecl::cubecl::prelude::CubeDim;

use crate::shader;
use crate::wgsl::{Pass, empty, f32_contiguous, grid};

/// LayerNorm over the last dimension of `[rows, d]`, ε passed as its f32 bits.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait LayerNormBackend: Backend {
    /// `(x − mean) / √(var + ε) · γ + β` per row.
    #[fusion(meta = forward_meta)]
    fn gpu_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon_bits: u32,
    ) -> FloatTensor<Self>;

    /// The gradients with respect to x, γ and β.
    #[fusion(meta = backward_meta)]
    fn gpu_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon_bits: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn forward_meta(x: &TensorSpec, _gamma: &TensorSpec, _beta: &TensorSpec, _eps: &u32) -> TensorSpec {
    TensorSpec::new(x.shape.clone(), DType::F32)
}

fn backward_meta(
    x: &TensorSpec,
    gamma: &TensorSpec,
    _grad: &TensorSpec,
    _eps: &u32,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let spec = |t: &TensorSpec| TensorSpec::new(t.shape.clone(), DType::F32);
    (spec(x), spec(gamma), spec(gamma))
}

#[derive(Debug)]
struct LayerNormGrad {
    epsilon_bits: u32,
}

impl<B: Backend + LayerNormBackend> Backward<B, 3> for LayerNormGrad {
    /// The input and γ (the row statistics are recomputed: two reductions of a row in a kernel
    /// that reads the row anyway).
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma) = ops.state;
        let (dx, dgamma, dbeta) = B::gpu_layer_norm_backward(x, gamma, grad, self.epsilon_bits);
        for (node, g) in ops.parents.into_iter().zip([dx, dgamma, dbeta]) {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + LayerNormBackend, C: CheckpointStrategy> LayerNormBackend for Autodiff<B, C> {
    fn gpu_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon_bits: u32,
    ) -> FloatTensor<Self> {
        let parents = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let y = B::gpu_layer_norm(x.clone(), gamma.clone(), beta, epsilon_bits);
        match (LayerNormGrad { epsilon_bits })
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, gamma), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn gpu_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon_bits: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Second derivatives are not needed: the results are not tracked.
        let (dx, dgamma, dbeta) = B::gpu_layer_norm_backward(
            x.into_primitive(),
            gamma.into_primitive(),
            grad.into_primitive(),
            epsilon_bits,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }
}

const ROW: CubeDim = CubeDim::new_1d(64);

/// Rows and width of `x` `[..., d]`.
fn rows_and_width(x: &CubeTensor) -> (usize, usize) {
    let shape = x.meta.shape();
    let d = shape[shape.num_dims() - 1];
    (shape.num_elements() / d.max(1), d)
}

/// One workgroup per row, in a grid that stays under every adapter's 65 535 groups per axis.
fn row_groups(rows: usize) -> (u32, u32, u32) {
    grid(rows, 32768)
}

impl LayerNormBackend for CubeBackend {
    fn gpu_layer_norm(
        x: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        epsilon_bits: u32,
    ) -> CubeTensor {
        let (x, gamma, beta) = (
            f32_contiguous(x),
            f32_contiguous(gamma),
            f32_contiguous(beta),
        );
        let (rows, d) = rows_and_width(&x);
        let y = empty(&x, x.meta.shape().clone());
        let mut pass = Pass::default();
        pass.launch(
            shader!("layer_norm_forward.wgsl"),
            ROW,
            row_groups(rows),
            &[&x.handle, &gamma.handle, &beta.handle, &y.handle],
            &[rows as u32, d as u32, epsilon_bits],
        );
        pass.run(&x);
        y
    }

    fn gpu_layer_norm_backward(
        x: CubeTensor,
        gamma: CubeTensor,
        grad: CubeTensor,
        epsilon_bits: u32,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let (x, gamma, grad) = (
            f32_contiguous(x),
            f32_contiguous(gamma),
            f32_contiguous(grad),
        );
        let (rows, d) = rows_and_width(&x);
        let dx = empty(&x, x.meta.shape().clone());
        let stats = empty(&x, [2 * rows]);
        let (dgamma, dbeta) = (empty(&x, [d]), empty(&x, [d]));
        let mut pass = Pass::default();
        pass.launch(
            shader!("layer_norm_backward_rows.wgsl"),
            ROW,
            row_groups(rows),
            &[
                &x.handle,
                &gamma.handle,
                &grad.handle,
                &stats.handle,
                &dx.handle,
            ],
            &[rows as u32, d as u32, epsilon_bits],
        );
        pass.launch(
            shader!("layer_norm_backward_cols.wgsl"),
            ROW,
            (d.div_ceil(64) as u32, 1, 1),
            &[
                &x.handle,
                &grad.handle,
                &stats.handle,
                &dgamma.handle,
                &dbeta.handle,
            ],
            &[rows as u32, d as u32],
        );
        pass.run(&x);
        (dx, dgamma, dbeta)
    }
}
