//! The contrastive core in plain burn tensor ops: the test oracle for the WGSL kernels and the
//! path used on the Flex CPU backend (autodiff derives its backward).
//!
//! Same functions as the kernels: symmetric InfoNCE over L2-normalised features (open_clip
//! `loss.py` `ClipLoss`; FLYP's `flyp_loss`), optional class-collision masking, and
//! classification probabilities.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

use crate::model::l2_normalize;

/// Fill value for masked logits: below any real logit (even exp(80)·cos), finite so that no
/// `0 · ∞` appears.
const MASKED: f32 = f32::MIN / 2.0;

/// Symmetric InfoNCE: `(CE(s·I·Tᵀ, arange) + CE(s·T·Iᵀ, arange)) / 2`, s = exp(logit_scale).
///
/// With `labels`, off-diagonal pairs of the same class leave both softmax denominators.
///
/// # Shapes
/// - image, text: `[b, d]` (unnormalised); logit_scale: `[1]`; labels: `[b]` class ids → `[1]`
pub fn contrastive_loss(
    image: Tensor<2>,
    text: Tensor<2>,
    logit_scale: Tensor<1>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<1> {
    let [b, _] = image.dims();
    let device = image.device();
    let logits = l2_normalize(image).matmul(l2_normalize(text).transpose())
        * logit_scale.exp().unsqueeze::<2>(); // [b, b]
    let logits = match labels {
        Some(labels) => {
            let rows = labels.clone().unsqueeze_dim::<2>(1).expand([b, b]);
            let cols = labels.unsqueeze_dim::<2>(0).expand([b, b]);
            let eye = Tensor::<2, Int>::eye(b, &device).bool();
            let collide = rows.equal(cols).bool_and(eye.bool_not());
            logits.mask_fill(collide, MASKED)
        }
        None => logits,
    };
    let diagonal = Tensor::<1, Int>::arange(0..b as i64, &device).unsqueeze_dim::<2>(1); // [b, 1]
    let image_to_text = log_softmax(logits.clone(), 1).gather(1, diagonal.clone()); // [b, 1]
    let text_to_image = log_softmax(logits, 0).transpose().gather(1, diagonal); // [b, 1]
    -(image_to_text.sum() + text_to_image.sum()) / (2.0 * b as f64)
}

/// Class probabilities of images against class embeddings (a zero-shot or fine-tuned head):
/// `softmax(s · normalise(images) · normalise(classes)ᵀ)` per image.
///
/// # Shapes
/// - image: `[n, d]` (unnormalised); classes: `[k, d]`; logit_scale `[1]` → `[n, k]`
pub fn class_probabilities(
    image: Tensor<2>,
    classes: Tensor<2>,
    logit_scale: Tensor<1>,
) -> Tensor<2> {
    let logits = l2_normalize(image).matmul(l2_normalize(classes).transpose())
        * logit_scale.exp().unsqueeze::<2>();
    softmax(logits, 1)
}
