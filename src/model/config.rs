//! CLIP configuration in Hugging Face's `config.json` layout (transformers' `CLIPConfig`,
//! `CLIPTextConfig`, `CLIPVisionConfig`), with transformers' defaults for absent fields, and named
//! presets for the OpenAI checkpoints.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The MLP activation, as `hidden_act` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// x·sigmoid(1.702x): OpenAI CLIP.
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact (erf) GELU: most LAION OpenCLIP models.
    #[serde(rename = "gelu")]
    Gelu,
    /// tanh-approximated GELU.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
}

/// Text tower settings (transformers' `CLIPTextConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            bos_token_id: 49406,
            eos_token_id: 49407,
            pad_token_id: 1,
        }
    }
}

/// Image tower settings (transformers' `CLIPVisionConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl Default for VisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

/// The most parameters a model may have (8 × 10⁹, 32 GB in f32): sizes beyond it are refused
/// before anything is allocated.
pub const MAX_PARAMS: u128 = 8_000_000_000;

/// The whole model (transformers' `CLIPConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipConfig {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub projection_dim: usize,
    /// ln(1/0.07) in transformers; the checkpoint's `logit_scale` overrides it when loading.
    pub logit_scale_init_value: f64,
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            text_config: TextConfig::default(),
            vision_config: VisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }
}

impl ClipConfig {
    /// OpenAI ViT-B/32 (`openai/clip-vit-base-patch32`).
    pub fn vit_b_32() -> Self {
        Self::default()
    }

    /// OpenAI ViT-B/16 (`openai/clip-vit-base-patch16`).
    pub fn vit_b_16() -> Self {
        let mut config = Self::default();
        config.vision_config.patch_size = 16;
        config
    }

    /// OpenAI ViT-L/14 (`openai/clip-vit-large-patch14`).
    pub fn vit_l_14() -> Self {
        Self {
            text_config: TextConfig {
                hidden_size: 768,
                intermediate_size: 3072,
                num_attention_heads: 12,
                ..TextConfig::default()
            },
            vision_config: VisionConfig {
                hidden_size: 1024,
                intermediate_size: 4096,
                num_hidden_layers: 24,
                num_attention_heads: 16,
                patch_size: 14,
                ..VisionConfig::default()
            },
            projection_dim: 768,
            ..Self::default()
        }
    }

    /// The demo model this project pretrains (`assets/demo-model`): ViT 48 px / patch 6 (64
    /// patches), width 128, 4 layers; text width 64, 4 layers; 128-d joint space; ≈4.3 M
    /// parameters, most of them the 49408-token embedding (17 MB in f32).
    pub fn flyp_demo() -> Self {
        Self {
            text_config: TextConfig {
                hidden_size: 64,
                intermediate_size: 256,
                num_hidden_layers: 4,
                num_attention_heads: 2,
                ..TextConfig::default()
            },
            vision_config: VisionConfig {
                hidden_size: 128,
                intermediate_size: 512,
                num_hidden_layers: 4,
                num_attention_heads: 2,
                image_size: 48,
                patch_size: 6,
                ..VisionConfig::default()
            },
            projection_dim: 128,
            ..Self::default()
        }
    }

    /// A preset by name: `ViT-B/32`, `ViT-B/16`, `ViT-L/14`, `flyp-demo` (case and separators
    /// ignored).
    pub fn preset(name: &str) -> Option<Self> {
        let key: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        match key.as_str() {
            "vitb32" => Some(Self::vit_b_32()),
            "vitb16" => Some(Self::vit_b_16()),
            "vitl14" => Some(Self::vit_l_14()),
            "flypdemo" => Some(Self::flyp_demo()),
            _ => None,
        }
    }

