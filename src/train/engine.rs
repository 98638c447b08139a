//! The one training loop, in labelled phases (lr, forward, loss, backward, step, eval, events),
//! with per-epoch checkpoints and resume ([`super::checkpoint`]) and the best epoch kept.
//!
//! It knows no method by name: a method hands it an [`Objective`] (the loss of one batch, and
//! whether a classification head trains beside the image tower); the methods live in
//! `crate::methods`, one file each.

use std::path::PathBuf;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;
use burn::tensor::activation::log_softmax;
use serde::Serialize;

use crate::data::loader::{Loader, LoaderConfig};
use crate::data::prompts::Templates;
use crate::data::{Sample, SplitMix64};
use crate::embed::{Clip, text_batch};
use crate::error::{Error, Result};
use crate::methods::head::{ClassHead, Head};
use crate::methods::zeroshot::evaluate;
use crate::model::{ClipModel, Precision};
use crate::train::Metrics;
use crate::train::adamw::adamw;
use crate::train::checkpoint;
use crate::train::loss_scale::{LossScale, optimizer_step, scaled};
use crate::train::schedule::warmup_cosine;
use burn::optim::ModuleOptimizer;

pub use super::data::{TrainData, check_eval_names};

/// What a method trains and with which loss: the part of a training step that differs between
/// methods.
pub trait Objective: Send + Sync {
    /// The method's name (what `config.json` records).
    fn name(&self) -> &'static str;
    /// A classification head ([`Head`]) trains beside the image tower, starting from
    /// [`TrainConfig::initial_head`] or else the zero-shot head; the text tower and logit_scale
    /// receive no gradient. Without a head, the whole model trains and each epoch is evaluated
    /// with the zero-shot head of the live text tower.
    fn trains_head(&self) -> bool {
        false
    }
    /// The loss of one batch (a scalar `[1]` on the batch's autodiff device).
    fn loss(&self, batch: StepBatch<'_>) -> Result<Tensor<1>>;
}

impl std::fmt::Debug for dyn Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One training batch as an [`Objective`] sees it.
pub struct StepBatch<'a> {
    /// The live model (on the autodiff device) and its tokenizer.
    pub clip: &'a Clip,
    /// The image tower's output for the batch, `[n, projection_dim]`, not normalised.
    pub image: Tensor<2>,
    /// The class of each image, and the same on the device.
    pub labels: &'a [usize],
    pub targets: Tensor<1, Int>,
    /// The batch's samples (their captions, for pretraining).
    pub samples: Vec<&'a Sample>,
    /// The names the prompts use, by class.
    pub prompt_names: &'a [String],
    pub templates: &'a Templates,
    /// The run's seeded random stream (template draws); checkpointed with the run.
    pub rng: &'a mut SplitMix64,
    /// The trainable head, when the objective [`trains_head`](Objective::trains_head).
    pub head: Option<&'a Head>,
}

impl StepBatch<'_> {
    /// Text-tower features `[n, projection_dim]` of `captions`.
    pub fn encode_texts(&self, captions: &[String]) -> Result<Tensor<2>> {
        let tokens = self.clip.tokenizer.encode_all(captions)?;
        let eos = self.clip.model.config.text_config.eos_token_id;
        let (ids, pool_at) = text_batch(&tokens, eos, &self.clip.device);
        Ok(self.clip.model.encode_text(ids, &pool_at))
    }

    /// A caption of class `class` in a template drawn from the run's stream.
    pub fn random_prompt(&mut self, class: usize) -> String {
        let t = &self.templates.0[self.rng.below(self.templates.len())];
        t.replacen("{}", &self.prompt_names[class], 1)
    }
}

/// The optimisation settings of a training run, named as `flyp train`'s flags are (defaults:
/// FLYP's, as the paper's code runs CLIP ViT-B).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hyper {
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// AdamW's peak learning rate (after warmup; cosine decay).
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub wd: f64,
    /// Linear warmup steps; `None` = 500 capped at 10 % of the steps.
    pub warmup: Option<usize>,
    pub seed: u64,
    /// Random resized crop (scale 0.9–1.0) on training images.
    pub augment: bool,
}

impl Default for Hyper {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch: 256,
            lr: 1e-5,
            wd: 0.1,
            warmup: None,
            seed: 0,
            augment: true,
        }
    }
}

