//! Training-step throughput (`flyp bench step`): the FLYP step and the FT step on random weights
//! and random inputs of a preset's shapes, timed after warm-up with a device sync per step. The
//! PyTorch peer (`scripts/bench_peer.py`) runs the same shapes, loss and optimizer.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::contrastive::contrastive_loss;
use crate::error::{Error, Result};
use crate::methods::finetune::head_cross_entropy;
use crate::methods::head::{ClassHead, Head};
use crate::model::{ClipConfig, ClipModel, Precision, l2_normalize};
use crate::train::adamw::adamw;
use crate::train::engine::{backward, update};
use crate::train::loss_scale::LossScale;

/// The step to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Both towers forward and backward, contrastive loss, AdamW on every parameter.
    Flyp,
    /// Image tower + a 1000-class head (the engine's FT head: s·W + b), cross-entropy, AdamW.
    Finetune,
    /// Evaluation: the image tower forward, no autodiff (what zero-shot evaluation and WiSE-FT
    /// curves spend their time on).
    Eval,
    /// Both towers' forward, no autodiff: the evaluation counterpart of the FLYP step's forward.
    EvalBoth,
}

/// A small CLIP for demos and CPU benchmarks: 64 px images, patch 8, widths 192/128, 4 layers.
pub fn tiny_config() -> ClipConfig {
    let mut c = ClipConfig::default();
    c.vision_config.image_size = 64;
    c.vision_config.patch_size = 8;
    c.vision_config.hidden_size = 192;
    c.vision_config.intermediate_size = 768;
    c.vision_config.num_hidden_layers = 4;
    c.vision_config.num_attention_heads = 3;
    c.text_config.hidden_size = 128;
    c.text_config.intermediate_size = 512;
    c.text_config.num_hidden_layers = 4;
    c.text_config.num_attention_heads = 2;
    c.projection_dim = 128;
    c
}

/// What one benchmark measures: a step of `kind` on `batch` images of `config`'s shapes, computed
/// in `precision`.
#[derive(Debug, Clone)]
pub struct StepBench {
    pub config: ClipConfig,
    pub kind: StepKind,
    pub batch: usize,
    pub precision: Precision,
    /// Also time the forward pass, the backward pass and the optimizer step on their own (a device
    /// sync between them).
    pub phases: bool,
    /// cubecl's kernel log of this process ([`log_kernel_launches`]): count the timed steps'
    /// launches into [`StepTiming::kernels`].
    pub kernel_log: Option<PathBuf>,
    /// Clip the gradients' global norm to this, as FT's recipe does by default (1.0).
    pub clip_grad_norm: Option<f64>,
}

/// Kernel launches of one step (or one evaluation forward), by kind, from cubecl's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounts {
    pub total: usize,
    /// Matrix products (burn's `MatmulEntry`).
    pub matmul: usize,
    /// Element-wise kernels, fused or not (`ElemwiseFuse`, `KernelBinop`, `UnaryFloat`, fills).
    pub elementwise: usize,
    /// Reductions (`ReduceKernel*`, scans).
    pub reduce: usize,
    /// Copies, slices, casts, gathers and scatters: data moved, nothing computed.
    pub layout: usize,
    /// Everything else (this project's WGSL kernels, burn's fused attention, convolutions, …).
    pub other: usize,
}

impl KernelCounts {
    /// Count the launches cubecl logs at its `minimal` profiling level ("Executing NAME").
    /// cubecl's own throughput probes (autotune's launch-overhead and bandwidth tests) are not the
    /// model's kernels and are left out.
    pub fn parse(log: &str) -> Self {
        let mut counts = Self::default();
        for name in log.lines().filter_map(|l| l.strip_prefix("Executing ")) {
            let name = name.trim();
            if ["Throughput", "LaunchOverhead", "PrimeBuffer"]
                .iter()
                .any(|probe| name.contains(probe))
            {
                continue;
            }
            let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
            counts.total += 1;
            if has(&["Matmul", "matmul"]) {
                counts.matmul += 1;
            } else if has(&["Reduce", "Cumulative", "reduce"]) {
                counts.reduce += 1;
            } else if has(&[
                "Copy", "Slice", "Cast", "Gather", "Scatter", "Cat", "Select", "Pack",
            ]) {
                counts.layout += 1;
            } else if has(&[
                "Elemwise",
                "Binop",
                "Unary",
                "Full",
                "MaskFill",
                "MaskWhere",
                "Clamp",
            ]) {
                counts.elementwise += 1;
            } else {
                counts.other += 1;
            }
        }
        counts
    }
}

