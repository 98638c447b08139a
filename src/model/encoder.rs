//! The residual attention blocks both towers share, with Hugging Face's field names
//! (transformers `modeling_clip.py`: `CLIPAttention`, `CLIPMLP`, `CLIPEncoderLayer`, `CLIPEncoder`).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::Precision;
use super::config::Activation;

/// Sizes of one stack of blocks.
#[derive(Debug, Clone, Copy)]
pub struct EncoderDims {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub layers: usize,
    pub eps: f64,
    pub act: Activation,
}

/// Both towers' configs name the same encoder sizes.
macro_rules! dims_from {
    ($config:ty) => {
        impl From<&$config> for EncoderDims {
            fn from(c: &$config) -> Self {
                Self {
                    hidden: c.hidden_size,
                    intermediate: c.intermediate_size,
                    heads: c.num_attention_heads,
                    layers: c.num_hidden_layers,
                    eps: c.layer_norm_eps,
                    act: c.hidden_act,
                }
            }
        }
    };
}
dims_from!(super::config::TextConfig);
dims_from!(super::config::VisionConfig);

/// Multi-head self-attention (`CLIPAttention`).
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    pub fn new(dims: &EncoderDims, device: &Device) -> Self {
        let linear = || LinearConfig::new(dims.hidden, dims.hidden).init(device);
        Self {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            out_proj: linear(),
            heads: dims.heads,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        let q = linear_as_input(&self.q_proj, x.clone()); // [b, n, hidden]
        let k = linear_as_input(&self.k_proj, x.clone());
        let v = linear_as_input(&self.v_proj, x);
        if super::gpu::applies(&q, self.heads) {
            // One kernel on the projections' layout (three under autodiff): no transposes.
            let out = super::gpu::attention(q, k, v, self.heads, causal);
            return linear_as_input(&self.out_proj, out);
        }
        let split = |t: Tensor<3>| {
            t.reshape([batch, seq, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(q), split(k), split(v)); // [b, h, n, hd]
        let out = if super::cpu::applies(&q) {
            super::cpu::attention(q, k, v, causal)
        } else {
            // Default scale is 1/sqrt(head_dim), as in CLIPAttention.
            let options = AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: causal,
            };
            attention(q, k, v, None, None, options)
        }; // [b, h, n, hd]
        linear_as_input(
            &self.out_proj,
            out.swap_dims(1, 2).reshape([batch, seq, hidden]),
        )
    }
}

/// The feed-forward block (`CLIPMLP`).
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub act: Activation,
}

impl Mlp {
    pub fn new(dims: &EncoderDims, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(dims.hidden, dims.intermediate).init(device),
            fc2: LinearConfig::new(dims.intermediate, dims.hidden).init(device),
            act: dims.act,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let hidden = apply_activation(self.act, linear_as_input(&self.fc1, x));
        linear_as_input(&self.fc2, hidden)
    }
}

/// `linear.forward(x)` in `x`'s float type: under mixed precision the f32 weights are cast to f16
/// on use (their gradients come back f32 through the cast). f32 on Flex goes straight to gemm.
fn linear_as_input<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    if super::cpu::applies(&x) {
        return super::cpu::linear(linear, x);
    }
    let weight = linear.weight.val();
    if weight.dtype() == x.dtype() {
        return linear.forward(x);
    }
    let dtype = burn::tensor::FloatDType::from(x.dtype());
    let bias = linear.bias.as_ref().map(|b| b.val().cast(dtype));
    burn::tensor::module::linear(x, weight.cast(dtype), bias)
}

/// The activations CLIP checkpoints name. burn has no quick_gelu: x·sigmoid(1.702x), with a
/// hand-written backward on Flex (f32) and wgpu (any float type), see [`super::quick_gelu`].
pub fn apply_activation<const D: usize>(act: Activation, x: Tensor<D>) -> Tensor<D> {
    match act {
        Activation::QuickGelu if super::cpu::applies(&x) || super::gpu::on_cube(&x) => {
            super::quick_gelu::quick_gelu(x)
        }
        Activation::QuickGelu => x.clone() * activation::sigmoid(x * 1.702),
        Activation::Gelu => activation::gelu(x),
        Activation::GeluTanh => activation::gelu_approximate(x),
    }
}

