//! Linear probe (Radford et al. 2021; Kumar et al., "Fine-Tuning can Distort Pretrained Features",
//! ICLR 2022, for LP-FT): multinomial logistic regression on frozen, L2-normalised image features,
//! the L2 strength chosen on the validation split from a sweep (never on test).
//!
//! The probe has no bias and works on normalised features, so its weights, divided by
//! exp(logit_scale), are a head for the same cosine logits as zero-shot and FT: LP-FT starts FT
//! from exactly the probe's predictions.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::data::Sample;
use crate::data::loader::{Loader, LoaderConfig};
use crate::embed::Clip;
use crate::error::{Error, Result};
use crate::model::l2_normalize;
use crate::train::Metrics;
use crate::train::adamw::adamw;
use crate::train::engine::cross_entropy;

/// The sweep of L2 strengths (λ in mean CE + λ/2·‖W‖²).
pub const L2_SWEEP: [f64; 8] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];

/// Full-batch optimisation steps per fit.
const STEPS: usize = 300;

/// Normalised image features of `samples`, in order, as a `[n, d]` tensor on `clip`'s device.
pub fn features(clip: &Clip, samples: &[Sample], batch_size: usize) -> Result<Tensor<2>> {
    let size = clip.model.config.vision_config.image_size as u32;
    let config = LoaderConfig {
        batch_size: batch_size.max(1),
        ..Default::default()
    };
    let loader = Loader::new(samples.to_vec(), clip.preprocess.clone(), size, config);
    let mut parts = Vec::new();
    for mut batch in loader.epoch(0) {
        let pixels = batch.take_pixels(size, &clip.device)?;
        parts.push(l2_normalize(clip.model.encode_image_threaded(pixels)));
    }
    if parts.is_empty() {
        return Err(Error::Invalid("no images to compute features of".into()));
    }
    Ok(Tensor::cat(parts, 0))
}

/// One logistic regression of `features` `[n, d]` on `labels` with L2 strength `l2`;
/// returns the weights `[classes, d]`.
pub fn fit(
    features: &Tensor<2>,
    labels: &[usize],
    classes: usize,
    l2: f64,
    seed: u64,
) -> Tensor<2> {
    let device = features.device().autodiff();
    let x = features.clone().without_autodiff().to_device(&device); // constants
    let y: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(y, [labels.len()]), &device);
    let d = x.dims()[1];
    let _ = seed; // zero init: the problem is convex, the optimum does not depend on the start
    let mut w = Param::from_tensor(Tensor::<2>::zeros([classes, d], &device));
    let mut optim = adamw(0.9, 0.999, 1e-8, 0.0);
    for step in 0..STEPS {
        // Logits scaled by 10: normalised features are small, and the L2 term sets the scale.
        let logits = x.clone().matmul(w.val().transpose()) * 10.0;
        let loss = cross_entropy(logits, y.clone()) + w.val().powi_scalar(2).sum() * (l2 / 2.0);
        let grads = loss.backward();
        let g = GradientsParams::from_grads(grads, &w);
        let lr = 0.05 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / STEPS as f64).cos());
        w = optim.step(lr, w, g);
    }
    w.val().without_autodiff() * 10.0
}

/// Predictions of weights `w` on `features`.
pub fn predict(w: &Tensor<2>, features: &Tensor<2>) -> Result<Vec<usize>> {
    let top = features.clone().matmul(w.clone().transpose()).argmax(1);
    let top: Vec<i64> = top
        .into_data()
        .try_into_vec_as::<i64>()
        .map_err(|e| Error::Invalid(format!("reading predictions back from the device: {e:?}")))?;
    Ok(top.into_iter().map(|c| c as usize).collect())
}

/// The probe chosen on validation: its L2 strength, weights and the sweep's validation top-1s.
pub struct Probe {
    pub l2: f64,
    /// `[classes, d]`; logits = normalise(features)·weightᵀ.
    pub weight: Tensor<2>,
    pub sweep: Vec<(f64, f64)>,
}

impl Probe {
    /// The probe as a head (its logits are already normalise(features)·weightᵀ; bias 0): what the
    /// linear probe evaluates and exports, and where LP-FT's fine-tuning starts.
    pub fn as_head(&self) -> crate::methods::head::ClassHead {
        crate::methods::head::ClassHead::from_weight(self.weight.clone())
    }
}

/// Fit every strength of [`L2_SWEEP`] on the training features and keep the best on validation
/// (ties: the stronger regularisation).
pub fn train_probe(
    train: (&Tensor<2>, &[usize]),
    val: (&Tensor<2>, &[usize]),
    classes: usize,
    seed: u64,
) -> Result<Probe> {
    let mut best: Option<Probe> = None;
    let mut sweep = Vec::new();
    for &l2 in &L2_SWEEP {
        let w = fit(train.0, train.1, classes, l2, seed);
        let predicted = predict(&w, val.0)?;
        let top1 = Metrics::from_predictions(&predicted, val.1, classes).top1;
        sweep.push((l2, top1));
        if best
            .as_ref()
            .is_none_or(|b| top1 >= sweep.iter().find(|(x, _)| *x == b.l2).map_or(0.0, |s| s.1))
        {
            best = Some(Probe {
                l2,
                weight: w,
                sweep: Vec::new(),
            });
        }
    }
    let mut probe = best.ok_or_else(|| Error::Invalid("empty L2 sweep".into()))?;
    probe.sweep = sweep;
    Ok(probe)
}

/// Run the linear probe of `data` with `clip` (frozen): features of every set, the sweep on
/// `data.evals[0]` (validation), then every set scored. Returns the probe and the metrics.
pub fn run(
    clip: &Clip,
    data: &crate::train::engine::TrainData,
    seed: u64,
    batch_size: usize,
) -> Result<(Probe, Vec<(String, Metrics)>)> {
    let classes = data.classes.len();
    let labels = |samples: &[Sample]| samples.iter().map(|s| s.label).collect::<Vec<_>>();
    let train_x = features(clip, &data.train, batch_size)?;
    let train_y = labels(&data.train);
    let (val_name, val_samples) = data
        .evals
        .first()
        .ok_or_else(|| Error::Invalid("the linear probe needs a validation set".into()))?;
    let val_x = features(clip, val_samples, batch_size)?;
    let val_y = labels(val_samples);
    let probe = train_probe((&train_x, &train_y), (&val_x, &val_y), classes, seed)?;
    let mut metrics = vec![(
        val_name.clone(),
        Metrics::from_predictions(&predict(&probe.weight, &val_x)?, &val_y, classes),
    )];
    for (name, samples) in &data.evals[1..] {
        let x = features(clip, samples, batch_size)?;
        metrics.push((
            name.clone(),
            Metrics::from_predictions(&predict(&probe.weight, &x)?, &labels(samples), classes),
        ));
    }
    Ok((probe, metrics))
}

/// The linear probe as users pick it: a head on frozen features, no tower trains.
pub struct LinearProbe;

impl super::Method for LinearProbe {
    fn name(&self) -> &'static str {
        "linear-probe"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["lp"]
    }
    fn label(&self) -> &'static str {
        "Linear probe (LP)"
    }
    fn about(&self) -> &'static str {
        "A logistic-regression head on the frozen image features; the strength of its L2 penalty is chosen on validation"
    }
    fn objective(&self, _: super::Options) -> Option<std::sync::Arc<dyn super::Objective>> {
        None
    }
    fn probes_first(&self) -> bool {
        true
    }
    fn colour(&self) -> usize {
        3
    }
}
