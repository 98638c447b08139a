//! FLYP's CE ablation: both towers and logit_scale train with cross-entropy over a head built
//! each step from the live text tower (one random template per class, scaled by exp(logit_scale)).
//! The CLI's (`flyp train --method ce-ablation`); not run by `flyp compare` unless named, not in
//! the app. WiSE-FT applies.

use std::sync::Arc;

use burn::prelude::*;

use super::{Method, Objective, Options, StepBatch};
use crate::error::Result;
use crate::model::l2_normalize;
use crate::train::engine::cross_entropy;

/// The CE ablation as users pick it.
pub struct CeAblation;

impl Method for CeAblation {
    fn name(&self) -> &'static str {
        "ce-ablation"
    }
    fn label(&self) -> &'static str {
        "CE ablation"
    }
    fn about(&self) -> &'static str {
        "FLYP's ablation: both towers trained with cross-entropy"
    }
    fn objective(&self, _: Options) -> Option<Arc<dyn Objective>> {
        Some(Arc::new(LiveHeadCrossEntropy))
    }
    fn compared_by_default(&self) -> bool {
        false
    }
    fn in_app(&self) -> bool {
        false
    }
    fn colour(&self) -> usize {
        6
    }
}

/// Cross-entropy over the live text tower's class prompts.
pub struct LiveHeadCrossEntropy;

impl Objective for LiveHeadCrossEntropy {
    fn name(&self) -> &'static str {
        "ce-ablation"
    }
    fn loss(&self, mut batch: StepBatch<'_>) -> Result<Tensor<1>> {
        let captions: Vec<String> = (0..batch.prompt_names.len())
            .map(|class| batch.random_prompt(class))
            .collect();
        let live_head = l2_normalize(batch.encode_texts(&captions)?); // [k, d]
        let scale = batch.clip.model.logit_scale.val().exp().unsqueeze::<2>();
        let logits = l2_normalize(batch.image).matmul(live_head.transpose()) * scale;
        Ok(cross_entropy(logits, batch.targets))
    }
}
