//! Self-attention on Flex: both products through [`super::matmul`] (the heads read as strided
//! views, no copies) and the softmax, with its scale and causal mask, as one pass per row over
//! both cores, with a hand-written backward.
//!
//! burn 0.22.1 has no attention op under autodiff: `attention_fallback` runs it as a product, a
//! scale, a causal mask (built and filled), max, subtract, exp (libm, one element at a time),
//! sum, divide and a product, each an op with its own backward, all on one thread.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use super::{contiguous, exp_f32, f32_values, f32s, matmul, owned_data};

/// `softmax(scale · s)` over the last dimension, with positions after the row's own (column >
/// row of each trailing matrix) left out when `causal`.
#[backend_extension(Flex, Autodiff)]
pub trait SoftmaxBackend: burn::backend::Backend {
    fn scaled_softmax(scores: FloatTensor<Self>, scale: f32, causal: bool) -> FloatTensor<Self>;

    /// The gradient with respect to the scores, from the probabilities and the upstream gradient.
    fn scaled_softmax_backward(
        probabilities: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self>;
}

/// Multi-head attention with 1/√head_dim scaling, as `CLIPAttention` computes it.
///
/// # Shapes
/// - q, k, v: `[batch, heads, seq, head_dim]` (any strides) → `[batch, heads, seq, head_dim]`
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
    let head_dim = q.dims()[3];
    let scores = matmul(q, k.swap_dims(2, 3)); // [b, h, n, n]
    let scale = 1.0 / (head_dim as f32).sqrt();
    let probabilities =
        Tensor::from_dispatch(<burn::backend::Dispatch as SoftmaxBackend>::scaled_softmax(
            scores.into_dispatch(),
            scale,
            causal,
        ));
    matmul(probabilities, v)
}

/// Rows per rayon task.
const ROWS_PER_TASK: usize = 64;

impl SoftmaxBackend for Flex {
    fn scaled_softmax(scores: FlexTensor, scale: f32, causal: bool) -> FlexTensor {
        let mut data = owned_data(scores);
        let dims = data.shape().to_vec();
        let (rows_per_matrix, cols) = (dims[dims.len() - 2].max(1), dims[dims.len() - 1]);
        if cols > 0 {
            f32_values(&mut data)
                .par_chunks_mut(cols * ROWS_PER_TASK)
                .enumerate()
                .for_each(|(task, block)| {
                    for (i, row) in block.chunks_mut(cols).enumerate() {
                        let r = (task * ROWS_PER_TASK + i) % rows_per_matrix;
                        let visible = if causal { (r + 1).min(cols) } else { cols };
                        softmax_row(row, visible, scale);
                    }
                });
        }
        FlexTensor::from_data(data)
    }

    fn scaled_softmax_backward(
        probabilities: FlexTensor,
        grad: FlexTensor,
        scale: f32,
    ) -> FlexTensor {
        let mut data = owned_data(grad);
        let probabilities = contiguous(probabilities); // only read: no copy even when shared
        let p = f32s(&probabilities);
        let cols = data.shape().last().copied().unwrap_or(0);
        if cols > 0 {
            f32_values(&mut data)
                .par_chunks_mut(cols * ROWS_PER_TASK)
                .zip(p.par_chunks(cols * ROWS_PER_TASK))
                .for_each(|(g_block, p_block)| {
                    for (g, p) in g_block.chunks_mut(cols).zip(p_block.chunks(cols)) {
                        // d(scale·s) = y ⊙ (g − Σ g·y), then the scale.
                        let dot = dot(g, p);
                        g.iter_mut()
                            .zip(p)
                            .for_each(|(g, p)| *g = scale * p * (*g - dot));
                    }
                });
        }
        FlexTensor::from_data(data)
    }
}

/// One row in place: `softmax(scale · row[..visible])`, zeros after.
#[inline]
fn softmax_row(row: &mut [f32], visible: usize, scale: f32) {
    let (kept, masked) = row.split_at_mut(visible);
    masked.fill(0.0);
    let max = lanes(kept, f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        // Infinite or NaN scores: let them through as NaN rather than a silent distribution.
        kept.fill(f32::NAN);
        return;
    }
    kept.iter_mut()
        .for_each(|v| *v = exp_f32(scale * (*v - max)));
    let inverse = 1.0 / lanes(kept, 0.0, |a, b| a + b);
    kept.iter_mut().for_each(|v| *v *= inverse);
}

