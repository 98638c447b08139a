//! LayerNorm on Flex: each row's mean, variance, normalisation and affine map in one pass over
//! both cores, with a hand-written backward (the parameter gradients summed per rayon task, then
//! across tasks).
//!
//! burn 0.22.1 runs LayerNorm under autodiff as eight tensor ops (mean, subtract, square, mean, add,
//! square root, divide, scale and shift), each with its own backward, on one thread.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, backend_extension};
use burn::nn::LayerNorm;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::{add_assign, contiguous, f32s, from_fn_f32};

#[backend_extension(Flex, Autodiff)]
pub trait LayerNormBackend: burn::backend::Backend {
    /// `(x − mean) / √(var + ε) · γ + β` over the last dimension of `x` (`[rows, d]`).
    fn layer_norm_rows(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self>;

    /// The gradients with respect to `x`, γ and β.
    fn layer_norm_rows_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `norm.forward(x)` for f32 on Flex ([`super::applies`]), `epsilon` being the one `norm` was
/// built with (burn keeps it private).
///
/// # Shapes
/// - x: `[..., d]` → `[..., d]`
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    let dims = x.dims();
    let d = dims[D - 1];
    let rows = x.shape().num_elements() / d.max(1);
    let (gamma, beta) = super::super::encoder::affine(norm);
    let y = <burn::backend::Dispatch as LayerNormBackend>::layer_norm_rows(
        x.reshape([rows, d]).into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon as f32,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

/// Rows per rayon task.
const ROWS_PER_TASK: usize = 32;

/// A row's mean and 1/√(var + ε) (two passes: the variance of the centred values).
#[inline]
fn moments(row: &[f32], epsilon: f32) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = row.iter().sum::<f32>() / d;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
    (mean, 1.0 / (var + epsilon).sqrt())
}

impl LayerNormBackend for Flex {
    fn layer_norm_rows(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f32,
    ) -> FlexTensor {
        let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
        let shape = x.layout().shape().clone();
        let d = shape[1];
        let (input, gamma, beta) = (f32s(&x), f32s(&gamma), f32s(&beta));
        if d == 0 {
            return FlexTensor::from_data(TensorData::new(Vec::<f32>::new(), shape));
        }
        // SAFETY: every piece is whole rows, and each row's d elements are written.
        unsafe {
            from_fn_f32(shape, d * ROWS_PER_TASK, |out, start| {
                let input = &input[start..start + out.len()];
                for (out, row) in out.chunks_mut(d).zip(input.chunks(d)) {
                    let (mean, rstd) = moments(row, epsilon);
                    for (((o, v), g), b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
                        o.write((v - mean) * rstd * g + b);
                    }
                }
            })
        }
    }

    fn layer_norm_rows_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        grad: FlexTensor,
        epsilon: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, gamma, grad) = (contiguous(x), contiguous(gamma), contiguous(grad));
        let shape = x.layout().shape().clone();
        let d = shape[1];
        let (input, gamma, upstream) = (f32s(&x), f32s(&gamma), f32s(&grad));
        let mut dx = vec![0.0f32; shape.num_elements()];
        let zeros = || (vec![0.0f32; d], vec![0.0f32; d]);
        let (dgamma, dbeta) = if d == 0 {
            zeros()
        } else {
            dx.par_chunks_mut(d * ROWS_PER_TASK)
                .zip(input.par_chunks(d * ROWS_PER_TASK))
                .zip(upstream.par_chunks(d * ROWS_PER_TASK))
                .fold(zeros, |(mut dgamma, mut dbeta), ((dx, input), upstream)| {
                    let rows = dx
                        .chunks_mut(d)
                        .zip(input.chunks(d))
                        .zip(upstream.chunks(d));
                    for ((dx, row), g) in rows {
                        let (mean, rstd) = moments(row, epsilon);
                        // x̂ = (x − mean)·rstd, dx̂ = g·γ;
                        // dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
                        let (mut sum, mut sum_xhat) = (0.0f32, 0.0f32);
                        for (((v, g), gm), (dg, db)) in row
                            .iter()
                            .zip(g)
                            .zip(gamma)
                            .zip(dgamma.iter_mut().zip(dbeta.iter_mut()))
                        {
                            let xhat = (v - mean) * rstd;
                            let dxhat = g * gm;
                            sum += dxhat;
                            sum_xhat += dxhat * xhat;
                            *dg += g * xhat;
                            *db += g;
                        }
                        let (mean_dxhat, mean_dxhat_xhat) = (sum / d as f32, sum_xhat / d as f32);
                        for (((o, v), g), gm) in dx.iter_mut().zip(row).zip(g).zip(gamma) {
                            let xhat = (v - mean) * rstd;
                            *o = rstd * (g * gm - mean_dxhat - xhat * mean_dxhat_xhat);
                        }
                    }
                    (dgamma, dbeta)
                })
                .reduce(zeros, |(mut ga, mut ba), (gb, bb)| {
                    add_assign(&mut ga, &gb);
                    add_assign(&mut ba, &bb);
                    (ga, ba)
                })
        };
        let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [d]));
        (
            FlexTensor::from_data(TensorData::new(dx, shape)),
            vector(dgamma),
            vector(dbeta),
        )
    }
}

