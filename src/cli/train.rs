//! `flyp train`: one method on one dataset, into a run folder.

use std::path::PathBuf;

use burn::module::Module;
use flyp::train::{ProbeResults, RunResults};
use flyp::{Clip, DeviceChoice};

use super::{
    build_data, input_paths, model_arg, non_negative_number, open_device, parse_named_dir,
    positive_count, positive_number, precision_arg, top1_cells,
};

/// `flyp train`'s arguments (also what `flyp compare` runs for each method).
#[derive(clap::Args, Clone)]
pub struct TrainArgs {
    /// flyp, finetune, linear-probe, lp-ft (probe, then finetune from its head; use a smaller
    /// --lr) or ce-ablation.
    #[arg(long, default_value = "flyp")]
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
    /// Without an explicit --clip-grad-norm, the method's reference clipping (WiSE-FT's 1.0 for
    /// FT and LP-FT, none for FLYP): what `flyp compare` and `flyp demo` train with.
    pub fn with_reference_clipping(mut self) -> anyhow::Result<Self> {
        if self.clip_grad_norm.is_none() {
            let recipe =
                flyp::methods::recipe::Recipe::from_name(&self.method, self.mask_collisions)?;
            self.clip_grad_norm = recipe.default_clip_grad_norm();
        }
        Ok(self)
    }
}

