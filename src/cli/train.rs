//! `flyp train`: one method on one dataset, into a run folder.

use std::path::PathBuf;

use anyhow::Context;
use flyp::DeviceChoice;
use flyp::methods::Options;
use flyp::methods::recipe::{DataPaths, RunHooks, RunSpec};
use flyp::train::engine::Hyper;

use super::{
    build_data, method_arg, model_arg, non_negative_number, open_device, parse_named_dir,
    positive_count, positive_number, precision_arg, top1_cells,
};

/// `flyp train`'s arguments (also what `flyp compare` runs for each method).
#[derive(clap::Args, Clone)]
pub struct TrainArgs {
    /// The method (each one's file in src/methods says what it trains).
    #[arg(long, default_value = "flyp", value_parser = method_arg())]
    pub method: String,
    /// The pretrained model (HF folder, .safetensors or Hub id owner/name).
    #[arg(long, value_parser = model_arg)]
    pub model: PathBuf,
    /// Training images: class folders, train/val/test folders, or a CSV manifest.
    #[arg(long)]
    pub train: PathBuf,
    /// Validation set (default: the folder's val split, else 10 % of train, seeded, stratified).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Test set (default: the folder's test split, if any).
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Extra (e.g. out-of-distribution) evaluation sets, NAME=DIR, repeatable.
    #[arg(long = "eval", value_parser = parse_named_dir)]
    pub evals: Vec<(String, PathBuf)>,
    /// The run folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10, value_parser = positive_count)]
    pub epochs: usize,
    #[arg(long, default_value_t = 256, value_parser = positive_count, allow_negative_numbers = true)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-5, value_parser = positive_number, allow_negative_numbers = true)]
    pub lr: f64,
    /// AdamW weight decay (decoupled, every parameter).
    #[arg(long, default_value_t = 0.1, value_parser = non_negative_number, allow_negative_numbers = true)]
    pub wd: f64,
    /// Warmup steps (default: 500, capped at 10 % of the steps).
    #[arg(long)]
    pub warmup: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prompt templates: openai, simple, or a file.
    #[arg(long, default_value = "openai")]
    pub templates: String,
    /// Turn off the random resized crop (scale 0.9–1.0) on training images.
    #[arg(long)]
    pub no_augment: bool,
    /// FLYP: drop same-class pairs from the softmax denominators.
    #[arg(long)]
    pub mask_collisions: bool,
    /// Continue the run in --out from its last checkpoint (same settings).
    #[arg(long)]
    pub resume: bool,
    /// Clip the global gradient norm (torch's clip_grad_norm_); WiSE-FT's FT recipe uses 1.0.
    #[arg(long, value_parser = positive_number, allow_negative_numbers = true)]
    pub clip_grad_norm: Option<f64>,
    /// Clamp logit_scale to [0, ln 100] after every step (open_clip; FLYP's code does not).
    #[arg(long)]
    pub clamp_logit_scale: bool,
    /// f32, or mixed: the towers' blocks in f16 (GPUs with f16 shaders; the CPU backend), with
    /// weights, optimizer state and the contrastive loss in f32 and a dynamic loss scale.
    #[arg(long, default_value = "f32", value_parser = precision_arg)]
    pub precision: flyp::model::Precision,
}

impl TrainArgs {
    /// The run these flags describe.
    pub fn spec(&self) -> anyhow::Result<RunSpec> {
        let method = flyp::methods::by_name(&self.method)?;
        let data = DataPaths {
            train: self.train.clone(),
            val: self.val.clone(),
            test: self.test.clone(),
            evals: self.evals.clone(),
        };
        Ok(RunSpec {
            options: Options {
                mask_collisions: self.mask_collisions,
            },
            hyper: Hyper {
                epochs: self.epochs,
                batch: self.batch,
                lr: self.lr,
                wd: self.wd,
                warmup: self.warmup,
                seed: self.seed,
                augment: !self.no_augment,
            },
            templates: self.templates.clone(),
            clip_grad_norm: self.clip_grad_norm,
            clamp_logit_scale: self.clamp_logit_scale,
            precision: self.precision,
            out: Some(self.out.clone()),
            resume: self.resume,
            ..RunSpec::new(method, self.model.clone(), data)
        })
    }
}

/// `flyp train`: one method on one dataset, into a run folder.
pub fn run(device_choice: DeviceChoice, args: TrainArgs) -> anyhow::Result<()> {
    train(device_choice, &args.spec()?)
}

/// One run of `spec` into its run folder, with the CLI's table on stdout (also `flyp compare`'s
/// and `flyp demo`'s runs).
pub fn train(device_choice: DeviceChoice, spec: &RunSpec) -> anyhow::Result<()> {
    let name = spec.method.name();
    if !spec.method.fits() {
        anyhow::bail!("{name} trains nothing: use `flyp eval` (or `flyp compare`)");
    }
    let out = spec.out.clone().context("a run folder (--out)")?;
    flyp::run_dir::check_overlap(&out, &spec.inputs())?;
    let data = build_data(&spec.data, spec.hyper.seed)?;
    let mut run = spec.open_run_dir()?.context("a run folder (--out)")?;
    if run.finished() {
        eprintln!(
            "flyp: {} is a finished run (results.json); raise --epochs to train further",
            out.display()
        );
        return Ok(());
    }
    if spec.resume && !run.continued {
        eprintln!(
            "flyp: {} holds nothing to resume; starting the run",
            out.display()
        );
    }
    let device = open_device(device_choice)?;
    eprintln!(
        "flyp: {name} on {} images, {} classes",
        data.train.len(),
        data.classes.len()
    );
    let names: String = data
        .evals
        .iter()
        .map(|(n, _)| format!(" {n:>10}"))
        .collect();
    let trains = spec.method.trains();
    let header = format!("{:>5} {:>9} {:>9}  {names}", "epoch", "loss", "lr");
    let mut printed_header = false;
    let hooks = RunHooks {
        on_probe: Some(Box::new(|probe, metrics| {
            println!(
                "linear probe: L2 {} chosen on val from {:?}",
                probe.l2, probe.sweep
            );
            println!("{:>5} {names}", "");
            println!("{:>5} {}", "LP", top1_cells(metrics));
        })),
        on_epoch: Some(Box::new(|r| {
            if !printed_header {
                println!("{header}");
                printed_header = true;
            }
            println!(
                "{:>5} {:>9.4} {:>9.2e}  {}",
                r.epoch,
                r.mean_loss,
                r.last_lr,
                top1_cells(&r.evals)
            );
        })),
        progress: true,
        ..Default::default()
    };
    let outcome = flyp::methods::recipe::run(spec, &data, &device, hooks)?;
    run.mark_finished()?;
    if trains {
        println!(
            "best epoch {} by val top-1; model written to {}",
            outcome.results.best_epoch,
            out.join("model").display()
        );
    }
    Ok(())
}