/// Training settings (defaults: FLYP's, as the paper's code runs it).
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    #[serde(serialize_with = "objective_name")]
    pub objective: Arc<dyn Objective>,
    #[serde(flatten)]
    pub hyper: Hyper,
    #[serde(skip)]
    pub templates: Templates,
    /// Where to keep the per-epoch checkpoint (`checkpoint/`) and the best epoch (`best/`).
    #[serde(skip)]
    pub run_dir: Option<PathBuf>,
    /// Continue from `run_dir/checkpoint` when it exists.
    #[serde(skip)]
    pub resume: bool,
    /// The starting head of an objective that trains one (LP-FT: the probe's); default: the
    /// zero-shot head.
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

/// Callbacks into a running loop: a step observer and a stop flag (checked after every step; a
/// stopped run returns its best finished epoch with [`Trained::stopped`] set, or
/// [`Error::Stopped`] before any epoch finished, and leaves the last epoch's checkpoint for
/// `resume`).
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
    /// `objective` with FLYP's settings (the paper's code for CLIP ViT-B): 10 epochs, batch
    /// 256, lr 1e-5, wd 0.1, warmup then cosine, the random resized crop, OpenAI's templates.
    pub fn new(objective: Arc<dyn Objective>) -> Self {
        Self {
            objective,
            hyper: Hyper::default(),
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

fn objective_name<S: serde::Serializer>(
    objective: &Arc<dyn Objective>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(objective.name())
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
    /// Stopped by [`Hooks::stop`] at (epoch, step) after at least one finished epoch: the best
    /// finished epoch is the result, and the run folder keeps the last checkpoint for `resume`.
    pub stopped: Option<(usize, usize)>,
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
    let batch_size = config.hyper.batch.clamp(1, data.train.len().max(1));
    let loader_config = LoaderConfig {
        batch_size,
        shuffle: true,
        seed: config.hyper.seed,
        augment: config.hyper.augment,
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
    let total = loader.batches_per_epoch() * config.hyper.epochs;
    let warmup = config
        .hyper
        .warmup
        .unwrap_or_else(|| crate::train::schedule::default_warmup(total));
    let mut optim = adamw(0.9, 0.999, 1e-8, config.hyper.wd as f32);
    let mut clip = clip;
    let device = clip.device.clone();
    config.precision.check(&device, "this device")?;
    clip.model = clip.model.with_precision(config.precision);
    let mut loss_scale = (config.precision == Precision::Mixed).then(LossScale::default);
    let objective = config.objective.as_ref();
    let mut head = if objective.trains_head() {
        let start = match &config.initial_head {
            Some(h) => h.clone(),
            None => ClassHead::zero_shot(&clip, &data.prompt_names, &config.templates)?,
        };
        Some(Head::new(&start, &clip.device))
    } else {
        None
    };
    let mut rng = SplitMix64::new(config.hyper.seed ^ 0x5EED);
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
    let mut stopped = None;
    for epoch in start_epoch..config.hyper.epochs {
        let mut losses = EpochLosses::default();
        let mut lr = 0.0;
        let mut skipped_steps = 0;
        // What a read of the pending losses reports: per step, its loss (finite: a NaN or an
        // infinity ends the run here, before this epoch's checkpoint is written), the progress
        // hook and the terminal line.
        let report_steps = |read: Vec<(usize, f64, f64)>, losses: &mut EpochLosses| {
            for (step, value, lr) in read {
                if !value.is_finite() {
                    return Err(Error::Invalid(format!(
                        "the loss became {value} at epoch {} step {step} (lr {lr:.2e}): stopping; lower the learning rate",
                        epoch + 1
                    )));
                }
                losses.add(value);
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
                        config.hyper.epochs,
                        eta
                    );
                    if step == total {
                        eprintln!();
                    }
                }
            }
            Ok(())
        };
        let mut pending = PendingLosses::default();
        for batch in loader.epoch(epoch as u64) {
            // lr
            lr = warmup_cosine(step, total, warmup, config.hyper.lr);
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
            let loss = objective.loss(StepBatch {
                clip: &clip,
                image,
                labels: &batch.labels,
                targets: labels,
                samples: batch.indices.iter().map(|&i| &loader_samples[i]).collect(),
                prompt_names: &data.prompt_names,
                templates: &config.templates,
                rng: &mut rng,
                head: head.as_ref(),
            })?;
            pending.push(&loss, step + 1, lr);
            // backward + step (a mixed-precision step whose gradients overflowed is skipped)
            let grads = backward(loss, loss_scale.as_ref());
            let (model, trained_head, applied) = update(
                &mut optim,
                lr,
                clip.model,
                head.take(),
                loss_scale.as_mut(),
                config.clip_grad_norm,
                grads,
            );
            clip.model = model;
            head = trained_head;
            skipped_steps += usize::from(!applied);
            if config.clamp_logit_scale && head.is_none() {
                let scale = clip.model.logit_scale;
                clip.model.logit_scale =
                    scale.map(|t| t.clamp(0.0, 100f64.ln()).detach().require_grad());
            }
            step += 1;
            if pending.len() >= LOSS_READ_EVERY {
                report_steps(pending.read()?, &mut losses)?;
            }
            let stop = config.hooks.stop.as_ref();
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                stopped = Some((epoch + 1, step));
                break;
            }
        }
        report_steps(pending.read()?, &mut losses)?;
        let EpochLosses {
            sum: loss_sum,
            first: first_loss,
            steps,
        } = losses;
        if stopped.is_some() {
            // The unfinished epoch is dropped: the result is the best finished one.
            break;
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
        // The epoch that scores best on the first evaluation set (a validation set, never a test
        // set); without an evaluation set (pretraining on captions alone), the last epoch.
        let improved =
            report.evals.is_empty() || best.as_ref().is_none_or(|(_, b, _, _)| score > *b);
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
    let (best_epoch, _, best_model, best_head) = match (best, stopped) {
        (Some(best), _) => best,
        (None, Some((epoch, step))) => return Err(Error::Stopped { epoch, step }),
        (None, None) => {
            return Err(Error::Invalid(
                "no epoch was trained (epochs must be at least 1)".into(),
            ));
        }
    };
    Ok(Trained {
        clip,
        head,
        best_epoch,
        best_model,
        best_head,
        reports,
        stopped,
    })
}

/// Steps between reads of the loss: the device runs ahead of the host for this many steps (a read
/// waits for everything queued before it). A NaN loss is seen at most this many steps late, and
/// always before the epoch's evaluation and checkpoint.
pub const LOSS_READ_EVERY: usize = 10;

/// Losses of the steps not read yet, on the device: (loss, step number, learning rate).
#[derive(Default)]
struct PendingLosses(Vec<(Tensor<1>, usize, f64)>);

impl PendingLosses {
    fn push(&mut self, loss: &Tensor<1>, step: usize, lr: f64) {
        self.0.push((loss.clone().detach().reshape([1]), step, lr));
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// All pending losses in one read: (step, loss, lr) in step order.
    fn read(&mut self) -> Result<Vec<(usize, f64, f64)>> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.0);
        let losses = Tensor::cat(pending.iter().map(|p| p.0.clone()).collect(), 0);
        let values = losses
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Device(format!("reading the losses back: {e:?}")))?;
        Ok(pending
            .iter()
            .zip(values)
            .map(|((_, step, lr), value)| (*step, value as f64, *lr))
            .collect())
    }
}

