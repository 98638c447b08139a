//! CLIP in burn: a ViT image tower and a causal text tower, each ending in a linear projection into
//! the shared embedding space, plus the learnable temperature `logit_scale` (log space).
//!
//! Field names mirror Hugging Face's `CLIPModel` keys, so loading is a walk over the module tree
//! (see [`weights`]).

pub mod config;
pub(crate) mod cpu;
pub mod encoder;
pub mod gpu;
pub mod quick_gelu;
pub mod text;
pub mod vision;
pub mod weights;

use burn::backend::DispatchDevice;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

pub use config::{Activation, ClipConfig, TextConfig, VisionConfig};
/// True when a tensor is f32 on the Flex CPU backend (where the hand-written CPU passes apply).
pub use cpu::applies as on_flex_f32;
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

    /// [`Self::encode_image`] for inference, faster on the Flex CPU backend: there the batch is
    /// split into two parts per rayon thread whose forward passes run side by side, because many
    /// of Flex's element-wise kernels run on one thread. Rows are independent, so the features are
    /// the same to float rounding. On wgpu, and on autodiff devices (burn's autodiff graph lost
    /// nodes when built from several threads: "graph tape has already been consumed"), it is
    /// `encode_image`.
    ///
    /// # Shapes
    /// - pixels: `[batch, 3, image_size, image_size]` → `[batch, projection_dim]`
    pub fn encode_image_threaded(&self, pixels: Tensor<4>) -> Tensor<2> {
        use rayon::prelude::*;
        let parts = row_parts(&pixels.device(), pixels.dims()[0]);
        if parts.len() < 2 {
            return self.encode_image(pixels);
        }
        let features: Vec<Tensor<2>> = parts
            .into_par_iter()
            .map(|(start, rows)| self.encode_image(pixels.clone().narrow(0, start, rows)))
            .collect();
        Tensor::cat(features, 0)
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

    /// The same model computing its towers' blocks in `precision` (weights stay f32).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.text_model.encoder.precision = precision;
        self.vision_model.encoder.precision = precision;
        self
    }

    pub fn precision(&self) -> Precision {
        self.vision_model.encoder.precision
    }
}

/// The float type the towers' residual blocks compute in.
///
/// `Mixed` is PyTorch autocast's split: the blocks' matrix products, attention and activations in
/// f16 (weights cast on use), while LayerNorm, the residual stream, the patch embedding, the
/// projections, the contrastive core, the parameters and the optimizer state stay f32. Train with a
/// loss scale (`train::loss_scale`) so that small f16 gradients do not flush to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Mixed,
}

impl Precision {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" | "fp32" => Some(Self::F32),
            "mixed" | "f16" | "fp16" => Some(Self::Mixed),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Mixed => "mixed",
        }
    }

    /// Whether `device` computes in this precision; `Mixed` needs f16 arithmetic (wgpu adapters
    /// with SHADER_F16, the Flex CPU backend).
    pub fn check(self, device: &Device, description: &str) -> crate::error::Result<()> {
        if self == Self::Mixed && !device.supports_dtype(FloatDType::F16) {
            return Err(crate::error::Error::Invalid(format!(
                "mixed precision needs f16 arithmetic, which {description} does not offer: use --precision f32"
            )));
        }
        Ok(())
    }

    /// Into the blocks' compute type.
    pub fn compute<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::F32 => x,
            Self::Mixed => x.cast(FloatDType::F16),
        }
    }

    /// Back to f32, for the residual stream.
    pub fn store<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::F32 => x,
            Self::Mixed => x.cast(FloatDType::F32),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The (first row, rows) parts the threaded encoder splits a batch of `batch` rows into: two per
/// rayon thread on Flex without autodiff, as even as possible; one part elsewhere.
fn row_parts(device: &Device, batch: usize) -> Vec<(usize, usize)> {
    let parts = if matches!(device.as_dispatch(), DispatchDevice::Flex(_)) {
        (2 * rayon::current_num_threads()).clamp(1, batch.max(1))
    } else {
        1
    };
    let start = |k: usize| k * batch / parts;
    (0..parts)
        .map(|k| (start(k), start(k + 1) - start(k)))
        .collect()
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
