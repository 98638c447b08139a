//! Zero-shot classification (Radford et al., "Learning Transferable Visual Models From Natural
//! Language Supervision", 2021; OpenAI's prompt-ensembling notebook): per class, embed every
//! template filled with the class name, L2-normalise each, average, L2-normalise again. Logits =
//! exp(logit_scale) · normalise(image features) · headᵀ. No training.

use burn::prelude::*;

use crate::data::Sample;
use crate::data::loader::{Loader, LoaderConfig};
use crate::data::prompts::Templates;
use crate::embed::{Clip, text_batch};
use crate::error::Result;
use crate::methods::head::ClassHead;
use crate::model::l2_normalize;
use crate::train::Metrics;

/// The prompt-ensemble head of `class_names` under `templates`.
///
/// # Shapes
/// - returns `[classes, projection_dim]`, unit rows
pub fn zero_shot_head(
    clip: &Clip,
    class_names: &[String],
    templates: &Templates,
) -> Result<Tensor<2>> {
    let eos = clip.model.config.text_config.eos_token_id;
    let mut rows = Vec::with_capacity(class_names.len());
    for name in class_names {
        let tokens = clip.tokenizer.encode_all(&templates.fill(name))?;
        let (ids, pool_at) = text_batch(&tokens, eos, &clip.device);
        let per_template = l2_normalize(clip.model.encode_text(ids, &pool_at)); // [t, d]
        rows.push(per_template.mean_dim(0)); // [1, d]
    }
    Ok(l2_normalize(Tensor::cat(rows, 0)))
}

/// The normalised embeddings of the images at `paths`, then the prompt-ensemble head's rows (one
/// per class): what the embedding pictures of the demo and the app project.
pub fn image_and_prompt_embeddings(
    clip: &Clip,
    paths: &[std::path::PathBuf],
    class_names: &[String],
    templates: &Templates,
) -> Result<Vec<Vec<f32>>> {
    let mut rows = clip.embed_images(paths)?;
    rows.extend(crate::embed::to_rows(zero_shot_head(
        clip,
        class_names,
        templates,
    )?)?);
    Ok(rows)
}

/// Classify `samples` with `head` and score the predictions: images are preprocessed as the model
/// expects (no augmentation) in batches of `batch_size`.
pub fn evaluate(
    clip: &Clip,
    head: &ClassHead,
    samples: &[Sample],
    batch_size: usize,
) -> Result<(Metrics, Vec<usize>)> {
    let size = clip.model.config.vision_config.image_size as u32;
    let config = LoaderConfig {
        batch_size,
        ..Default::default()
    };
    let loader = Loader::new(samples.to_vec(), clip.preprocess.clone(), size, config);
    let mut predicted = vec![0usize; samples.len()];
    for mut batch in loader.epoch(0) {
        let pixels = batch.take_pixels(size, &clip.device)?;
        let features = clip.model.encode_image_threaded(pixels);
        // The head's own logits (FT, LP-FT and probe heads are not unit rows, so not the fused
        // `class_probabilities` kernel, which normalises the class rows).
        let logits = head.logits(features);
        let top: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(|e| {
                crate::Error::Invalid(format!("reading predictions back from the device: {e:?}"))
            })?;
        for (&index, &class) in batch.indices.iter().zip(&top) {
            predicted[index] = class as usize;
        }
    }
    let truth: Vec<usize> = samples.iter().map(|s| s.label).collect();
    Ok((
        Metrics::from_predictions(&predicted, &truth, head.classes()),
        predicted,
    ))
}

/// Zero-shot as users pick it: no training, the prompt head of the pretrained model.
pub struct ZeroShot;

impl super::Method for ZeroShot {
    fn name(&self) -> &'static str {
        "zeroshot"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["zero-shot"]
    }
    fn label(&self) -> &'static str {
        "Zero-shot"
    }
    fn about(&self) -> &'static str {
        "No training: each class's prompts, through the text tower, are the classifier"
    }
    fn objective(&self, _: super::Options) -> Option<std::sync::Arc<dyn super::Objective>> {
        None
    }
    fn colour(&self) -> usize {
        9
    }
}
