//! The one recipe every run follows — `flyp train`, `flyp compare`, `flyp demo` and the app's
//! worker call [`run`]: the linear probe first when the method asks → the starting head → the
//! training loop → the best epoch → the run folder's outputs (`model/`, `head.safetensors`,
//! `results.json`).

use std::path::{Path, PathBuf};

use burn::module::Module;

use super::head::ClassHead;
use super::linear_probe::{self, Probe};
use super::zeroshot::evaluate;
use super::{Method, Options};
use crate::ComputeDevice;
use crate::data::prompts::Templates;
use crate::embed::Clip;
use crate::error::Result;
use crate::model::Precision;
use crate::run_dir::{Existing, RunDir, Settings, path_setting, settings_from};
use crate::train::engine::{self, EpochReport, Hooks, Hyper, TrainConfig, TrainData};
use crate::train::{Metrics, ProbeResults, RunResults};

/// Where a run's images come from: the training folder, its validation and test sets (default:
/// the folder's own splits, see [`TrainData::from_folders`]) and named extra (OOD) sets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataPaths {
    pub train: PathBuf,
    pub val: Option<PathBuf>,
    pub test: Option<PathBuf>,
    pub evals: Vec<(String, PathBuf)>,
}

impl DataPaths {
    /// The run's data, aligned to the training classes, and the scans' warnings.
    pub fn load(&self, seed: u64) -> Result<(TrainData, Vec<String>)> {
        TrainData::from_folders(
            &self.train,
            self.val.as_deref(),
            self.test.as_deref(),
            &self.evals,
            seed,
        )
    }
}

/// One run, as `flyp train`'s flags and the app's settings both describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub method: &'static dyn Method,
    pub options: Options,
    /// The pretrained model (an HF folder or a .safetensors file).
    pub model: PathBuf,
    pub data: DataPaths,
    pub hyper: Hyper,
    /// `openai`, `simple`, `emoji` or a file ([`Templates::named`]).
    pub templates: String,
    pub clip_grad_norm: Option<f64>,
    pub clamp_logit_scale: bool,
    pub precision: Precision,
    /// The run folder (checkpoints, outputs, resume); `None` keeps nothing on disk.
    pub out: Option<PathBuf>,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
}

impl RunSpec {
    /// `method` with FLYP's reference settings ([`TrainConfig::new`])
    /// on `model` and `data`, nothing kept on disk.
    pub fn new(method: &'static dyn Method, model: PathBuf, data: DataPaths) -> Self {
        Self {
            method,
            options: Options::default(),
            model,
            data,
            hyper: Hyper::default(),
            templates: "openai".into(),
            clip_grad_norm: None,
            clamp_logit_scale: false,
            precision: Precision::F32,
            out: None,
            resume: false,
        }
    }

    /// Without an explicit clip, the method's reference one (WiSE-FT's 1.0 for FT and LP-FT).
    pub fn with_reference_clipping(mut self) -> Self {
        if self.clip_grad_norm.is_none() {
            self.clip_grad_norm = self.method.reference_clip_grad_norm();
        }
        self
    }

    /// The settings a run folder keeps; a resume must repeat them.
    pub fn settings(&self) -> Result<Settings> {
        let path = path_setting;
        let (d, h) = (&self.data, &self.hyper);
        Ok(settings_from(serde_json::json!({
            "method": self.method.name(), "model": path(&self.model), "train": path(&d.train),
            "val": d.val.as_deref().map(path), "test": d.test.as_deref().map(path),
            "evals": d.evals.iter().map(|(n, p)| (n.clone(), path(p))).collect::<Vec<_>>(),
            "epochs": h.epochs, "batch": h.batch, "lr": h.lr, "wd": h.wd,
            "warmup": h.warmup, "seed": h.seed,
            "templates": Templates::named(&self.templates)?.0, "augment": h.augment,
            "mask_collisions": self.options.mask_collisions,
            "clip_grad_norm": self.clip_grad_norm, "clamp_logit_scale": self.clamp_logit_scale,
            "precision": self.precision.name(),
        })))
    }

