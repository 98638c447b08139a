//! The ViT image tower (transformers `modeling_clip.py`: `CLIPVisionEmbeddings`,
//! `CLIPVisionTransformer`). Field names are the checkpoint's, `pre_layrnorm` typo included.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm};
use burn::prelude::*;

use super::config::VisionConfig;
use super::encoder::{Encoder, EncoderDims, final_norm, layer_norm, normalize};

/// Patch embedding, class token and learned positions (`CLIPVisionEmbeddings`).
#[derive(Module, Debug)]
pub struct VisionEmbeddings {
    pub class_embedding: Param<Tensor<1>>,
    pub patch_embedding: Conv2d,
    pub position_embedding: Embedding,
}

impl VisionEmbeddings {
    pub fn new(config: &VisionConfig, device: &Device) -> Self {
        let side = config.image_size / config.patch_size;
        let patch = config.patch_size;
        Self {
            class_embedding: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([config.hidden_size], device),
            patch_embedding: Conv2dConfig::new(
                [config.num_channels, config.hidden_size],
                [patch, patch],
            )
            .with_stride([patch, patch])
            .with_bias(false)
            .init(device),
            position_embedding: EmbeddingConfig::new(side * side + 1, config.hidden_size)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
        }
    }

    /// # Shapes
    /// - pixels: `[batch, channels, image_size, image_size]` → `[batch, 1 + patches, hidden]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let batch = pixels.dims()[0];
        let hidden = self.patch_embedding.weight.dims()[0];
        let patches = if super::gpu::on_cube(&pixels) {
            super::gpu::patch_embedding(pixels, self.patch_embedding.weight.val())
        } else {
            let patches = self.patch_embedding.forward(pixels); // [b, d, g, g]
            let [_, _, gh, gw] = patches.dims();
            patches.reshape([batch, hidden, gh * gw]).swap_dims(1, 2) // [b, g², d]
        };
        let class = self
            .class_embedding
            .val()
            .reshape([1, 1, hidden])
            .expand([batch, 1, hidden]);
        let tokens = Tensor::cat(vec![class, patches], 1); // [b, 1 + g², d]
        let positions = self.position_embedding.weight.val().unsqueeze::<3>(); // [1, 1 + g², d]
        tokens + positions
    }
}

/// The whole image tower up to the pooled, post-normalised class token (`CLIPVisionTransformer`).
#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub embeddings: VisionEmbeddings,
    pub pre_layrnorm: LayerNorm,
    pub encoder: Encoder,
    pub post_layernorm: LayerNorm,
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl VisionTransformer {
    pub fn new(config: &VisionConfig, device: &Device) -> Self {
        let dims = EncoderDims::from(config);
        Self {
            embeddings: VisionEmbeddings::new(config, device),
            pre_layrnorm: layer_norm(config.hidden_size, config.layer_norm_eps, device),
            encoder: Encoder::new(&dims, device),
            post_layernorm: layer_norm(config.hidden_size, config.layer_norm_eps, device),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// # Shapes
    /// - pixels: `[batch, channels, image_size, image_size]` → pooled `[batch, hidden]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let x = normalize(
            &self.pre_layrnorm,
            self.embeddings.forward(pixels),
            self.layer_norm_eps,
        );
        let x = self.encoder.forward(x, false); // [b, n, d]
        let [batch, _, hidden] = x.dims();
        let class = x
            .slice([0..batch, 0..1, 0..hidden])
            .reshape([batch, hidden]);
        final_norm(&self.post_layernorm, class, self.layer_norm_eps)
    }
}