/// `values` folded with `f` over 16 independent lanes, then across them: the order the compiler
/// may keep in vector registers (a plain fold is one serial chain).
#[inline(always)]
fn lanes(values: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = f(*a, *v);
        }
    }
    let folded = chunks.remainder().iter().fold(init, |a, v| f(a, *v));
    acc.iter().fold(folded, |a, v| f(a, *v))
}

/// `Σ a·b` over 16 lanes (see [`lanes`]).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (mut a_chunks, mut b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut a_chunks).zip(&mut b_chunks) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    tail + acc.iter().sum::<f32>()
}

#[derive(Debug)]
struct SoftmaxBackward {
    scale: f32,
}

impl<B: burn::backend::Backend + SoftmaxBackend> Backward<B, 1> for SoftmaxBackward {
    /// The probabilities.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            let d = B::scaled_softmax_backward(ops.state, grad, self.scale);
            grads.register::<B>(node.id, d);
        }
    }
}

impl<B: burn::backend::Backend + SoftmaxBackend, C: CheckpointStrategy> SoftmaxBackend
    for Autodiff<B, C>
{
    fn scaled_softmax(scores: FloatTensor<Self>, scale: f32, causal: bool) -> FloatTensor<Self> {
        let parents = [scores.node()];
        let scores = scores.into_primitive();
        let backward = SoftmaxBackward { scale };
        match backward.prepare::<C>(parents).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let probabilities = B::scaled_softmax(scores, scale, causal);
                prep.finish(probabilities.clone(), probabilities)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::scaled_softmax(scores, scale, causal)),
        }
    }

    fn scaled_softmax_backward(
        probabilities: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        // Second derivatives are not needed: the result is not tracked.
        Self::from_inner(B::scaled_softmax_backward(
            probabilities.into_primitive(),
            grad.into_primitive(),
            scale,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::max_difference;
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::ops::AttentionModuleOptions;

    #[test]
    fn attention_and_its_gradients_match_burn_attention() {
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        let shape = [2, 3, 29, 16]; // [b, h, n, head_dim]
        let inputs: Vec<Tensor<4>> = (0..4)
            .map(|i| {
                let spread = if i == 0 { 6.0 } else { 1.0 }; // peaked and flat rows
                Tensor::random(shape, Distribution::Normal(0.0, spread), &device)
            })
            .collect();
        for causal in [false, true] {
            let run = |ours: bool| {
                let track =
                    |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &autodiff).require_grad();
                let (q, k, v) = (track(&inputs[0]), track(&inputs[1]), track(&inputs[2]));
                let out = if ours {
                    attention(q.clone(), k.clone(), v.clone(), causal)
                } else {
                    let options = AttentionModuleOptions {
                        scale: None,
                        softcap: None,
                        is_causal: causal,
                    };
                    burn::tensor::module::attention(
                        q.clone(),
                        k.clone(),
                        v.clone(),
                        None,
                        None,
                        options,
                    )
                };
                let upstream = Tensor::<4>::from_data(inputs[3].to_data(), &autodiff);
                let grads = (out.clone() * upstream).sum().backward();
                let plain = |t: Tensor<4>| Tensor::<4>::from_data(t.to_data(), &device);
                let grad =
                    |t: &Tensor<4>| plain(Tensor::from_inner(t.grad(&grads).expect("tracked")));
                [plain(out), grad(&q), grad(&k), grad(&v)]
            };
            let ours = run(true);
            let reference = run(false);
            for (name, (ours, reference)) in ["output", "dQ", "dK", "dV"]
                .iter()
                .zip(ours.into_iter().zip(reference))
            {
                let (diff, scale) = max_difference(ours, reference);
                assert!(
                    diff <= 2e-5 * scale,
                    "causal {causal}, {name}: max difference {diff} at scale {scale}"
                );
            }
        }
    }

    #[test]
    fn lane_folds_match_serial_folds() {
        let values: Vec<f32> = (0..37).map(|i| ((i * 7919) % 101) as f32 - 50.0).collect();
        for n in [0, 1, 15, 16, 17, 37] {
            let v = &values[..n];
            assert_eq!(
                lanes(v, f32::NEG_INFINITY, f32::max),
                v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            );
            let serial: f32 = v.iter().sum();
            assert!((lanes(v, 0.0, |a, b| a + b) - serial).abs() <= 1e-3);
            let serial_dot: f32 = v.iter().map(|x| x * x).sum();
            assert!((dot(v, v) - serial_dot).abs() <= 1e-2);
        }
    }
}
