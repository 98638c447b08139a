//! Standard fine-tuning (FT), as WiSE-FT's code runs it: cross-entropy over the head
//! normalise(image)·weightᵀ + bias ([`super::head`]), which starts as the zero-shot head s·T with
//! bias 0; the image tower and the head train, the text tower and logit_scale stay frozen; the
//! global gradient norm is clipped at 1.0. WiSE-FT applies (weights and head).

use std::sync::Arc;

use burn::prelude::*;

use super::head::Head;
use super::{Method, Objective, Options, StepBatch};
use crate::error::{Error, Result};
use crate::train::engine::cross_entropy;

/// FT as users pick it.
pub struct Finetune;

impl Method for Finetune {
    fn name(&self) -> &'static str {
        "finetune"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["ft"]
    }
    fn label(&self) -> &'static str {
        "Fine-tune (FT)"
    }
    fn about(&self) -> &'static str {
        "Cross-entropy on the image tower with a head that starts as the zero-shot head; the text tower is frozen"
    }
    fn objective(&self, _: Options) -> Option<Arc<dyn Objective>> {
        Some(Arc::new(HeadCrossEntropy))
    }
    fn reference_clip_grad_norm(&self) -> Option<f64> {
        Some(1.0)
    }
    fn demo_lr(&self) -> f64 {
        3e-4
    }
    fn colour(&self) -> usize {
        2
    }
}

/// Cross-entropy of the trainable head's logits (FT, and LP-FT's second stage).
pub struct HeadCrossEntropy;

impl Objective for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "finetune"
    }
    fn trains_head(&self) -> bool {
        true
    }
    fn loss(&self, batch: StepBatch<'_>) -> Result<Tensor<1>> {
        let head = batch
            .head
            .ok_or_else(|| Error::Invalid("internal: fine-tuning without a head".into()))?;
        Ok(head_cross_entropy(head, batch.image, batch.targets))
    }
}

/// FT's loss: cross-entropy of `head`'s logits of image features `[n, d]` against the classes.
pub fn head_cross_entropy(head: &Head, image: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    cross_entropy(head.logits(image), targets)
}
