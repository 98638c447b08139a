//! CLIP in burn: a ViT image tower and a causal text tower, each ending in a linear projection into
//! the shared embedding space, plus the learnable temperature `logit_scale` (log space).
//!
//! Field names mirror Hugging Face's `CLIPModel` keys, so loading is a walk over the module tree
//! (see [`weights`]).

pub mod config;
pub mod encoder;
pub mod text;
pub mod vision;
pub mod weights;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

pub use config::{Activation, ClipConfig, TextConfig, VisionConfig};
use text::TextTransformer;
use vision::VisionTransformer;

/// The two towers, their projections and the temperature (`CLIPModel`).
#[derive(Module, Debug)]
pub struct ClipModel {
    pub text_model: TextTransformer,
    pub vision_model: VisionTransformer,
    pub visual_projection: Linear,
    pub text_projection: Linear,
    /// ln of the logit multiplier. Rank 0 in HF checkpoints; `[1]` here (burn has no rank-0 tensors).
    pub logit_scale: Param<Tensor<1>>,
    #[module(skip)]
    pub config: ClipConfig,
}

impl ClipModel {
    /// A randomly initialised model of `config`'s sizes (parameters are created lazily, so
    /// loading weights right after costs no random init).
    pub fn new(config: &ClipConfig, device: &Device) -> Self {
        let projection = |width| {
            LinearConfig::new(width, config.projection_dim)
                .with_bias(false)
                .init(device)
        };
        Self {
            text_model: TextTransformer::new(&config.text_config, device),
            vision_model: VisionTransformer::new(&config.vision_config, device),
            visual_projection: projection(config.vision_config.hidden_size),
            text_projection: projection(config.text_config.hidden_size),
            logit_scale: Param::from_data(
                TensorData::new(vec![config.logit_scale_init_value as f32], [1]),
                device,
            ),
            config: config.clone(),
        }
    }

    /// Projected image features, not normalised.
    ///
    /// # Shapes
    /// - pixels: `[batch, 3, image_size, image_size]`, CLIP-normalised → `[batch, projection_dim]`
    pub fn encode_image(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.visual_projection
            .forward(self.vision_model.forward(pixels))
    }

    /// Projected text features, not normalised.
    ///
    /// # Shapes
    /// - ids: `[batch, seq]`; `pool_at`: the end-of-text position of each row → `[batch, projection_dim]`
    pub fn encode_text(&self, ids: Tensor<2, Int>, pool_at: &[usize]) -> Tensor<2> {
        self.text_projection
            .forward(self.text_model.forward(ids, pool_at))
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.logit_scale.val().device()
    }
}

/// Divide each row by max(‖row‖, 1e-12): a zero row stays zero instead of becoming NaN.
///
/// The clamp is applied to the squared norm, before the square root, so that a zero row's
/// gradient is finite too (sqrt′(0) = ∞ would meet clamp′ = 0 and make NaN).
///
/// # Shapes
/// - x: `[n, d]` → `[n, d]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt(); // [n, 1]
    x / norm
}
