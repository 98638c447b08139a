//! Matrix products on Flex, straight into gemm.
//!
//! burn-flex 0.22.1 allocates each product's output with `FlexTensor::empty`, which zero-fills a
//! byte vector and then copies it into a fresh 64-byte-aligned allocation
//! (`Bytes::from_bytes_vec`). A profile of the tiny FLYP step (`perf record --call-graph dwarf`)
//! put 17 % of all samples there, all of it on the one thread that drives autodiff while both
//! rayon threads wait. Here the output is a plain `Vec<f32>` that gemm writes once, and operands
//! are read through their strides, so transposed and head-split views need no copy either.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{Shape, TensorData};
use rayon::prelude::*;

/// `a · b` over the last two dimensions, batched over the leading ones (same batch shape on both
/// sides, no broadcasting), any strides.
#[backend_extension(Flex, Autodiff)]
pub trait MatmulBackend: burn::backend::Backend {
    fn strided_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `a · b` for f32 tensors on Flex ([`super::applies`]).
///
/// # Shapes
/// - a: `[..batch, m, k]`, b: `[..batch, k, n]` → `[..batch, m, n]`
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<burn::backend::Dispatch as MatmulBackend>::strided_matmul(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// `linear.forward(x)` through [`matmul`]: the rows of `x` flattened into one product.
///
/// # Shapes
/// - x: `[..., in]` → `[..., out]`
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let mut dims = x.dims();
    let features = dims[D - 1];
    let rows = x.shape().num_elements() / features.max(1);
    let y = matmul(x.reshape([rows, features]), linear.weight.val()); // [rows, out]
    let y = match &linear.bias {
        Some(bias) => y + bias.val().unsqueeze::<2>(),
        None => y,
    };
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// Products per rayon task when many small matrices are batched (attention's heads).
const SERIAL_OPS: usize = 1 << 21;

impl MatmulBackend for Flex {
    fn strided_matmul(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let (a_shape, b_shape) = (a.layout().shape().clone(), b.layout().shape().clone());
        let rank = a_shape.num_dims();
        assert!(
            rank >= 2 && rank == b_shape.num_dims() && a_shape[..rank - 2] == b_shape[..rank - 2],
            "strided_matmul: shapes {a_shape:?} and {b_shape:?} are not [..b, m, k] · [..b, k, n]"
        );
        let (m, k, n) = (a_shape[rank - 2], a_shape[rank - 1], b_shape[rank - 1]);
        assert_eq!(k, b_shape[rank - 2], "strided_matmul: inner sizes differ");
        let batch_dims = &a_shape[..rank - 2];
        let batches: usize = batch_dims.iter().product();
        let mut out = vec![0.0f32; batches * m * n];
        let mut out_dims = batch_dims.to_vec();
        out_dims.extend([m, n]);
        if batches * m * n > 0 && k > 0 {
            let a_view = StridedF32::of(&a);
            let b_view = StridedF32::of(&b);
            let per_matrix = m * n * k;
            let one = |b_index: usize, dst: &mut [f32], parallelism| {
                let (a_ptr, b_ptr) = (a_view.matrix(b_index), b_view.matrix(b_index));
                // SAFETY: every element gemm reads lies inside the operands' storage (their
                // layouts are valid views of it), and `dst` is a distinct m × n row-major block.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        dst.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a_ptr,
                        a_view.col_stride,
                        a_view.row_stride,
                        b_ptr,
                        b_view.col_stride,
                        b_view.row_stride,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
            };
            if batches == 1 || per_matrix >= SERIAL_OPS {
                let parallelism = gemm::Parallelism::Rayon(0);
                for (i, dst) in out.chunks_mut(m * n).enumerate() {
                    one(i, dst, parallelism);
                }
            } else {
                out.par_chunks_mut(m * n)
                    .enumerate()
                    .for_each(|(i, dst)| one(i, dst, gemm::Parallelism::None));
            }
        }
        FlexTensor::from_data(TensorData::new(out, Shape::from(out_dims)))
    }
}

/// An f32 operand's storage with its strides: where each batch's matrix starts.
struct StridedF32<'a> {
    data: &'a [f32],
    start: isize,
    batch_dims: Vec<usize>,
    batch_strides: Vec<isize>,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: only read through shared references, from several rayon tasks at once.
unsafe impl Sync for StridedF32<'_> {}

impl<'a> StridedF32<'a> {
    fn of(t: &'a FlexTensor) -> Self {
        let layout = t.layout();
        let strides = layout.strides();
        let rank = strides.len();
        Self {
            data: t.storage::<f32>(),
            start: layout.start_offset() as isize,
            batch_dims: layout.shape()[..rank - 2].to_vec(),
            batch_strides: strides[..rank - 2].to_vec(),
            row_stride: strides[rank - 2],
            col_stride: strides[rank - 1],
        }
    }

    /// The first element of batch `index` (row-major over the batch dimensions).
    fn matrix(&self, mut index: usize) -> *const f32 {
        let mut offset = self.start;
        for (dim, stride) in self.batch_dims.iter().zip(&self.batch_strides).rev() {
            offset += (index % dim) as isize * stride;
            index /= dim;
        }
        // SAFETY: a valid layout's offsets stay inside its storage.
        unsafe { self.data.as_ptr().offset(offset) }
    }
}

#[derive(Debug)]
struct MatmulBackward;

impl<B: burn::backend::Backend + MatmulBackend> Backward<B, 2> for MatmulBackward {
    /// Both operands.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (a, b) = ops.state;
        let transpose = |t: FloatTensor<B>| {
            let rank = t.shape().num_dims();
            B::float_swap_dims(t, rank - 2, rank - 1)
        };
        let [a_node, b_node] = ops.parents;
        if let Some(node) = a_node {
            // dA = dC · Bᵀ
            grads.register::<B>(node.id, B::strided_matmul(grad.clone(), transpose(b)));
        }
        if let Some(node) = b_node {
            // dB = Aᵀ · dC
            grads.register::<B>(node.id, B::strided_matmul(transpose(a), grad));
        }
    }
}

impl<B: burn::backend::Backend + MatmulBackend, C: CheckpointStrategy> MatmulBackend
    for Autodiff<B, C>
{
    fn strided_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let parents = [a.node(), b.node()];
        let (a, b) = (a.into_primitive(), b.into_primitive());
        match MatmulBackward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((a.clone(), b.clone()), B::strided_matmul(a, b)),
            OpsKind::UnTracked(prep) => prep.finish(B::strided_matmul(a, b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    /// Largest absolute difference, and the reference's largest magnitude.
    fn difference<const D: usize>(ours: Tensor<D>, reference: Tensor<D>) -> (f32, f32) {
        let scale = reference.clone().abs().max().into_scalar::<f32>();
        ((ours - reference).abs().max().into_scalar::<f32>(), scale)
    }

    #[test]
    fn strided_products_and_their_gradients_match_burn_matmul() {
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        // Head-split views ([b, n, h, d] with heads swapped forward), a transposed operand, and
        // sizes that are not multiples of gemm's register blocks.
        let a = random([3, 37, 4, 21], &device);
        let b = random([3, 37, 4, 21], &device);
        let upstream = random([3, 4, 37, 37], &device);
        let run = |ours: bool| {
            let a = Tensor::<4>::from_data(a.to_data(), &autodiff).require_grad();
            let b = Tensor::<4>::from_data(b.to_data(), &autodiff).require_grad();
            let (a_view, b_view) = (a.clone().swap_dims(1, 2), b.clone().swap_dims(1, 2));
            let b_transposed = b_view.swap_dims(2, 3); // [3, 4, 21, 37]
            let c = if ours {
                matmul(a_view, b_transposed)
            } else {
                a_view.matmul(b_transposed)
            };
            let upstream = Tensor::<4>::from_data(upstream.to_data(), &autodiff);
            let grads = (c.clone() * upstream).sum().backward();
            let plain = |t: Tensor<4>| Tensor::<4>::from_data(t.to_data(), &device);
            let grad = |t: &Tensor<4>| plain(Tensor::from_inner(t.grad(&grads).expect("tracked")));
            (plain(c), grad(&a), grad(&b))
        };
        let (c, da, db) = run(true);
        let (c_ref, da_ref, db_ref) = run(false);
        for (name, ours, reference) in [
            ("product", c, c_ref),
            ("dA", da, da_ref),
            ("dB", db, db_ref),
        ] {
            let (diff, scale) = difference(ours, reference);
            assert!(
                diff <= 1e-5 * scale,
                "{name}: max difference {diff} at scale {scale}"
            );
        }
    }

    #[test]
    fn linear_matches_burn_linear_with_and_without_bias() {
        let device = Device::flex();
        for bias in [true, false] {
            let layer = burn::nn::LinearConfig::new(45, 19)
                .with_bias(bias)
                .init(&device);
            let x = random([2, 33, 45], &device);
            let (diff, scale) = difference(linear(&layer, x.clone()), layer.forward(x));
            assert!(
                diff <= 1e-5 * scale,
                "bias {bias}: max difference {diff} at scale {scale}"
            );
        }
    }
}
