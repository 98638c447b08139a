//! The classification head of zero-shot, the linear probe, FT and LP-FT, parameterised as WiSE-FT's
//! code builds it: logits = normalise(image)·weightᵀ + bias, the zero-shot head being
//! weight = s·T (T the unit prompt-ensemble rows, s = exp(logit_scale)) and bias = 0.
//!
//! Why not keep unit rows and a frozen s (logits = s·normalise(image)·Wᵀ)? Both give the same
//! logits at the start, but the optimiser sees different parameters: AdamW moves every parameter by
//! about lr per step whatever its gradient's size, so a step on W moves a logit by about s·lr
//! (s ≈ 16 for the demo model, 100 for OpenAI's CLIP) and a step on s·W by about lr. The reference
//! recipes (and their learning rates) are for s·W: FT and LP-FT train this head, WiSE-FT
//! interpolates its weight and bias like every other parameter, and `head.safetensors` stores it.

use burn::module::{Module, Param};
use burn::prelude::*;

use crate::data::prompts::Templates;
use crate::embed::Clip;
use crate::error::{Error, Result};
use crate::methods::zeroshot::zero_shot_head;
use crate::model::l2_normalize;

/// A linear classifier on normalised image features: logits = normalise(image)·weightᵀ + bias.
#[derive(Debug, Clone)]
pub struct ClassHead {
    /// `[classes, projection_dim]`
    pub weight: Tensor<2>,
    /// `[classes]`
    pub bias: Tensor<1>,
}

impl ClassHead {
    /// `weight` with a zero bias.
    pub fn from_weight(weight: Tensor<2>) -> Self {
        let [classes, _] = weight.dims();
        let bias = Tensor::zeros([classes], &weight.device());
        Self { weight, bias }
    }

    /// The zero-shot classifier of `clip` as a head: s·(prompt-ensemble rows), bias 0, so that its
    /// logits are exactly the zero-shot logits s·normalise(image)·Tᵀ.
    pub fn zero_shot(clip: &Clip, class_names: &[String], templates: &Templates) -> Result<Self> {
        let rows = zero_shot_head(clip, class_names, templates)?;
        let scale = clip.model.logit_scale.val().exp().unsqueeze::<2>(); // [1, 1]
        Ok(Self::from_weight(rows * scale))
    }

    pub fn classes(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Logits `[n, classes]` of image features `[n, d]` (normalised here).
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        l2_normalize(features).matmul(self.weight.clone().transpose())
            + self.bias.clone().unsqueeze::<2>()
    }

    /// The same head on `device`, outside any autodiff graph.
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            weight: self
                .weight
                .clone()
                .without_autodiff()
                .detach()
                .to_device(device),
            bias: self
                .bias
                .clone()
                .without_autodiff()
                .detach()
                .to_device(device),
        }
    }

    /// WiSE-FT for heads: (1−α)·self + α·other, weight and bias alike.
    pub fn lerp(&self, other: &Self, alpha: f64) -> Result<Self> {
        if self.weight.dims() != other.weight.dims() || self.bias.dims() != other.bias.dims() {
            return Err(Error::Invalid(format!(
                "WiSE-FT: head shapes {:?} and {:?} differ",
                self.weight.dims(),
                other.weight.dims()
            )));
        }
        Ok(Self {
            weight: self.weight.clone() * (1.0 - alpha) + other.weight.clone() * alpha,
            bias: self.bias.clone() * (1.0 - alpha) + other.bias.clone() * alpha,
        })
    }
}

/// The trainable form of [`ClassHead`] (FT, LP-FT): logits = normalise(features)·weightᵀ + bias, as WiSE-FT's code builds it
/// (weight starts as s·T, see [`ClassHead`] for why the scale lives in the weight).
#[derive(Module, Debug)]
pub struct Head {
    /// `[classes, projection_dim]`
    pub weight: Param<Tensor<2>>,
    /// `[classes]`
    pub bias: Param<Tensor<1>>,
}

impl Head {
    /// A trainable head starting at `start`, on `device` (tracked when it is an autodiff device).
    pub fn new(start: &ClassHead, device: &Device) -> Self {
        let start = start.to_device(device);
        let (weight, bias) = if device.is_autodiff() {
            (start.weight.autodiff(), start.bias.autodiff())
        } else {
            (start.weight, start.bias)
        };
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
        }
    }

    /// Logits `[n, classes]` of image features `[n, d]`: [`ClassHead::logits`] on the live
    /// parameters (gradients flow to both).
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.live().logits(features)
    }

    /// The head's current values, outside the autodiff graph.
    pub fn to_class_head(&self) -> ClassHead {
        let live = self.live();
        ClassHead {
            weight: live.weight.without_autodiff(),
            bias: live.bias.without_autodiff(),
        }
    }

    fn live(&self) -> ClassHead {
        ClassHead {
            weight: self.weight.val(),
            bias: self.bias.val(),
        }
    }
}