/// An epoch's losses as they are read: sum, first, count.
struct EpochLosses {
    sum: f64,
    first: f64,
    steps: usize,
}

impl Default for EpochLosses {
    fn default() -> Self {
        Self {
            sum: 0.0,
            first: f64::NAN,
            steps: 0,
        }
    }
}

impl EpochLosses {
    fn add(&mut self, value: f64) {
        if self.first.is_nan() {
            self.first = value;
        }
        self.sum += value;
        self.steps += 1;
    }
}

/// The gradients of `loss` (scaled first under mixed precision).
pub fn backward(loss: Tensor<1>, loss_scale: Option<&LossScale>) -> Gradients {
    scaled(loss_scale, loss).backward()
}

/// One optimizer step on `grads`: with a head, the model (only its image side receives
/// gradients) and the head train together; without, the whole model. Returns whether the step was
/// applied (a mixed-precision step whose gradients overflowed is skipped). The step benchmark runs
/// this same function.
pub fn update(
    optim: &mut ModuleOptimizer,
    lr: f64,
    model: ClipModel,
    head: Option<Head>,
    loss_scale: Option<&mut LossScale>,
    clip_grad_norm: Option<f64>,
    grads: Gradients,
) -> (ClipModel, Option<Head>, bool) {
    match head {
        Some(head) => {
            let pair = FtModel {
                vision: model,
                head,
            };
            let g = GradientsParams::from_grads(grads, &pair);
            let (pair, applied) = optimizer_step(optim, lr, pair, g, loss_scale, clip_grad_norm);
            (pair.vision, Some(pair.head), applied)
        }
        None => {
            let g = GradientsParams::from_grads(grads, &model);
            let (model, applied) = optimizer_step(optim, lr, model, g, loss_scale, clip_grad_norm);
            (model, None, applied)
        }
    }
}

/// A head-training objective's trainable pair: the CLIP model and the head.
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