/// Make cubecl log every kernel launch of this process into `path` (its `minimal` profiling
/// level: a line per launch, no timing, no sync). Must run before the first cubecl device opens;
/// returns false when cubecl's configuration was already fixed.
pub fn log_kernel_launches(path: &std::path::Path) -> bool {
    use burn_cubecl::cubecl::config::profiling::ProfilingLogLevel;
    use burn_cubecl::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut config = CubeClRuntimeConfig::default();
    config.profiling.logger.level = ProfilingLogLevel::Minimal;
    config.profiling.logger.file = Some(path.to_path_buf());
    config.profiling.logger.append = false;
    CubeClRuntimeConfig::try_set(config)
}

/// The length of the kernel log once cubecl's logger (a background task) has written what it was
/// sent: the length that holds still for a second (on a busy 2-core machine 200 ms was not always
/// enough: the warm-up's last launches were counted into the step).
fn settled_len(path: &std::path::Path) -> u64 {
    let len = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut last = len();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let now = len();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// The part of the kernel log the timed steps wrote: opened after the warm-up, counted after the
/// last timed step. Without a log it counts nothing.
struct LaunchWindow {
    log: Option<PathBuf>,
    from: u64,
}

impl LaunchWindow {
    fn new(log: Option<PathBuf>) -> Self {
        Self { log, from: 0 }
    }

    /// Called when the device is idle, right before the first timed step.
    fn open(&mut self) {
        if let Some(log) = &self.log {
            self.from = settled_len(log);
        }
    }

    /// The launches logged since [`Self::open`], per step of `steps`.
    fn per_step(&self, steps: usize) -> Result<Option<KernelCounts>> {
        let Some(path) = &self.log else {
            return Ok(None);
        };
        let end = settled_len(path);
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let new = bytes
            .get(self.from as usize..end as usize)
            .unwrap_or_default();
        let counts = KernelCounts::parse(&String::from_utf8_lossy(new));
        Ok(Some(per_step(counts, steps)))
    }
}

/// Medians over the timed steps.
#[derive(Debug, Clone, Copy)]
pub struct StepTiming {
    pub seconds: f64,
    pub images_per_s: f64,
    /// Forward (to the loss), backward, optimizer step (with the loss scale's check), seconds.
    pub phases: Option<[f64; 3]>,
    /// What the device's allocator holds after the steps (its pools keep their pages: about the
    /// peak), MiB; `None` where the backend does not say (Flex).
    pub device_mib: Option<f64>,
    /// Kernel launches per timed step, when a kernel log was asked for.
    pub kernels: Option<KernelCounts>,
}

fn reserved_mib(device: &Device) -> Option<f64> {
    device
        .memory_pool_usage()
        .map(|u| u.bytes_reserved as f64 / (1024.0 * 1024.0))
}

/// Median seconds per step of `steps` timed steps after `warmup`, and images per second.
/// Mixed precision steps scale the loss and unscale and check the gradients, as the training loop
/// (and PyTorch's GradScaler) does.
pub fn time_steps(
    bench: &StepBench,
    warmup: usize,
    steps: usize,
    device: &Device,
) -> Result<StepTiming> {
    let StepBench {
        config,
        kind,
        batch,
        precision,
        phases,
        kernel_log,
        clip_grad_norm,
    } = bench.clone();
    if matches!(kind, StepKind::Eval | StepKind::EvalBoth) {
        let both = kind == StepKind::EvalBoth;
        return time_eval(
            &config,
            batch,
            precision,
            both,
            (warmup, steps),
            kernel_log,
            device,
        );
    }
    let config = &config;
    let device = device.clone().autodiff();
    let mut model = ClipModel::new(config, &device).with_precision(precision);
    let mut loss_scale = (precision == Precision::Mixed).then(LossScale::default);
    let s = config.vision_config.image_size;
    let pixels = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let (ids, pool_at) = captions(config, batch, &device);
    let classes = 1000;
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % classes as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    // FT's head exactly as the engine trains it (s·W + b, here s = 100 over a random W).
    let start = ClassHead::from_weight(
        Tensor::<2>::random(
            [classes, config.projection_dim],
            Distribution::Normal(0.0, 0.02),
            &device.clone().without_autodiff(),
        ) * 100.0,
    );
    let mut head = (kind == StepKind::Finetune).then(|| Head::new(&start, &device));
    let mut optim = adamw(0.9, 0.999, 1e-8, 0.1);
    let sync = || device.sync().map_err(|e| Error::Device(format!("{e:?}")));
    let mut times = Vec::new();
    let mut phase_times: [Vec<f64>; 3] = Default::default();
    let mut launches = LaunchWindow::new(kernel_log);
    for i in 0..warmup + steps {
        sync()?;
        if i == warmup {
            launches.open();
        }
        let start = Instant::now();
        let mut last = start;
        let mut lap = |phase: usize| -> Result<()> {
            if phases {
                sync()?;
                let now = Instant::now();
                if i >= warmup {
                    phase_times[phase].push((now - last).as_secs_f64());
                }
                last = now;
            }
            Ok(())
        };
        // The engine's step: the methods' losses, then its backward and update.
        let (loss, trained_head) = match kind {
            StepKind::Flyp => {
                let image = model.encode_image(pixels.clone());
                let text = model.encode_text(ids.clone(), &pool_at);
                (
                    contrastive_loss(image, text, model.logit_scale.val(), None),
                    None,
                )
            }
            StepKind::Eval | StepKind::EvalBoth => unreachable!("timed by time_eval"),
            StepKind::Finetune => {
                let trained = head
                    .take()
                    .ok_or_else(|| Error::Invalid("internal: no head".into()))?;
                let image = model.encode_image(pixels.clone());
                (
                    head_cross_entropy(&trained, image, labels.clone()),
                    Some(trained),
                )
            }
        };
        lap(0)?;
        let grads = backward(loss, loss_scale.as_ref());
        lap(1)?;
        let (stepped, stepped_head, _) = update(
            &mut optim,
            1e-5,
            model,
            trained_head,
            loss_scale.as_mut(),
            clip_grad_norm,
            grads,
        );
        model = stepped;
        head = stepped_head;
        lap(2)?;
        sync()?;
        if i >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let kernels = launches.per_step(steps)?;
    let seconds = median(times);
    let [f, b, o] = phase_times.map(median);
    Ok(StepTiming {
        seconds,
        images_per_s: batch as f64 / seconds,
        phases: phases.then_some([f, b, o]),
        device_mib: reserved_mib(&device),
        kernels,
    })
}

/// Random ids, <|endoftext|> last: full-length captions, as open_clip pads to 77; and where each
/// caption pools.
fn captions(config: &ClipConfig, batch: usize, device: &Device) -> (Tensor<2, Int>, Vec<usize>) {
    let ctx = config.text_config.max_position_embeddings;
    let vocab = config.text_config.vocab_size as i64;
    let mut ids: Vec<i64> = (0..batch * ctx)
        .map(|i| (i as i64 * 7919) % (vocab - 2))
        .collect();
    for row in 0..batch {
        ids[row * ctx + ctx - 1] = config.text_config.eos_token_id as i64;
    }
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, ctx]), device);
    (ids, vec![ctx - 1; batch])
}