/// One pre-LN residual block (`CLIPEncoderLayer`).
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub self_attn: Attention,
    pub layer_norm1: LayerNorm,
    pub mlp: Mlp,
    pub layer_norm2: LayerNorm,
    /// Both norms' ε (burn keeps LayerNorm's own private).
    #[module(skip)]
    pub eps: f64,
}

impl EncoderLayer {
    pub fn new(dims: &EncoderDims, device: &Device) -> Self {
        Self {
            self_attn: Attention::new(dims, device),
            layer_norm1: layer_norm(dims.hidden, dims.eps, device),
            mlp: Mlp::new(dims, device),
            layer_norm2: layer_norm(dims.hidden, dims.eps, device),
            eps: dims.eps,
        }
    }

    /// LayerNorm and the residual stream in f32; attention and the MLP in `precision`.
    ///
    /// # Shapes
    /// - x: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, causal: bool, precision: Precision) -> Tensor<3> {
        let attn = self.self_attn.forward(
            precision.compute(normalize(&self.layer_norm1, x.clone(), self.eps)),
            causal,
        );
        let x = x + precision.store(attn);
        let mlp =
            self.mlp
                .forward(precision.compute(normalize(&self.layer_norm2, x.clone(), self.eps)));
        x + precision.store(mlp)
    }
}

/// A stack of blocks (`CLIPEncoder`).
#[derive(Module, Debug)]
pub struct Encoder {
    pub layers: Vec<EncoderLayer>,
    #[module(skip)]
    pub precision: Precision,
}

impl Encoder {
    pub fn new(dims: &EncoderDims, device: &Device) -> Self {
        Self {
            layers: (0..dims.layers)
                .map(|_| EncoderLayer::new(dims, device))
                .collect(),
            precision: Precision::F32,
        }
    }

    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        self.layers
            .iter()
            .fold(x, |x, layer| layer.forward(x, causal, self.precision))
    }
}

/// `norm.forward(x)`, `eps` being `norm`'s ε; f32 on Flex in one pass per direction
/// ([`super::cpu`]), f32 on wgpu in one kernel forward and two backward ([`super::gpu`]).
pub fn normalize<const D: usize>(norm: &LayerNorm, x: Tensor<D>, eps: f64) -> Tensor<D> {
    if super::cpu::applies(&x) {
        super::cpu::layer_norm(norm, x, eps)
    } else if super::gpu::on_cube_f32(&x) {
        super::gpu::layer_norm(norm, x, eps)
    } else {
        norm.forward(x)
    }
}

/// A tower's last LayerNorm (on the pooled rows): the fused kernels on wgpu ([`super::gpu`]),
/// burn's op elsewhere (on Flex too: the demo's published numbers were computed with it, and a
/// handful of rows gains nothing from the CPU pass).
pub fn final_norm(norm: &LayerNorm, x: Tensor<2>, eps: f64) -> Tensor<2> {
    if super::gpu::on_cube_f32(&x) {
        super::gpu::layer_norm(norm, x, eps)
    } else {
        norm.forward(x)
    }
}

/// γ and β of `norm` (zeros where it has no β), for the hand-written passes of [`super::cpu`] and
/// [`super::gpu`].
pub(crate) fn affine(norm: &LayerNorm) -> (Tensor<1>, Tensor<1>) {
    let gamma = norm.gamma.val();
    let beta = match &norm.beta {
        Some(beta) => beta.val(),
        None => gamma.zeros_like(),
    };
    (gamma, beta)
}

/// A LayerNorm with CLIP's epsilon.
pub fn layer_norm(size: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(size).with_epsilon(eps).init(device)
}