    /// The paths the run reads, named as its flags are (a run folder may not overlap them).
    pub fn inputs(&self) -> Vec<(&'static str, &Path)> {
        let d = &self.data;
        let mut inputs = vec![("--model", self.model.as_path()), ("--train", &d.train)];
        inputs.extend(d.val.as_deref().map(|p| ("--val", p)));
        inputs.extend(d.test.as_deref().map(|p| ("--test", p)));
        inputs.extend(d.evals.iter().map(|(_, p)| ("--eval", p.as_path())));
        inputs
    }

    /// Open the run folder `out` (new, empty or this run's; with `resume`, continued).
    pub fn open_run_dir(&self) -> Result<Option<RunDir>> {
        let Some(out) = &self.out else {
            return Ok(None);
        };
        let existing = if self.resume {
            Existing::Continue
        } else {
            Existing::Refuse
        };
        RunDir::open(out, "train", self.settings()?, &self.inputs(), existing).map(Some)
    }

    /// The training loop's settings for `objective`.
    fn config(
        &self,
        objective: std::sync::Arc<dyn super::Objective>,
        resume: bool,
        initial_head: Option<ClassHead>,
        hooks: &RunHooks,
    ) -> Result<TrainConfig> {
        Ok(TrainConfig {
            hyper: self.hyper.clone(),
            templates: Templates::named(&self.templates)?,
            run_dir: self.out.clone(),
            resume,
            initial_head,
            clip_grad_norm: self.clip_grad_norm,
            clamp_logit_scale: self.clamp_logit_scale,
            precision: self.precision,
            progress: hooks.progress,
            hooks: hooks.step.clone(),
            ..TrainConfig::new(objective)
        })
    }
}

/// Sees the linear probe's choice and every set's metrics.
pub type OnProbe<'a> = Box<dyn FnMut(&Probe, &[(String, Metrics)]) + 'a>;
/// Sees every epoch's report.
pub type OnEpoch<'a> = Box<dyn FnMut(&EpochReport) + 'a>;

/// What a caller sees while a run goes on.
#[derive(Default)]
pub struct RunHooks<'a> {
    /// The linear probe's choice and every set's metrics (LP, and LP-FT's first stage).
    pub on_probe: Option<OnProbe<'a>>,
    /// Every epoch's report, including those a resumed run's checkpoint already holds.
    pub on_epoch: Option<OnEpoch<'a>>,
    /// Every step, and the stop flag (the app).
    pub step: Hooks,
    /// A progress line on stderr when it is a terminal (the CLI).
    pub progress: bool,
    /// The pretrained model, already loaded for inference by the caller (the app keeps it for
    /// WiSE-FT): the linear probe and zero-shot use a copy of it instead of loading it again.
    pub pretrained: Option<&'a Clip>,
}

/// What a run produced.
pub struct RunOutcome {
    /// The model kept, for inference: the best epoch's, or the pretrained one when the method
    /// trains no weights.
    pub clip: Clip,
    /// The classification head kept (the probe's, FT's), `None` when the class prompts are the
    /// head (zero-shot, FLYP, the CE ablation).
    pub head: Option<ClassHead>,
    pub results: RunResults,
    /// Stopped at (epoch, step) before its last epoch: the result is the best finished epoch, and
    /// the run folder holds the checkpoint to resume from (no final outputs are written).
    pub stopped: Option<(usize, usize)>,
}

