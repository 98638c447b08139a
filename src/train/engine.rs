//! The one training loop, in labelled phases (lr, forward, loss, backward, step, eval, events).
//! A method states only what differs: which parameters train, how the head starts, which loss.
//!
//! Methods trained here: FLYP (contrastive, both towers and logit_scale), FT (cross-entropy on the
//! image tower and a head initialised from the zero-shot head, or from a probe's head for LP-FT),
//! the CE ablation and CLIP pretraining; with per-epoch checkpoints and resume
//! ([`super::checkpoint`]). The linear probe and WiSE-FT live in `crate::methods`.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::Serialize;

use crate::contrastive::contrastive_loss;
use crate::data::folder::stratified_split;
use crate::data::loader::{Loader, LoaderConfig};
use crate::data::prompts::Templates;
use crate::data::{Sample, Scan, SplitMix64};
use crate::embed::{Clip, text_batch};
use crate::error::{Error, Result};
use crate::methods::head::ClassHead;
use crate::methods::zeroshot::evaluate;
use crate::model::{ClipModel, Precision, l2_normalize};
use crate::train::Metrics;
use crate::train::adamw::adamw;
use crate::train::checkpoint;
use crate::train::loss_scale::{LossScale, optimizer_step, scaled};
use crate::train::schedule::warmup_cosine;
use std::path::{Path, PathBuf};

/// What is trained and with which loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    /// FLYP (Goyal et al., CVPR 2023): contrastive loss between each image and a caption of its
    /// class in a template drawn per image per step; both towers and logit_scale train; the
    /// evaluation head is rebuilt from the current text tower.
    Flyp {
        /// Drop same-class off-diagonal pairs from the softmax denominators (the paper's ablation).
        mask_collisions: bool,
    },
    /// Standard fine-tuning (WiSE-FT's recipe): cross-entropy over normalise(image)·weightᵀ + bias
    /// ([`Head`]), the head starting as the zero-shot head s·T, bias 0 (or
    /// [`TrainConfig::initial_head`]: LP-FT starts from the linear probe); the text tower and
    /// logit_scale stay frozen.
    Finetune,
    /// FLYP's CE ablation: both towers and logit_scale train with cross-entropy over a head built
    /// each step from the live text tower, one random template per class.
    CeAblation,
    /// CLIP pretraining: contrastive loss between each image and its own caption (the
    /// `caption` of its sample; a CSV manifest may list an image once per caption); both towers
    /// and logit_scale train; the kept model is the best epoch on the first evaluation set (a
    /// validation set), or the last epoch when there is none.
    Pretrain,
}

/// Training settings (defaults: FLYP's, from `../shared/REFERENCE.md`).
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    pub method: Method,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Linear warmup steps; `None` = 500 capped at 10 % of the steps.
    pub warmup: Option<usize>,
    pub seed: u64,
    /// Random resized crop (scale 0.9–1.0) on training images.
    pub augment: bool,
    #[serde(skip)]
    pub templates: Templates,
    /// Where to keep the per-epoch checkpoint (`checkpoint/`) and the best epoch (`best/`).
    #[serde(skip)]
    pub run_dir: Option<PathBuf>,
    /// Continue from `run_dir/checkpoint` when it exists.
    #[serde(skip)]
    pub resume: bool,
    /// FT's starting head (LP-FT: the probe's); default: the zero-shot head.
    #[serde(skip)]
    pub initial_head: Option<ClassHead>,
    /// Clip the global gradient norm to this (torch's `clip_grad_norm_`); off by default, as in
    /// the FLYP code (WiSE-FT's FT recipe uses 1.0).
    pub clip_grad_norm: Option<f64>,
    /// Clamp logit_scale to [0, ln 100] after every step (open_clip); off by default, as in the
    /// FLYP code.
    pub clamp_logit_scale: bool,
    /// The towers' compute type; `Mixed` (f16 blocks) trains with a dynamic loss scale.
    #[serde(default)]
    pub precision: Precision,
    /// Print a progress line (step, images/s, ETA) to stderr when it is a terminal.
    #[serde(skip)]
    pub progress: bool,
    /// What a caller on another thread sees and controls while the loop runs (the app).
    #[serde(skip)]
    pub hooks: Hooks,
}