/// `counts` over `steps` steps, per step (rounded down).
fn per_step(counts: KernelCounts, steps: usize) -> KernelCounts {
    let n = steps.max(1);
    KernelCounts {
        total: counts.total / n,
        matmul: counts.matmul / n,
        elementwise: counts.elementwise / n,
        reduce: counts.reduce / n,
        layout: counts.layout / n,
        other: counts.other / n,
    }
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The evaluation forward pass: normalised image features of a batch (and with `both`, of a batch
/// of captions), autodiff off.
fn time_eval(
    config: &ClipConfig,
    batch: usize,
    precision: Precision,
    both: bool,
    (warmup, steps): (usize, usize),
    kernel_log: Option<PathBuf>,
    device: &Device,
) -> Result<StepTiming> {
    let device = device.clone().without_autodiff();
    let model = ClipModel::new(config, &device).with_precision(precision);
    let s = config.vision_config.image_size;
    let pixels = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let (ids, pool_at) = captions(config, batch, &device);
    let sync = || device.sync().map_err(|e| Error::Device(format!("{e:?}")));
    let mut times = Vec::new();
    let mut launches = LaunchWindow::new(kernel_log);
    for i in 0..warmup + steps {
        sync()?;
        if i == warmup {
            launches.open();
        }
        let start = Instant::now();
        let features = l2_normalize(model.encode_image_threaded(pixels.clone()));
        let _ = features.into_data(); // read back, as evaluation does
        if both {
            let text = l2_normalize(model.encode_text(ids.clone(), &pool_at));
            let _ = text.into_data();
        }
        // And the device drained, as the training steps are timed: a read-back can return before
        // all the work queued with it has run, and the next batch waits for that work (llvmpipe,
        // tiny, batch 8: 116 ms to the read, 280 ms drained, 300 ms a batch back to back).
        sync()?;
        if i >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let kernels = launches.per_step(steps)?;
    let seconds = median(times);
    Ok(StepTiming {
        seconds,
        images_per_s: batch as f64 / seconds,
        phases: None,
        device_mib: reserved_mib(&device),
        kernels,
    })
}

/// Peak resident memory of this process, in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