#[derive(Debug)]
struct LayerNormBackward {
    epsilon: f32,
}

impl<B: burn::backend::Backend + LayerNormBackend> Backward<B, 3> for LayerNormBackward {
    /// The input and γ.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma) = ops.state;
        let (dx, dgamma, dbeta) = B::layer_norm_rows_backward(x, gamma, grad, self.epsilon);
        let [x_node, gamma_node, beta_node] = ops.parents;
        for (node, g) in [(x_node, dx), (gamma_node, dgamma), (beta_node, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: burn::backend::Backend + LayerNormBackend, C: CheckpointStrategy> LayerNormBackend
    for Autodiff<B, C>
{
    fn layer_norm_rows(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self> {
        let parents = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match (LayerNormBackward { epsilon })
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::layer_norm_rows(x.clone(), gamma.clone(), beta, epsilon);
                prep.finish((x, gamma), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::layer_norm_rows(x, gamma, beta, epsilon)),
        }
    }

    fn layer_norm_rows_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Second derivatives are not needed: the results are not tracked.
        let (dx, dgamma, dbeta) = B::layer_norm_rows_backward(
            x.into_primitive(),
            gamma.into_primitive(),
            grad.into_primitive(),
            epsilon,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::max_difference;
    use super::*;
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::Distribution;

    #[test]
    fn layer_norm_and_its_gradients_match_burn_layer_norm() {
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        let (d, epsilon) = (77, 1e-5);
        let mut norm = LayerNormConfig::new(d)
            .with_epsilon(epsilon)
            .init(&autodiff);
        // γ and β away from their initial ones and zeros, rows with an offset and a spread.
        let random = |mean| Tensor::<1>::random([d], Distribution::Normal(mean, 0.5), &autodiff);
        norm.gamma = Param::from_tensor(random(1.0));
        norm.beta = Some(Param::from_tensor(random(0.0)));
        let x = Tensor::<3>::random([3, 41, d], Distribution::Normal(2.0, 3.0), &device);
        let upstream = Tensor::<3>::random([3, 41, d], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = Tensor::<3>::from_data(x.to_data(), &autodiff).require_grad();
            let y = if ours {
                layer_norm(&norm, x.clone(), epsilon)
            } else {
                norm.forward(x.clone())
            };
            let upstream = Tensor::<3>::from_data(upstream.to_data(), &autodiff);
            let grads = (y.clone() * upstream).sum().backward();
            let plain = |t: Tensor<1>| Tensor::<1>::from_data(t.to_data(), &device);
            let flat = |t: Tensor<3>| plain(t.reshape([-1]));
            let dx = Tensor::<3>::from_inner(x.grad(&grads).expect("x is tracked"));
            let dgamma = Tensor::<1>::from_inner(norm.gamma.grad(&grads).expect("γ is tracked"));
            let beta = norm.beta.as_ref().expect("β");
            let dbeta = Tensor::<1>::from_inner(beta.grad(&grads).expect("β is tracked"));
            [
                flat(y),
                flat(Tensor::from_data(dx.to_data(), &device)),
                plain(Tensor::from_data(dgamma.to_data(), &device)),
                plain(Tensor::from_data(dbeta.to_data(), &device)),
            ]
        };
        let (ours, reference) = (run(true), run(false));
        for (name, (ours, reference)) in ["y", "dx", "dγ", "dβ"]
            .iter()
            .zip(ours.into_iter().zip(reference))
        {
            let (diff, scale) = max_difference(ours, reference);
            assert!(
                diff <= 2e-5 * scale,
                "{name}: max difference {diff} at scale {scale}"
            );
        }
    }
}
