//! Matrix products on Flex, straight into gemm.
//!
//! burn-flex 0.22.1 allocates each product's output with `FlexTensor::empty`, which zero-fills a
//! byte vector and then copies it into a fresh 64-byte-aligned allocation
//! (`Bytes::from_bytes_vec`). A profile of the tiny FLYP step (`perf record --call-graph dwarf`)
//! put 17 % of all samples there, all of it on the one thread that drives autodiff while both
//! rayon threads wait. Here the output is a plain `Vec<f32>` that gemm writes once, and operands
//! are read through their strides, so transposed and head-split views need no copy either.

use std::mem::MaybeUninit;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{Shape, TensorData};
use rayon::prelude::*;

use super::{add_assign, contiguous, f32s};

/// `a · b` over the last two dimensions, batched over the leading ones (same batch shape on both
/// sides, no broadcasting), any strides.
#[backend_extension(Flex, Autodiff)]
pub trait MatmulBackend: burn::backend::Backend {
    fn strided_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x · w + bias` for `[m, k] · [k, n] + [n]`: the bias is the product's starting value.
    fn strided_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The sum over the rows of `[m, n]`: `[n]` (a bias's gradient).
    fn sum_rows(x: FloatTensor<Self>) -> FloatTensor<Self>;
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

/// `linear.forward(x)` as one product of the rows of `x` flattened, the bias added by gemm.
///
/// # Shapes
/// - x: `[..., in]` → `[..., out]`
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let mut dims = x.dims();
    let features = dims[D - 1];
    let rows = x.shape().num_elements() / features.max(1);
    let x = x.reshape([rows, features]);
    let y: Tensor<2> = match &linear.bias {
        Some(bias) => {
            Tensor::from_dispatch(<burn::backend::Dispatch as MatmulBackend>::strided_linear(
                x.into_dispatch(),
                linear.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        None => matmul(x, linear.weight.val()),
    }; // [rows, out]
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// Products per rayon task when many small matrices are batched (attention's heads).
const SERIAL_OPS: usize = 1 << 21;

/// Rows per rayon task for row-wise passes.
const ROWS_PER_TASK: usize = 64;

/// `[..batch, m, k] · [..batch, k, n]` into `out` (row-major blocks of m × n), on top of what `out`
/// holds when `accumulate`, over it otherwise.
///
/// # Safety
/// `out` holds `batches · m · n` elements, initialised when `accumulate`.
unsafe fn gemm_into(
    out: &mut [MaybeUninit<f32>],
    a: &StridedF32,
    b: &StridedF32,
    [m, k, n]: [usize; 3],
    accumulate: bool,
) {
    let one = |index: usize, dst: &mut [MaybeUninit<f32>], parallelism| {
        // SAFETY: every element gemm reads lies inside the operands' storage (their layouts are
        // valid views of it); `dst` is a distinct m × n row-major block, read only when it was
        // initialised (`accumulate`).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr().cast::<f32>(),
                1,
                n as isize,
                accumulate,
                a.matrix(index),
                a.col_stride,
                a.row_stride,
                b.matrix(index),
                b.col_stride,
                b.row_stride,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let (block, batches) = (m * n, out.len() / (m * n).max(1));
    if block == 0 {
        return;
    }
    if batches == 1 || m * n * k >= SERIAL_OPS {
        for (i, dst) in out.chunks_mut(block).enumerate() {
            one(i, dst, gemm::Parallelism::Rayon(0));
        }
    } else {
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, dst)| one(i, dst, gemm::Parallelism::None));
    }
}

/// Sizes `[m, k, n]` and the batch dimensions of `a · b`, or a panic naming the shapes.
fn product_sizes(a: &FlexTensor, b: &FlexTensor) -> ([usize; 3], Vec<usize>) {
    let (a_shape, b_shape) = (a.layout().shape(), b.layout().shape());
    let rank = a_shape.num_dims();
    assert!(
        rank >= 2
            && rank == b_shape.num_dims()
            && a_shape[..rank - 2] == b_shape[..rank - 2]
            && a_shape[rank - 1] == b_shape[rank - 2],
        "strided_matmul: shapes {a_shape:?} and {b_shape:?} are not [..b, m, k] · [..b, k, n]"
    );
    let sizes = [a_shape[rank - 2], a_shape[rank - 1], b_shape[rank - 1]];
    (sizes, a_shape[..rank - 2].to_vec())
}

impl MatmulBackend for Flex {
    fn strided_matmul(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let ([m, k, n], mut dims) = product_sizes(&a, &b);
        let len = dims.iter().product::<usize>() * m * n;
        dims.extend([m, n]);
        if k == 0 {
            return FlexTensor::from_data(TensorData::new(vec![0.0f32; len], Shape::from(dims)));
        }
        // Left uninitialised: gemm (not accumulating) writes every element of each block.
        let mut out: Vec<f32> = Vec::with_capacity(len);
        // SAFETY: `out` has room for len = batches · m · n elements; nothing is read from it.
        unsafe {
            let blocks = &mut out.spare_capacity_mut()[..len];
            gemm_into(
                blocks,
                &StridedF32::of(&a),
                &StridedF32::of(&b),
                [m, k, n],
                false,
            );
            out.set_len(len);
        }
        FlexTensor::from_data(TensorData::new(out, Shape::from(dims)))
    }

    fn strided_linear(x: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let ([m, k, n], dims) = product_sizes(&x, &w);
        assert!(dims.is_empty(), "strided_linear takes [m, k] · [k, n]");
        let bias = contiguous(bias);
        let bias = f32s(&bias);
        let mut out: Vec<f32> = Vec::with_capacity(m * n);
        if n > 0 {
            out.spare_capacity_mut()[..m * n]
                .par_chunks_mut(n * ROWS_PER_TASK)
                .for_each(|rows| {
                    for row in rows.chunks_mut(n) {
                        row.iter_mut().zip(bias).for_each(|(o, b)| {
                            o.write(*b);
                        });
                    }
                });
            // SAFETY: every row was set to the bias above, so gemm may accumulate onto it.
            unsafe {
                let blocks = &mut out.spare_capacity_mut()[..m * n];
                gemm_into(
                    blocks,
                    &StridedF32::of(&x),
                    &StridedF32::of(&w),
                    [m, k, n],
                    true,
                );
            }
        }
        // SAFETY: all m · n elements hold the bias plus the product.
        unsafe { out.set_len(m * n) };
        FlexTensor::from_data(TensorData::new(out, [m, n]))
    }

    fn sum_rows(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        let n = x.layout().shape()[1];
        let values = f32s(&x);
        let zeros = || vec![0.0f32; n];
        let sums = if n == 0 {
            zeros()
        } else {
            values
                .par_chunks(n * ROWS_PER_TASK)
                .fold(zeros, |mut sums, rows| {
                    rows.chunks(n).for_each(|row| add_assign(&mut sums, row));
                    sums
                })
                .reduce(zeros, |mut a, b| {
                    add_assign(&mut a, &b);
                    a
                })
        };
        FlexTensor::from_data(TensorData::new(sums, [n]))
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

/// `t` with its last two dimensions swapped (a view).
fn transposed<B: burn::backend::Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let rank = t.shape().num_dims();
    B::float_swap_dims(t, rank - 2, rank - 1)
}

impl<B: burn::backend::Backend + MatmulBackend> Backward<B, 2> for MatmulBackward {
    /// Both operands.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (a, b) = ops.state;
        let [a_node, b_node] = ops.parents;
        if let Some(node) = a_node {
            // dA = dC · Bᵀ
            grads.register::<B>(node.id, B::strided_matmul(grad.clone(), transposed::<B>(b)));
        }
        if let Some(node) = b_node {
            // dB = Aᵀ · dC
            grads.register::<B>(node.id, B::strided_matmul(transposed::<B>(a), grad));
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

impl<B: burn::backend::Backend + MatmulBackend> Backward<B, 3> for LinearBackward {
    /// The input and the weight.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, w) = ops.state;
        let [x_node, w_node, bias_node] = ops.parents;
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, B::sum_rows(grad.clone()));
        }
        if let Some(node) = x_node {
            grads.register::<B>(node.id, B::strided_matmul(grad.clone(), transposed::<B>(w)));
        }
        if let Some(node) = w_node {
            grads.register::<B>(node.id, B::strided_matmul(transposed::<B>(x), grad));
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

    fn strided_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let parents = [x.node(), w.node(), bias.node()];
        let (x, w, bias) = (
            x.into_primitive(),
            w.into_primitive(),
            bias.into_primitive(),
        );
        match LinearBackward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((x.clone(), w.clone()), B::strided_linear(x, w, bias))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::strided_linear(x, w, bias)),
        }
    }

    fn sum_rows(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // Only used for gradients, which are not tracked.
        Self::from_inner(B::sum_rows(x.into_primitive()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::max_difference;
    use super::*;
    use burn::tensor::Distribution;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
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
            let (diff, scale) = max_difference(ours, reference);
            assert!(
                diff <= 1e-5 * scale,
                "{name}: max difference {diff} at scale {scale}"
            );
        }
    }

    #[test]
    fn linear_and_its_gradients_match_burn_linear_with_and_without_bias() {
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        for bias in [true, false] {
            let layer = burn::nn::LinearConfig::new(45, 19)
                .with_bias(bias)
                .init(&autodiff);
            let x = random([2, 133, 45], &device);
            let upstream = random([2, 133, 19], &device);
            let run = |ours: bool| {
                let x = Tensor::<3>::from_data(x.to_data(), &autodiff).require_grad();
                let y = if ours {
                    linear(&layer, x.clone())
                } else {
                    layer.forward(x.clone())
                };
                let upstream = Tensor::<3>::from_data(upstream.to_data(), &autodiff);
                let grads = (y.clone() * upstream).sum().backward();
                let flat =
                    |t: Tensor<3>| Tensor::<1>::from_data(t.reshape([-1]).to_data(), &device);
                let dx = Tensor::<3>::from_inner(x.grad(&grads).expect("x is tracked"));
                let dw = Tensor::<2>::from_inner(layer.weight.grad(&grads).expect("tracked"));
                let db = layer.bias.as_ref().map(|b| {
                    let db = Tensor::<1>::from_inner(b.grad(&grads).expect("tracked"));
                    Tensor::<1>::from_data(db.to_data(), &device)
                });
                let dw = Tensor::<1>::from_data(dw.reshape([-1]).to_data(), &device);
                (
                    flat(y),
                    flat(Tensor::from_data(dx.to_data(), &device)),
                    dw,
                    db,
                )
            };
            let (y, dx, dw, db) = run(true);
            let (y_ref, dx_ref, dw_ref, db_ref) = run(false);
            let mut pairs = vec![("y", y, y_ref), ("dx", dx, dx_ref), ("dW", dw, dw_ref)];
            if let (Some(db), Some(db_ref)) = (db, db_ref) {
                pairs.push(("db", db, db_ref));
            }
            for (name, ours, reference) in pairs {
                let (diff, scale) = max_difference(ours, reference);
                assert!(
                    diff <= 1e-5 * scale,
                    "bias {bias}, {name}: max difference {diff} at scale {scale}"
                );
            }
        }
    }
}