/// `flyp train`: one method on one dataset, into a run folder.
pub fn run(device_choice: DeviceChoice, args: TrainArgs) -> anyhow::Result<()> {
    let TrainArgs {
        method,
        model,
        train,
        val,
        test,
        evals,
        out,
        epochs,
        batch,
        lr,
        wd,
        warmup,
        seed,
        templates,
        no_augment,
        mask_collisions,
        resume,
        clip_grad_norm,
        clamp_logit_scale,
        precision,
    } = args;
    use flyp::train::engine::{Method, TrainConfig};
    let recipe = flyp::methods::recipe::Recipe::from_name(&method, mask_collisions)?;
    if recipe == flyp::methods::recipe::Recipe::ZeroShot {
        anyhow::bail!("zero-shot trains nothing: use `flyp eval` (or `flyp compare`)");
    }
    let (method, probe_first) = (recipe.method(), recipe.probes_first());
    let method_name = recipe.name();
    let templates = flyp::data::prompts::Templates::named(&templates)?;
    let resolved = flyp::run_dir::path_setting;
    let settings = flyp::run_dir::settings_from(serde_json::json!({
        "method": method_name, "model": resolved(&model), "train": resolved(&train),
        "val": val.as_deref().map(resolved), "test": test.as_deref().map(resolved),
        "evals": evals.iter().map(|(n, p)| (n.clone(), resolved(p))).collect::<Vec<_>>(),
        "epochs": epochs, "batch": batch, "lr": lr, "wd": wd, "warmup": warmup, "seed": seed,
        "templates": templates.0, "augment": !no_augment, "mask_collisions": mask_collisions,
        "clip_grad_norm": clip_grad_norm, "clamp_logit_scale": clamp_logit_scale,
        "precision": precision.name(),
    }));
    let inputs = input_paths(&model, &train, val.as_ref(), test.as_ref(), &evals);
    flyp::run_dir::check_overlap(&out, &inputs)?;
    let data = build_data(&train, val.as_ref(), test.as_ref(), &evals, seed)?;
    let existing = if resume {
        flyp::run_dir::Existing::Continue
    } else {
        flyp::run_dir::Existing::Refuse
    };
    let mut run = flyp::run_dir::RunDir::open(&out, "train", settings, &inputs, existing)?;
    if run.finished() {
        eprintln!(
            "flyp: {} is a finished run (results.json); raise --epochs to train further",
            out.display()
        );
        return Ok(());
    }
    if resume && !run.continued {
        eprintln!(
            "flyp: {} holds nothing to resume; starting the run",
            out.display()
        );
    }
    let mut config = TrainConfig {
        method: method.unwrap_or(Method::Finetune),
        epochs,
        batch_size: batch,
        lr,
        weight_decay: wd,
        warmup,
        seed,
        augment: !no_augment,
        templates,
        run_dir: Some(out.clone()),
        resume: run.continued,
        initial_head: None,
        clip_grad_norm,
        clamp_logit_scale,
        precision,
        progress: true,
        hooks: Default::default(),
    };
    let device = open_device(device_choice)?;
    precision.check(&device.device, &device.description)?;
    let run_config = serde_json::json!({
        "method": method_name,
        "model": model, "train": train, "val": val, "test": test, "evals": evals,
        "seed": seed, "device": device.description,
        "classes": data.classes, "prompt_names": data.prompt_names,
        "train_images": data.train.len(), "config": config,
        "templates": config.templates.0,
    });
    let text = serde_json::to_string_pretty(&run_config)?;
    flyp::model::weights::write_atomic(&out.join("config.json"), text.as_bytes())?;
    eprintln!(
        "flyp: {method_name} on {} images, {} classes",
        data.train.len(),
        data.classes.len()
    );
    let names: String = data
        .evals
        .iter()
        .map(|(n, _)| format!(" {n:>10}"))
        .collect();
    let mut probe_results = None;
    if probe_first {
        let frozen = Clip::load(&model, &device)?;
        let (probe, metrics) = flyp::methods::linear_probe::run(&frozen, &data, seed, 64)?;
        println!(
            "linear probe: L2 {} chosen on val from {:?}",
            probe.l2, probe.sweep
        );
        println!("{:>5} {names}", "");
        let accs = top1_cells(&metrics);
        println!("{:>5} {accs}", "LP");
        probe_results = Some(ProbeResults {
            l2: probe.l2,
            sweep: probe.sweep.clone(),
            evals: metrics.clone(),
        });
        let head = probe.as_head();
        if method.is_none() {
            flyp::run_dir::replace_dir(&out, "model", |dir| frozen.save(dir))?;
            flyp::model::weights::save_head(&out.join("head.safetensors"), &head)?;
            RunResults {
                schema: RunResults::SCHEMA,
                method: method_name.to_string(),
                classes: data.classes.clone(),
                best_epoch: 1,
                best: metrics.into_iter().collect(),
                epochs: Vec::new(),
                probe: probe_results,
            }
            .write(&out.join("results.json"))?;
            run.mark_finished()?;
            return Ok(());
        }
        config.initial_head = Some(head);
    }
    let clip = Clip::load(&model, &device.autodiff())?;
    println!("{:>5} {:>9} {:>9}  {names}", "epoch", "loss", "lr");
    let trained = flyp::train::engine::train(clip, &data, &config, |r| {
        let accs = top1_cells(&r.evals);
        println!(
            "{:>5} {:>9.4} {:>9.2e}  {accs}",
            r.epoch, r.mean_loss, r.last_lr
        );
    })?;
    let best = trained.best_epoch;
    let final_clip = Clip {
        model: trained.best_model.valid(),
        ..trained.clip.for_inference()
    };
    // The final outputs: one more step after the last checkpoint, recorded in run.json, so a run
    // killed here is finished by --resume.
    flyp::run_dir::replace_dir(&out, "model", |dir| final_clip.save(dir))?;
    if let Some(head) = &trained.best_head {
        flyp::model::weights::save_head(&out.join("head.safetensors"), &head.to_class_head())?;
    }
    RunResults {
        schema: RunResults::SCHEMA,
        method: method_name.to_string(),
        classes: data.classes.clone(),
        best_epoch: best,
        best: trained.reports[best - 1].evals.iter().cloned().collect(),
        epochs: trained.reports,
        probe: probe_results,
    }
    .write(&out.join("results.json"))?;
    run.mark_finished()?;
    println!(
        "best epoch {best} by val top-1; model written to {}",
        out.join("model").display()
    );
    Ok(())
}