/// Run `spec` on `data` on `device`. With `spec.out`, the run folder (opened by the caller with
/// [`RunSpec::open_run_dir`]) receives the checkpoints and the outputs; the caller marks it
/// finished.
pub fn run(
    spec: &RunSpec,
    data: &TrainData,
    device: &ComputeDevice,
    mut hooks: RunHooks,
) -> Result<RunOutcome> {
    let method = spec.method;
    let objective = method.objective(spec.options);
    if objective.is_some() {
        spec.precision.check(&device.device, &device.description)?;
    }
    if let Some(out) = &spec.out {
        write_config(spec, data, device, out)?;
    }
    let given = hooks.pretrained;
    let pretrained = || match given {
        Some(clip) => Ok(clip.for_inference()),
        None => Clip::load(&spec.model, device),
    };
    let mut probe = None;
    let mut initial_head = None;
    if method.probes_first() {
        let frozen = pretrained()?;
        let (fitted, metrics) = linear_probe::run(&frozen, data, spec.hyper.seed, 64)?;
        if let Some(on_probe) = hooks.on_probe.as_mut() {
            on_probe(&fitted, &metrics);
        }
        let head = fitted.as_head();
        probe = Some(ProbeResults {
            l2: fitted.l2,
            sweep: fitted.sweep.clone(),
            evals: metrics.clone(),
        });
        if objective.is_none() {
            let results = results(spec, data, 1, metrics, Vec::new(), probe);
            return finish(spec, frozen, Some(head), results);
        }
        initial_head = Some(head);
    }
    let Some(objective) = objective else {
        // Zero-shot: the prompt head of the pretrained model on every set.
        let clip = pretrained()?;
        let head = ClassHead::zero_shot(
            &clip,
            &data.prompt_names,
            &Templates::named(&spec.templates)?,
        )?;
        let mut sets = Vec::new();
        for (name, samples) in &data.evals {
            sets.push((name.clone(), evaluate(&clip, &head, samples, 64)?.0));
        }
        let results = results(spec, data, 0, sets, Vec::new(), None);
        return finish(spec, clip, None, results);
    };
    // A continued run: the epochs its checkpoint already holds, for the caller's curves.
    let resume = spec.resume && spec.out.is_some();
    if let (Some(dir), true, Some(on_epoch)) = (&spec.out, resume, hooks.on_epoch.as_mut())
        && let Some(state) = crate::train::checkpoint::read_state(dir)?
    {
        state.reports.iter().for_each(on_epoch);
    }
    let config = spec.config(objective, resume, initial_head, &hooks)?;
    let clip = Clip::load(&spec.model, &device.autodiff())?;
    let trained = engine::train(clip, data, &config, |report| {
        if let Some(on_epoch) = hooks.on_epoch.as_mut() {
            on_epoch(report);
        }
    })?;
    let best = trained.best_epoch;
    let clip = Clip {
        model: trained.best_model.valid(),
        ..trained.clip.for_inference()
    };
    let head = trained.best_head.as_ref().map(|h| h.to_class_head());
    let best_sets = trained.reports[best - 1].evals.clone();
    let results = results(spec, data, best, best_sets, trained.reports, probe);
    if let Some(stopped) = trained.stopped {
        return Ok(RunOutcome {
            clip,
            head,
            results,
            stopped: Some(stopped),
        });
    }
    finish(spec, clip, head, results)
}

/// `out/config.json`: what the run read and on what (`flyp wise` reads the model, the data and
/// the templates from it).
fn write_config(
    spec: &RunSpec,
    data: &TrainData,
    device: &ComputeDevice,
    out: &Path,
) -> Result<()> {
    let d = &spec.data;
    let config = serde_json::json!({
        "method": spec.method.name(),
        "model": spec.model, "train": d.train, "val": d.val, "test": d.test, "evals": d.evals,
        "seed": spec.hyper.seed, "device": device.description,
        "classes": data.classes, "prompt_names": data.prompt_names,
        "train_images": data.train.len(), "settings": spec.settings()?,
        "templates": Templates::named(&spec.templates)?.0,
    });
    let text = serde_json::to_vec_pretty(&config)
        .map_err(|e| crate::Error::Invalid(format!("{}: {e}", out.display())))?;
    crate::run_dir::write_atomic(&out.join("config.json"), &text)
}

fn results(
    spec: &RunSpec,
    data: &TrainData,
    best_epoch: usize,
    best: Vec<(String, Metrics)>,
    epochs: Vec<EpochReport>,
    probe: Option<ProbeResults>,
) -> RunResults {
    RunResults {
        schema: RunResults::SCHEMA,
        method: spec.method.name().to_string(),
        classes: data.classes.clone(),
        best_epoch,
        best: best.into_iter().collect(),
        epochs,
        probe,
        wise: Vec::new(),
        exported_alpha: None,
    }
}

/// The outputs into the run folder, if any: one more step after the last checkpoint, so a run
/// killed here is finished by a resume.
fn finish(
    spec: &RunSpec,
    clip: Clip,
    head: Option<ClassHead>,
    results: RunResults,
) -> Result<RunOutcome> {
    if let Some(out) = &spec.out {
        crate::run_dir::replace_dir(out, "model", |dir| clip.save(dir))?;
        if let Some(head) = &head {
            crate::model::weights::save_head(&out.join("head.safetensors"), head)?;
        }
        results.write(&out.join("results.json"))?;
    }
    Ok(RunOutcome {
        clip,
        head,
        results,
        stopped: None,
    })
}
