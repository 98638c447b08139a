//! A loaded CLIP — weights, tokenizer, preprocessing, device — and the embedding entry points the
//! CLI (`flyp embed`) and the app share.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use rayon::prelude::*;

use crate::data::{Preprocess, decode_image};
use crate::device::ComputeDevice;
use crate::error::{Error, Result};
use crate::model::weights::{Checkpoint, infer_config, save_hf, write_atomic};
use crate::model::{ClipConfig, ClipModel, l2_normalize};
use crate::tokenizer::ClipTokenizer;

/// Images and texts per forward pass when embedding.
pub const EMBED_BATCH: usize = 64;

/// Everything needed to turn images and texts into CLIP embeddings.
pub struct Clip {
    pub model: ClipModel,
    pub tokenizer: ClipTokenizer,
    pub preprocess: Preprocess,
    pub device: Device,
    /// Where the weights came from.
    pub source: PathBuf,
}

impl Clip {
    /// Load an HF model directory (`config.json` + `model.safetensors` or shards) or a single
    /// `.safetensors` file (its sizes from a `config.json` beside it, else inferred from shapes).
    pub fn load(path: &Path, device: &ComputeDevice) -> Result<Self> {
        let not_a_model = |reason: &str| Error::NotAModel {
            path: path.to_path_buf(),
            reason: reason.into(),
        };
        if !path.exists() {
            return Err(not_a_model("no such file or directory"));
        }
        let folder = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(Path::new("."))
        };
        if folder.join(crate::run_dir::PARTIAL).exists() {
            return Err(not_a_model(
                "an unfinished write (its writer stopped before the end; it holds .flyp-partial): write it again",
            ));
        }
        let (dir, config) = if path.is_dir() {
            let config_path = path.join("config.json");
            if !config_path.is_file() {
                return Err(not_a_model(
                    "directory without config.json (expected a Hugging Face CLIP folder: config.json + model.safetensors)",
                ));
            }
            (
                path.to_path_buf(),
                Some(ClipConfig::from_file(&config_path)?),
            )
        } else {
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            let beside = dir.join("config.json");
            let config = if beside.is_file() {
                Some(ClipConfig::from_file(&beside)?)
            } else {
                None
            };
            (dir, config)
        };
        let checkpoint = Checkpoint::read(path)?;
        let config = match config {
            Some(config) => {
                checkpoint.check_config(&config, &dir.join("config.json"))?;
                config
            }
            None => infer_config(&checkpoint, path)?,
        };
        let tokenizer =
            ClipTokenizer::for_model_dir(&dir, config.text_config.max_position_embeddings)?;
        tokenizer.check_fits(config.text_config.vocab_size, path)?;
        let model = checkpoint.load_model(&config, &device.device)?;
        let preprocess = Preprocess::for_model_dir(&dir, config.vision_config.image_size as u32)?;
        let (h, w) = preprocess.output_size(1000, 1000);
        let size = config.vision_config.image_size as u32;
        if (h, w) != (size, size) {
            return Err(Error::config(
                dir.join("preprocessor_config.json"),
                format!("crop {h}×{w} does not match the model's image_size {size}"),
            ));
        }
        Ok(Self {
            model,
            tokenizer,
            preprocess,
            device: device.device.clone(),
            source: path.to_path_buf(),
        })
    }

    /// A randomly initialised model of `config`'s sizes (CLIP's initialisation: embeddings
    /// N(0, 0.02²), text positions N(0, 0.01²)), with the bundled tokenizer and CLIP's
    /// preprocessing, for pretraining from scratch. `seed` seeds the device's generator.
    pub fn random(config: &ClipConfig, device: &ComputeDevice, seed: u64) -> Result<Self> {
        config
            .validate()
            .map_err(|reason| Error::Invalid(format!("model config: {reason}")))?;
        let tokenizer = ClipTokenizer::bundled(config.text_config.max_position_embeddings)?;
        tokenizer.check_fits(config.text_config.vocab_size, Path::new("(random)"))?;
        device.device.seed(seed);
        let model = ClipModel::new(config, &device.device);
        Ok(Self {
            model,
            tokenizer,
            preprocess: Preprocess::clip(config.vision_config.image_size as u32),
            device: device.device.clone(),
            source: PathBuf::from("random initialisation"),
        })
    }

    /// A copy for evaluation: the same weights with autodiff off, on the plain device.
    pub fn for_inference(&self) -> Clip {
        Clip {
            model: self.model.valid(),
            tokenizer: self.tokenizer.clone(),
            preprocess: self.preprocess.clone(),
            device: self.device.clone().without_autodiff(),
            source: self.source.clone(),
        }
    }

    /// Write this model as an HF folder: `config.json`, `model.safetensors` (f32), the tokenizer's
    /// `tokenizer.json` and a `preprocessor_config.json`, each written atomically.
    /// `dir` must be new or empty; until the last file is in place it holds a
    /// [`crate::run_dir::PARTIAL`] marker, so a folder whose writer was killed is never loaded.
    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::run_dir::start_partial(dir)?;
        save_hf(&self.model, dir)?;
        self.tokenizer.save(&dir.join("tokenizer.json"))?;
        let json = serde_json::to_vec_pretty(&self.preprocess.to_hf_json())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&dir.join("preprocessor_config.json"), &json)?;
        crate::run_dir::finish_partial(dir)
    }

    /// Decode and preprocess image files in parallel.
    ///
    /// # Shapes
    /// - returns `[n, 3, image_size, image_size]`
    pub fn pixels(&self, paths: &[PathBuf]) -> Result<Tensor<4>> {
        let size = self.model.config.vision_config.image_size;
        let planes: Vec<Vec<f32>> = paths
            .par_iter()
            .map(|p| decode_image(p).map(|img| self.preprocess.apply(&img)))
            .collect::<Result<_>>()?;
        let n = planes.len();
        let data = TensorData::new(planes.concat(), [n, 3, size, size]);
        Ok(Tensor::from_data(data, &self.device))
    }

    /// L2-normalised image embeddings, one row per file, in order.
    pub fn embed_images(&self, paths: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        let mut rows = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(EMBED_BATCH) {
            let features = l2_normalize(self.model.encode_image_threaded(self.pixels(chunk)?));
            rows.extend(to_rows(features)?);
        }
        Ok(rows)
    }

    /// L2-normalised text embeddings, one row per text, in order.
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let mut rows = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(EMBED_BATCH) {
            let tokens = self.tokenizer.encode_all(chunk)?;
            let (ids, pool_at) = text_batch(
                &tokens,
                self.model.config.text_config.eos_token_id,
                &self.device,
            );
            rows.extend(to_rows(l2_normalize(
                self.model.encode_text(ids, &pool_at),
            ))?);
        }
        Ok(rows)
    }
}

