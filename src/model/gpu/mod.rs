//! Hot paths of the two towers on wgpu (cubecl) devices, in training and in evaluation, as burn
//! backend extensions with hand-written WGSL (`shaders/attention_*.wgsl`,
//! `shaders/layer_norm_*.wgsl`) and hand-written backward passes. Under autodiff burn decomposes
//! attention into two matrix products, a softmax and the transposes around them, and
//! differentiates each; here it is one kernel forward and two backward, reading and writing the
//! projections' own `[batch, seq, hidden]` layout.
//!
//! - [`attention`]: multi-head attention (causal or not), forward with the softmax online; the
//!   backward recomputes the probabilities from the forward's log-sum-exp per row instead of
//!   keeping the `batch·heads·seq²` matrix.
//!
//! - [`layer_norm`]: LayerNorm, one kernel forward, a row pass and a column pass backward.
//!
//! - [`patch_embedding`]: the patch embedding as one matrix product (burn ops, any dtype).
//!
//! The Flex CPU backend has its own passes ([`super::cpu`]); f16 (mixed precision) keeps burn's
//! ops: the kernels are f32 (llvmpipe, the adapter the tests run on, has no f16).

mod attention;
mod layer_norm;

use crate::device::BackendKind;
use burn::prelude::*;
use burn::tensor::DType;

pub use attention::{AttentionBackend, attention_source};
pub use layer_norm::LayerNormBackend;

/// True when `x` is f32 on a cubecl (wgpu) device, with or without autodiff, and its `heads`
/// split it into heads the kernels take (a width that is a multiple of 4, at most 256).
pub fn applies(x: &Tensor<3>, heads: usize) -> bool {
    let hidden = x.dims()[2];
    let head_dim = hidden / heads.max(1);
    on_cube_f32(x)
        && heads > 0
        && hidden.is_multiple_of(heads)
        && head_dim.is_multiple_of(4)
        && head_dim <= 256
}

/// True when `x` is on a cubecl (wgpu) device, with or without autodiff, in any dtype.
pub fn on_cube<const D: usize>(x: &Tensor<D>) -> bool {
    BackendKind::of(&x.device()) == Some(BackendKind::Wgpu)
}

/// True when `x` is f32 on a cubecl (wgpu) device, with or without autodiff.
pub fn on_cube_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && on_cube(x)
}

/// `norm.forward(x)` for f32 on a cubecl device ([`on_cube_f32`]), `epsilon` being the one `norm`
/// was built with (burn keeps it private).
///
/// # Shapes
/// - x: `[..., d]` → `[..., d]`
pub fn layer_norm<const D: usize>(
    norm: &burn::nn::LayerNorm,
    x: Tensor<D>,
    epsilon: f64,
) -> Tensor<D> {
    let (gamma, beta) = super::encoder::affine(norm);
    let y = <burn::backend::Dispatch as LayerNormBackend>::gpu_layer_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        (epsilon as f32).to_bits(),
    );
    Tensor::from_dispatch(y)
}

/// Multi-head scaled dot-product attention with the default scale 1/√head_dim (as
/// `CLIPAttention`), causal or not, on the projections' layout.
///
/// # Shapes
/// - q, k, v: `[batch, seq, hidden]` (head h in columns h·d … h·d + d − 1) → `[batch, seq, hidden]`
pub fn attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
) -> Tensor<3> {
    let (out, _lse) = <burn::backend::Dispatch as AttentionBackend>::attention_forward(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        heads,
        causal,
    );
    Tensor::from_dispatch(out)
}

/// The patch embedding (`CLIPVisionEmbeddings.patch_embedding`, a convolution whose stride is its
/// kernel, without bias) as one matrix product over the image cut into patches, the way
/// PyTorch's convolution lowers it. On wgpu burn's convolution took 30 ms of a 120 ms tiny
/// evaluation forward on llvmpipe, and autotune sometimes chose a weight gradient that loops over
/// the kernel's positions (128 launches at patch 8; at patch 32 that loop would be about 2,048); here the forward is a
/// relayout of the pixels and a product, the weight's gradient one product.
///
/// # Shapes
/// - pixels: `[batch, channels, size, size]`, weight: `[hidden, channels, patch, patch]`
///   → `[batch, (size / patch)², hidden]`
pub fn patch_embedding(pixels: Tensor<4>, weight: Tensor<4>) -> Tensor<3> {
    let [batch, channels, height, width] = pixels.dims();
    let [hidden, _, patch, _] = weight.dims();
    let (gh, gw) = (height / patch, width / patch);
    let cut = channels * patch * patch;
    let rows = pixels
        .reshape([batch, channels, gh, patch, gw, patch])
        .permute([0, 2, 4, 1, 3, 5]) // [b, gh, gw, c, p, p]: a patch's values in the weight's order
        .reshape([batch * gh * gw, cut]);
    rows.matmul(weight.reshape([hidden, cut]).transpose()) // [b·g², d]
        .reshape([batch, gh * gw, hidden])
}