    /// Read and check an HF `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: Self =
            serde_json::from_str(&text).map_err(|e| Error::config(path, e.to_string()))?;
        config
            .validate()
            .map_err(|reason| Error::config(path, reason))?;
        Ok(config)
    }

    /// Sizes that the towers cannot be built from, as a message naming the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let positive = [
            ("text_config.vocab_size", t.vocab_size),
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
            ),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.patch_size", v.patch_size),
            ("vision_config.image_size", v.image_size),
            ("vision_config.num_channels", v.num_channels),
            ("projection_dim", self.projection_dim),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{name} must be positive"));
        }
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(format!(
                "text_config.hidden_size {} is not divisible by num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return Err(format!(
                "vision_config.hidden_size {} is not divisible by num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        // The text tower pools (and pads) at the end-of-text token.
        for (name, id) in [("eos_token_id", t.eos_token_id)] {
            if id as usize >= t.vocab_size {
                return Err(format!(
                    "text_config.{name} {id} is not below vocab_size {}",
                    t.vocab_size
                ));
            }
        }
        let params = self.num_params();
        if params > MAX_PARAMS {
            return Err(format!(
                "the sizes describe {params} parameters, more than the {MAX_PARAMS} flyp allocates \
                 (ViT-L/14 has about 428 million); check num_hidden_layers, hidden_size, \
                 intermediate_size and vocab_size"
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(())
    }

    /// How many numbers the model holds (every parameter of `ClipModel`), computed without
    /// overflow so that absurd sizes are caught before anything is allocated.
    pub fn num_params(&self) -> u128 {
        let t = &self.text_config;
        let v = &self.vision_config;
        let n = |x: usize| x as u128;
        // One encoder layer: q, k, v, out projections with biases, two LayerNorms, fc1 and fc2.
        let layer = |d: u128, i: u128| 4 * (d * d + d) + 4 * d + (d * i + i) + (i * d + d);
        let (td, vd) = (n(t.hidden_size), n(v.hidden_size));
        let text = n(t.vocab_size) * td
            + n(t.max_position_embeddings) * td
            + n(t.num_hidden_layers) * layer(td, n(t.intermediate_size))
            + 2 * td
            + td * n(self.projection_dim);
        let side = n(v.image_size / v.patch_size.max(1));
        let vision = vd
            + n(v.num_channels) * n(v.patch_size) * n(v.patch_size) * vd
            + (side * side + 1) * vd
            + 4 * vd
            + n(v.num_hidden_layers) * layer(vd, n(v.intermediate_size))
            + vd * n(self.projection_dim);
        text + vision + 1
    }

    /// Number of patches plus the class token.
    pub fn num_positions(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size;
        side * side + 1
    }

    /// The `config.json` that `transformers.CLIPModel.from_pretrained` reads.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("model_type".into(), "clip".into());
            object.insert("architectures".into(), serde_json::json!(["CLIPModel"]));
            object.insert("torch_dtype".into(), "float32".into());
            if let Some(text) = object
                .get_mut("text_config")
                .and_then(|v| v.as_object_mut())
            {
                text.insert("model_type".into(), "clip_text_model".into());
                text.insert("projection_dim".into(), self.projection_dim.into());
            }
            if let Some(vision) = object
                .get_mut("vision_config")
                .and_then(|v| v.as_object_mut())
            {
                vision.insert("model_type".into(), "clip_vision_model".into());
                vision.insert("projection_dim".into(), self.projection_dim.into());
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_sizes() {
        let l14 = ClipConfig::preset("ViT-L/14").expect("preset");
        assert_eq!(l14.num_positions(), 16 * 16 + 1);
        assert_eq!(
            ClipConfig::preset("vit-b-16")
                .expect("preset")
                .num_positions(),
            197
        );
        assert_eq!(
            ClipConfig::preset("ViT-B/32")
                .expect("preset")
                .num_positions(),
            50
        );
        assert!(ClipConfig::preset("ViT-H/14").is_none());
    }

    #[test]
    fn hf_json_round_trips() {
        let config = ClipConfig::vit_b_16();
        let back: ClipConfig = serde_json::from_value(config.to_hf_json()).expect("parse");
        assert_eq!(back, config);
    }
}