/// Pad token lists into one id matrix and find where each is pooled: the first `eos_id`, as
/// transformers does (or, for old configs with `eos_token_id == 2`, the highest id).
///
/// # Shapes
/// - returns ids `[n, longest]` and `n` pool positions
pub fn text_batch(
    tokens: &[Vec<u32>],
    eos_id: u32,
    device: &Device,
) -> (Tensor<2, Int>, Vec<usize>) {
    let longest = tokens.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let pool_at: Vec<usize> = tokens
        .iter()
        .map(|ids| {
            if eos_id == 2 {
                // transformers before PR #24773: argmax of the ids (first maximum).
                let max = ids.iter().copied().max().unwrap_or(0);
                ids.iter().position(|&t| t == max).unwrap_or(0)
            } else {
                ids.iter()
                    .position(|&t| t == eos_id)
                    .unwrap_or(ids.len().saturating_sub(1))
            }
        })
        .collect();
    // Padding after the pooled token is never seen (causal attention); pad with the eos id.
    let pad = if eos_id == 2 { 0 } else { eos_id };
    let flat: Vec<i64> = tokens
        .iter()
        .flat_map(|ids| {
            ids.iter()
                .copied()
                .chain(std::iter::repeat(pad))
                .take(longest)
                .map(i64::from)
        })
        .collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [tokens.len(), longest]), device);
    (ids, pool_at)
}

/// A `[n, d]` tensor as rows of f32.
pub fn to_rows(x: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, d] = x.dims();
    let values: Vec<f32> = x
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Invalid(format!("reading results back from the device: {e:?}")))?;
    Ok(values.chunks(d.max(1)).map(<[f32]>::to_vec).collect())
}
