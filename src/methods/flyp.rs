//! FLYP, "Finetune Like You Pretrain" (Goyal et al., CVPR 2023): the pretraining objective with
//! class prompts as captions. Each image is paired with "⟨template⟩ ⟨its class⟩", the template
//! drawn per image per step; the symmetric contrastive loss over the batch; both towers and
//! logit_scale train; no head: each epoch is evaluated with the zero-shot head of the live text
//! tower. No gradient clipping (FLYP's code). WiSE-FT applies.

use std::sync::Arc;

use burn::prelude::*;

use super::{Method, Objective, Options, StepBatch};
use crate::contrastive::contrastive_loss;
use crate::error::Result;

/// FLYP as users pick it.
pub struct Flyp;

impl Method for Flyp {
    fn name(&self) -> &'static str {
        "flyp"
    }
    fn label(&self) -> &'static str {
        "FLYP"
    }
    fn about(&self) -> &'static str {
        "Finetune Like You Pretrain: the contrastive loss between each image and a caption of its class; both towers train"
    }
    fn objective(&self, options: Options) -> Option<Arc<dyn Objective>> {
        Some(Arc::new(Contrastive {
            mask_collisions: options.mask_collisions,
        }))
    }
    fn demo_lr(&self) -> f64 {
        3e-4
    }
    fn colour(&self) -> usize {
        0
    }
}

/// FLYP's loss.
pub struct Contrastive {
    /// Drop same-class off-diagonal pairs from the softmax denominators (the paper's ablation).
    pub mask_collisions: bool,
}

impl Objective for Contrastive {
    fn name(&self) -> &'static str {
        "flyp"
    }
    fn loss(&self, mut batch: StepBatch<'_>) -> Result<Tensor<1>> {
        let labels = batch.labels;
        let captions: Vec<String> = labels.iter().map(|&l| batch.random_prompt(l)).collect();
        let text = batch.encode_texts(&captions)?;
        let scale = batch.clip.model.logit_scale.val();
        let mask = self.mask_collisions.then_some(batch.targets);
        Ok(contrastive_loss(batch.image, text, scale, mask))
    }
}
