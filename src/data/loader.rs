//! Batches for the device: decode + preprocess on worker threads (rayon), a background thread
//! that keeps `prefetch` batches ready ahead of the consumer, a seeded shuffle per epoch, and
//! FLYP's light train augmentation (random resized crop, scale 0.9–1.0) as an option.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use burn::prelude::*;
use rayon::prelude::*;

use super::SplitMix64;
use super::folder::{Sample, Skipped};
use super::transform::{Preprocess, decode_image};
use crate::error::{Error, Result};

/// How batches are made.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle each epoch (seeded by `seed` and the epoch number).
    pub shuffle: bool,
    pub seed: u64,
    /// Random resized crop (area 0.9–1.0, aspect 3/4–4/3) instead of resize + center crop.
    pub augment: bool,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Drop a last, smaller batch (contrastive training wants full batches).
    pub drop_last: bool,
    /// Keep preprocessed images here (f32 files keyed by path, size, mtime and preprocessing) and
    /// read them back instead of decoding again. Not used with `augment` (every epoch differs).
    pub cache_dir: Option<PathBuf>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            shuffle: false,
            seed: 0,
            augment: false,
            prefetch: 2,
            drop_last: false,
            cache_dir: None,
        }
    }
}

/// One batch, ready to upload.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[n, 3, size, size]`, CLIP-normalised, channel-major.
    pub pixels: Vec<f32>,
    pub labels: Vec<usize>,
    /// Positions of the batch's samples in the loader's sample list.
    pub indices: Vec<usize>,
    /// Files that failed to decode now (the scan had read them): left out of this batch.
    pub skipped: Vec<Skipped>,
}

impl Batch {
    /// Move the pixels out as a `[n, 3, size, size]` tensor on `device`, for evaluation: a file that
    /// failed to decode (it had scanned fine) is an error naming it.
    pub fn take_pixels(&mut self, size: u32, device: &Device) -> Result<Tensor<4>> {
        if let Some(s) = self.skipped.first() {
            return Err(Error::Image {
                path: s.path.clone(),
                reason: s.reason.clone(),
            });
        }
        let (n, s) = (self.len(), size as usize);
        let pixels = std::mem::take(&mut self.pixels);
        Ok(Tensor::from_data(
            TensorData::new(pixels, [n, 3, s, s]),
            device,
        ))
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Makes batches of `samples`.
#[derive(Clone)]
pub struct Loader {
    samples: Arc<Vec<Sample>>,
    preprocess: Arc<Preprocess>,
    /// Output side (the model's image size).
    size: u32,
    pub config: LoaderConfig,
}

impl Loader {
    pub fn new(
        samples: Vec<Sample>,
        preprocess: Preprocess,
        size: u32,
        config: LoaderConfig,
    ) -> Self {
        Self {
            samples: Arc::new(samples),
            preprocess: Arc::new(preprocess),
            size,
            config,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let b = self.config.batch_size.max(1);
        if self.config.drop_last {
            self.len() / b
        } else {
            self.len().div_ceil(b)
        }
    }

    /// The sample order of `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if self.config.shuffle {
            SplitMix64::new(self.config.seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F))
                .shuffle(&mut order);
        }
        order
    }

    /// Iterate over `epoch`'s batches; a background thread prepares them ahead. Dropping the
    /// iterator stops it.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Batch> + use<> {
        let (tx, rx) = sync_channel(self.config.prefetch.max(1));
        let loader = self.clone();
        let order = self.order(epoch);
        std::thread::Builder::new()
            .name("flyp-loader".into())
            .spawn(move || {
                let b = loader.config.batch_size.max(1);
                for chunk in order.chunks(b) {
                    if loader.config.drop_last && chunk.len() < b {
                        break;
                    }
                    if tx.send(loader.make_batch(chunk, epoch)).is_err() {
                        break; // the consumer went away
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("flyp: cannot start the loader thread: {e}"));
        Batches { rx }
    }

    /// Decode and preprocess `indices` in parallel, in order.
    pub fn make_batch(&self, indices: &[usize], epoch: u64) -> Batch {
        let plane = 3 * (self.size as usize) * (self.size as usize);
        let results: Vec<(usize, std::result::Result<Vec<f32>, Skipped>)> = indices
            .par_iter()
            .map(|&i| {
                let sample = &self.samples[i];
                let cached = self.cache_path(sample);
                if let Some(pixels) = cached.as_deref().and_then(|p| read_f32(p, plane)) {
                    return (i, Ok(pixels));
                }
                let pixels = decode_image(&sample.path)
                    .map(|img| {
                        if self.config.augment {
                            let mut rng = SplitMix64::new(
                                self.config.seed
                                    ^ epoch.wrapping_mul(0x9E37_79B9)
                                    ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
                            );
                            self.preprocess
                                .apply_random_resized_crop(&img, self.size, &mut rng)
                        } else {
                            self.preprocess.apply(&img)
                        }
                    })
                    .map_err(|e| Skipped {
                        path: sample.path.clone(),
                        reason: e.to_string(),
                    });
                if let (Some(path), Ok(p)) = (&cached, &pixels) {
                    write_f32(path, p); // best effort: a failed cache write costs a decode later
                }
                (i, pixels)
            })
            .collect();
        let mut batch = Batch {
            pixels: Vec::with_capacity(indices.len() * plane),
            labels: Vec::new(),
            indices: Vec::new(),
            skipped: Vec::new(),
        };
        for (i, r) in results {
            match r {
                Ok(p) if p.len() == plane => {
                    batch.pixels.extend(p);
                    batch.labels.push(self.samples[i].label);
                    batch.indices.push(i);
                }
                Ok(p) => batch.skipped.push(Skipped {
                    path: self.samples[i].path.clone(),
                    reason: format!("preprocessed to {} values, expected {plane}", p.len()),
                }),
                Err(s) => batch.skipped.push(s),
            }
        }
        batch
    }
}

impl Loader {
    /// Where `sample`'s preprocessed pixels are cached, when caching applies.
    fn cache_path(&self, sample: &Sample) -> Option<PathBuf> {
        let dir = self
            .config
            .cache_dir
            .as_ref()
            .filter(|_| !self.config.augment)?;
        let meta = std::fs::metadata(&sample.path).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let key = format!(
            "{}|{}|{mtime}|{}|{:?}",
            sample.path.display(),
            meta.len(),
            self.size,
            self.preprocess
        );
        Some(dir.join(format!("{:016x}.f32", fnv1a(key.as_bytes()))))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn read_f32(path: &Path, expected: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    (bytes.len() == expected * 4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = crate::model::weights::write_atomic(path, &bytes);
}

struct Batches {
    rx: Receiver<Batch>,
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}
