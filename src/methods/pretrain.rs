//! CLIP pretraining's objective (`flyp pretrain`; not a fine-tuning method users pick): the
//! contrastive loss between each image and its own caption (the `caption` of its sample; a CSV
//! manifest may list an image once per caption); both towers and logit_scale train. The kept
//! model is the best epoch on the first evaluation set (a validation set), or the last epoch when
//! there is none.

use burn::prelude::*;

use super::{Objective, StepBatch};
use crate::contrastive::contrastive_loss;
use crate::error::{Error, Result};

/// Pretraining on captions.
pub struct Pretrain;

impl Objective for Pretrain {
    fn name(&self) -> &'static str {
        "pretrain"
    }
    fn loss(&self, batch: StepBatch<'_>) -> Result<Tensor<1>> {
        let captions = batch
            .samples
            .iter()
            .map(|sample| {
                sample.caption.clone().ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: pretraining needs a caption for every image (CSV `path,label,caption`)",
                        sample.path.display()
                    ))
                })
            })
            .collect::<Result<Vec<String>>>()?;
        let text = batch.encode_texts(&captions)?;
        let scale = batch.clip.model.logit_scale.val();
        Ok(contrastive_loss(batch.image, text, scale, None))
    }
}