/// One finished step, as the loop reports it to [`Hooks::on_step`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps done in the whole run, and the run's total.
    pub step: usize,
    pub total: usize,
    pub loss: f64,
    pub lr: f64,
    /// Since this process started the run (a resumed run counts from the resume).
    pub images_per_s: f64,
    pub eta_s: f64,
}

/// Called after every step, from the training thread.
pub type StepObserver = std::sync::Arc<dyn Fn(&StepProgress) + Send + Sync>;

/// Callbacks into a running loop: a step observer and a stop flag (checked after every step;
/// a stopped run returns [`Error::Stopped`] and leaves the last epoch's checkpoint for `resume`).
#[derive(Clone, Default)]
pub struct Hooks {
    pub on_step: Option<StepObserver>,
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("on_step", &self.on_step.is_some())
            .field("stop", &self.stop)
            .finish()
    }
}

impl TrainConfig {
    pub fn flyp() -> Self {
        Self {
            method: Method::Flyp {
                mask_collisions: false,
            },
            epochs: 10,
            batch_size: 256,
            lr: 1e-5,
            weight_decay: 0.1,
            warmup: None,
            seed: 0,
            augment: true,
            templates: Templates::openai(),
            run_dir: None,
            resume: false,
            initial_head: None,
            clip_grad_norm: None,
            clamp_logit_scale: false,
            precision: Precision::F32,
            progress: false,
            hooks: Hooks::default(),
        }
    }
}

/// The classes and the image sets of a run.
pub struct TrainData {
    pub classes: Vec<String>,
    pub prompt_names: Vec<String>,
    pub train: Vec<Sample>,
    /// Evaluation sets by name ("val", "test", OOD sets), evaluated every epoch.
    pub evals: Vec<(String, Vec<Sample>)>,
}

impl TrainData {
    /// The data of a run from folders: the training folder (any layout `flyp scan` reads), its
    /// validation set (`val`, else the folder's val split, else a seeded stratified 10 % of the
    /// training images), its test set (`test`, else the folder's test split, if any) and extra
    /// named sets, all aligned to the training classes. Returns the scans' warnings too.
    pub fn from_folders(
        train: &Path,
        val: Option<&Path>,
        test: Option<&Path>,
        evals: &[(String, PathBuf)],
        seed: u64,
    ) -> Result<(Self, Vec<String>)> {
        check_eval_names(evals)?;
        let scan = Scan::folder(train)?;
        let mut warnings = scan.warnings.clone();
        if !scan.skipped.is_empty() {
            warnings.push(format!(
                "{}: skipped {} file(s) that are not usable images (`flyp scan {}` lists each and why)",
                train.display(),
                scan.skipped.len(),
                train.display()
            ));
        }
        let mut aligned = |dir: &Path| -> Result<Vec<Sample>> {
            let (samples, w) = Scan::folder(dir)?.align_to(&scan.classes)?;
            warnings.extend(w);
            Ok(samples)
        };
        let (train_samples, val_samples) = match (val, &scan.val) {
            (Some(dir), _) => (scan.train.clone(), aligned(dir)?),
            (None, Some(v)) => (scan.train.clone(), v.clone()),
            (None, None) => stratified_split(&scan.train, scan.classes.len(), 0.1, seed),
        };
        let mut sets = vec![("val".to_string(), val_samples)];
        match (test, &scan.test) {
            (Some(dir), _) => sets.push(("test".into(), aligned(dir)?)),
            (None, Some(t)) => sets.push(("test".into(), t.clone())),
            _ => {}
        }
        for (name, dir) in evals {
            sets.push((name.clone(), aligned(dir)?));
        }
        let data = Self {
            classes: scan.classes.clone(),
            prompt_names: scan.prompt_names.clone(),
            train: train_samples,
            evals: sets,
        };
        Ok((data, warnings))
    }
}

/// Refuse `--eval` names that would overwrite another set's results (which are keyed by name):
/// a name used twice, or one of the run's own sets (`train`, `val`, `test`, `all`).
pub fn check_eval_names(evals: &[(String, PathBuf)]) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for (name, dir) in evals {
        if ["train", "val", "test", "all"].contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "--eval {name}={}: \"{name}\" names one of the run's own sets; choose another name",
                dir.display()
            )));
        }
        if names.contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "--eval {name}={}: a second set named \"{name}\"; give each --eval its own name",
                dir.display()
            )));
        }
        names.push(name);
    }
    Ok(())
}

/// What one epoch did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub steps: usize,
    pub mean_loss: f64,
    pub first_loss: f64,
    pub last_lr: f64,
    pub logit_scale: f64,
    pub evals: Vec<(String, Metrics)>,
    /// Mixed precision: steps skipped because a gradient overflowed f16 (the loss scale halves).
    #[serde(default)]
    pub skipped_steps: usize,
}

/// FT's trainable head: logits = normalise(features)·weightᵀ + bias, as WiSE-FT's code builds it
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

/// What a run produced.
pub struct Trained {
    /// The model after the last epoch (for FT, with its head).
    pub clip: Clip,
    pub head: Option<Head>,
    /// The epoch (1-based) with the best top-1 on the first evaluation set (the ID validation
    /// set by convention), and its model and head.
    pub best_epoch: usize,
    pub best_model: ClipModel,
    pub best_head: Option<Head>,
    pub reports: Vec<EpochReport>,
}

/// Train `clip` (loaded on an autodiff device) on `data`; `on_epoch` sees each epoch's report.
pub fn train(
    clip: Clip,
    data: &TrainData,
    config: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Trained> {
    if !clip.device.is_autodiff() {
        return Err(Error::Invalid(
            "training needs the model on an autodiff device".into(),
        ));
    }
    let size = clip.model.config.vision_config.image_size as u32;
    let batch_size = config.batch_size.clamp(1, data.train.len().max(1));
    let loader_config = LoaderConfig {
        batch_size,
        shuffle: true,
        seed: config.seed,
        augment: config.augment,
        drop_last: data.train.len() >= batch_size,
        ..Default::default()
    };
    let loader_samples = &data.train;
    let loader = Loader::new(
        data.train.clone(),
        clip.preprocess.clone(),
        size,
        loader_config,
    );
    let total = loader.batches_per_epoch() * config.epochs;
    let warmup = config
        .warmup
        .unwrap_or_else(|| crate::train::schedule::default_warmup(total));
    let mut optim = adamw(0.9, 0.999, 1e-8, config.weight_decay as f32);
    let mut clip = clip;
    let device = clip.device.clone();
    config.precision.check(&device, "this device")?;
    clip.model = clip.model.with_precision(config.precision);
    let mut loss_scale = (config.precision == Precision::Mixed).then(LossScale::default);
    let mut head = match config.method {
        Method::Finetune => {
            let start = match &config.initial_head {
                Some(h) => h.clone(),
                None => ClassHead::zero_shot(&clip, &data.prompt_names, &config.templates)?,
            };
            Some(Head::new(&start, &clip.device))
        }
        Method::Flyp { .. } | Method::CeAblation | Method::Pretrain => None,
    };
    let mut rng = SplitMix64::new(config.seed ^ 0x5EED);
    let eos = clip.model.config.text_config.eos_token_id;
    let mut reports = Vec::new();
    let mut best: Option<(usize, f64, ClipModel, Option<Head>)> = None;
    let mut step = 0;
    let mut start_epoch = 0;
    if let (Some(dir), true) = (&config.run_dir, config.resume)
        && let Some(state) = checkpoint::read_state(dir)?
    {
        {
            let saved = checkpoint::load(dir, clip.model.clone(), head.clone(), optim)?;
            clip.model = saved.model.with_precision(config.precision);
            head = saved.head;
            optim = saved.optim;
            let best_saved = checkpoint::load_best(dir, clip.model.clone(), head.clone())?;
            best = Some((
                state.best_epoch,
                state.best_score,
                best_saved.0,
                best_saved.1,
            ));
            rng = SplitMix64::new(state.rng);
            step = state.step;
            start_epoch = state.epoch;
            // A run whose epochs are all done (killed before its final outputs) comes back with
            // no epoch to train: the best checkpoint is the result.
            reports = state.reports;
        }
    }
    let show_progress = config.progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = std::time::Instant::now();
    let first_step = step;
    for epoch in start_epoch..config.epochs {
        let (mut loss_sum, mut first_loss, mut steps, mut lr) = (0.0, f64::NAN, 0, 0.0);
        let mut skipped_steps = 0;
        for batch in loader.epoch(epoch as u64) {
            // lr
            lr = warmup_cosine(step, total, warmup, config.lr);
            // forward
            let n = batch.len();
            if n == 0 {
                continue;
            }
            let s = size as usize;
            let pixels =
                Tensor::<4>::from_data(TensorData::new(batch.pixels, [n, 3, s, s]), &device);
            let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
            let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device);
            let image = clip.model.encode_image(pixels);
            // loss
            let loss = match (config.method, &head) {
                (Method::Flyp { mask_collisions }, _) => {
                    let captions: Vec<String> = batch
                        .labels
                        .iter()
                        .map(|&l| {
                            let t = &config.templates.0[rng.below(config.templates.len())];
                            t.replacen("{}", &data.prompt_names[l], 1)
                        })
                        .collect();
                    let tokens = clip.tokenizer.encode_all(&captions)?;
                    let (ids, pool_at) = text_batch(&tokens, eos, &device);
                    let text = clip.model.encode_text(ids, &pool_at);
                    let scale = clip.model.logit_scale.val();
                    contrastive_loss(image, text, scale, mask_collisions.then_some(labels))
                }
                (Method::Pretrain, _) => {
                    let captions = batch
                        .indices
                        .iter()
                        .map(|&i| {
                            let sample = &loader_samples[i];
                            sample.caption.clone().ok_or_else(|| {
                                Error::Invalid(format!(
                                    "{}: pretraining needs a caption for every image (CSV `path,label,caption`)",
                                    sample.path.display()
                                ))
                            })
                        })
                        .collect::<Result<Vec<String>>>()?;
                    let tokens = clip.tokenizer.encode_all(&captions)?;
                    let (ids, pool_at) = text_batch(&tokens, eos, &device);
                    let text = clip.model.encode_text(ids, &pool_at);
                    let scale = clip.model.logit_scale.val();
                    contrastive_loss(image, text, scale, None)
                }
                (Method::Finetune, Some(h)) => cross_entropy(h.logits(image), labels),
                (Method::CeAblation, _) => {
                    let captions: Vec<String> = data
                        .prompt_names
                        .iter()
                        .map(|name| {
                            let t = &config.templates.0[rng.below(config.templates.len())];
                            t.replacen("{}", name, 1)
                        })
                        .collect();
                    let tokens = clip.tokenizer.encode_all(&captions)?;
                    let (ids, pool_at) = text_batch(&tokens, eos, &device);
                    let live_head = l2_normalize(clip.model.encode_text(ids, &pool_at)); // [k, d]
                    let scale = clip.model.logit_scale.val().exp().unsqueeze::<2>();
                    let logits = l2_normalize(image).matmul(live_head.transpose()) * scale;
                    cross_entropy(logits, labels)
                }
                (Method::Finetune, None) => {
                    return Err(Error::Invalid(
                        "internal: fine-tuning without a head".into(),
                    ));
                }
            };
            let value: f64 = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(Error::Invalid(format!(
                    "the loss became {value} at epoch {} step {step} (lr {lr:.2e}): stopping; lower the learning rate",
                    epoch + 1
                )));
            }
            // backward + step (a mixed-precision step whose gradients overflowed is skipped)
            let grads = scaled(loss_scale.as_ref(), loss).backward();
            match head.take() {
                Some(h) => {
                    // FT: the image tower and the head train; text tower and logit_scale do not.
                    let pair = FtModel {
                        vision: clip.model,
                        head: h,
                    };
                    let g = GradientsParams::from_grads(grads, &pair);
                    let (pair, applied) = optimizer_step(
                        &mut optim,
                        lr,
                        pair,
                        g,
                        loss_scale.as_mut(),
                        config.clip_grad_norm,
                    );
                    skipped_steps += usize::from(!applied);
                    clip.model = pair.vision;
                    head = Some(pair.head);
                }
                None => {
                    let g = GradientsParams::from_grads(grads, &clip.model);
                    let (model, applied) = optimizer_step(
                        &mut optim,
                        lr,
                        clip.model,
                        g,
                        loss_scale.as_mut(),
                        config.clip_grad_norm,
                    );
                    clip.model = model;
                    skipped_steps += usize::from(!applied);
                    if config.clamp_logit_scale {
                        let scale = clip.model.logit_scale;
                        clip.model.logit_scale =
                            scale.map(|t| t.clamp(0.0, 100f64.ln()).detach().require_grad());
                    }
                }
            }
            if first_loss.is_nan() {
                first_loss = value;
            }
            loss_sum += value;
            steps += 1;
            step += 1;
            let done = (step - first_step).max(1) as f64;
            let per_step = started.elapsed().as_secs_f64() / done;
            let images_per_s = batch_size as f64 / per_step;
            let eta = per_step * (total - step) as f64;
            if let Some(on_step) = &config.hooks.on_step {
                on_step(&StepProgress {
                    epoch: epoch + 1,
                    step,
                    total,
                    loss: value,
                    lr,
                    images_per_s,
                    eta_s: eta,
                });
            }
            if show_progress && (step % 5 == 0 || step == total) {
                eprint!(
                    "\r  epoch {}/{} step {step}/{total}  {images_per_s:.0} images/s  ETA {:.0} s   ",
                    epoch + 1,
                    config.epochs,
                    eta
                );
                if step == total {
                    eprintln!();
                }
            }
            let stop = config.hooks.stop.as_ref();
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                return Err(Error::Stopped {
                    epoch: epoch + 1,
                    step,
                });
            }
        }
        // eval
        let eval_clip = clip.for_inference();
        let eval_head = match &head {
            Some(h) => h.to_class_head(),
            None => ClassHead::zero_shot(&eval_clip, &data.prompt_names, &config.templates)?,
        };
        let mut evals = Vec::new();
        for (name, samples) in &data.evals {
            let (metrics, _) = evaluate(&eval_clip, &eval_head, samples, batch_size.max(32))?;
            evals.push((name.clone(), metrics));
        }
        // events
        let logit_scale = clip.model.logit_scale.val().into_scalar::<f32>() as f64;
        let report = EpochReport {
            epoch: epoch + 1,
            steps,
            mean_loss: if steps > 0 {
                loss_sum / steps as f64
            } else {
                f64::NAN
            },
            first_loss,
            last_lr: lr,
            logit_scale,
            evals,
            skipped_steps,
        };
        on_epoch(&report);
        let score = report
            .evals
            .first()
            .map_or(f64::NEG_INFINITY, |(_, m)| m.top1);
        // Pretraining without an evaluation set keeps its last epoch; everything else keeps the
        // epoch that scores best on the first evaluation set (a validation set, never a test set).
        let improved = (config.method == Method::Pretrain && report.evals.is_empty())
            || best.as_ref().is_none_or(|(_, b, _, _)| score > *b);
        if improved {
            best = Some((epoch + 1, score, clip.model.clone(), head.clone()));
        }
        reports.push(report);
        // checkpoint
        if let Some(dir) = &config.run_dir {
            if improved {
                checkpoint::save_best(dir, &clip.model, head.as_ref())?;
            }
            let (best_epoch, best_score) = best.as_ref().map_or((0, 0.0), |b| (b.0, b.1));
            let state = checkpoint::State {
                epoch: epoch + 1,
                step,
                rng: rng.state(),
                best_epoch,
                best_score,
                reports: reports.clone(),
            };
            checkpoint::save(dir, &clip.model, head.as_ref(), &optim, &state)?;
        }
    }
    let (best_epoch, _, best_model, best_head) = best
        .ok_or_else(|| Error::Invalid("no epoch was trained (epochs must be at least 1)".into()))?;
    Ok(Trained {
        clip,
        head,
        best_epoch,
        best_model,
        best_head,
        reports,
    })
}

/// FT's trainable pair: the CLIP model (only its image side receives gradients) and the head.
#[derive(Module, Debug)]
struct FtModel {
    vision: ClipModel,
    head: Head,
}

/// Mean cross-entropy of `logits` `[n, k]` against class indices `[n]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let n = targets.dims()[0];
    let picked = log_softmax(logits, 1).gather(1, targets.unsqueeze_dim::<2>(1)); // [n, 1]
    -picked.sum() / n as f64
}
