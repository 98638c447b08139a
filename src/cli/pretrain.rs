//! `flyp pretrain`: CLIP-style contrastive pretraining from image–caption pairs, through the same
//! engine (and contrastive kernel) as FLYP.

use std::path::PathBuf;

use anyhow::Context;
use burn::module::Module;
use flyp::DeviceChoice;
use flyp::data::prompts::Templates;
use flyp::embed::Clip;
use flyp::model::ClipConfig;
use flyp::train::engine::{TrainConfig, TrainData, train};

/// `flyp pretrain`'s arguments.
#[derive(clap::Args, Clone)]
pub struct PretrainArgs {
    /// Image–caption pairs: a CSV `path,label,caption` (paths relative to the CSV; list an image
    /// once per caption). The labels only name the classes of the zero-shot check (--eval).
    #[arg(long)]
    pub data: PathBuf,
    /// Start from this model (HF folder, .safetensors or Hub id) instead of a random one.
    #[arg(long, conflicts_with = "config", value_parser = super::model_arg)]
    pub model: Option<PathBuf>,
    /// Sizes of a random model: a preset (flyp-demo, ViT-B/32, ViT-B/16, ViT-L/14) or an HF
    /// config.json.
    #[arg(long, default_value = "flyp-demo")]
    pub config: String,
    /// Zero-shot evaluation sets checked every epoch (class folders named like the CSV's
    /// labels), NAME=DIR, repeatable. With any, the epoch with the best top-1 on the first (a
    /// validation set) is the model kept; without, the last epoch.
    #[arg(long = "eval", value_parser = super::parse_named_dir)]
    pub evals: Vec<(String, PathBuf)>,
    /// The run folder: config.json, results.json, model/ (the kept epoch, HF layout).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 30, value_parser = super::positive_count)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128, value_parser = super::positive_count)]
    pub batch: usize,
    #[arg(long, default_value_t = 5e-4, value_parser = super::positive_number)]
    pub lr: f64,
    /// AdamW weight decay (decoupled).
    #[arg(long, default_value_t = 0.1, value_parser = super::non_negative_number)]
    pub wd: f64,
    /// Warmup steps (default: 500, capped at 10 % of the steps).
    #[arg(long)]
    pub warmup: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Templates of the zero-shot check: openai, simple, or a file.
    #[arg(long, default_value = "openai")]
    pub templates: String,
    /// Turn off the random resized crop on training images.
    #[arg(long)]
    pub no_augment: bool,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
}

pub fn run(device_choice: DeviceChoice, args: PretrainArgs) -> anyhow::Result<()> {
    let out = &args.out;
    let mut inputs: Vec<(&str, &std::path::Path)> = vec![("--data", args.data.as_path())];
    inputs.extend(args.model.as_deref().map(|m| ("--model", m)));
    inputs.extend(args.evals.iter().map(|(_, p)| ("--eval", p.as_path())));
    flyp::run_dir::check_overlap(out, &inputs)?;
    flyp::train::engine::check_eval_names(&args.evals)?;
    let scan = flyp::data::Scan::folder(&args.data)?;
    scan.warnings
        .iter()
        .for_each(|w| eprintln!("flyp: warning: {w}"));
    if let Some(s) = scan.train.iter().find(|s| s.caption.is_none()) {
        anyhow::bail!(
            "{}: {} has no caption (pretraining needs `path,label,caption` rows)",
            args.data.display(),
            s.path.display()
        );
    }
    let (evals, warnings) = flyp::train::data::named_sets(&args.evals, &scan.classes)?;
    warnings
        .iter()
        .for_each(|w| eprintln!("flyp: warning: {w}"));
    let data = TrainData {
        classes: scan.classes.clone(),
        prompt_names: scan.prompt_names.clone(),
        train: scan.train.clone(),
        evals,
    };
    let config = TrainConfig {
        hyper: flyp::train::engine::Hyper {
            epochs: args.epochs,
            batch: args.batch,
            lr: args.lr,
            wd: args.wd,
            warmup: args.warmup,
            seed: args.seed,
            augment: !args.no_augment,
        },
        templates: Templates::named(&args.templates)?,
        run_dir: Some(out.clone()),
        clamp_logit_scale: true,
        progress: true,
        ..TrainConfig::new(std::sync::Arc::new(flyp::methods::pretrain::Pretrain))
    };
    let resolved = flyp::run_dir::path_setting;
    let settings = flyp::run_dir::settings_from(serde_json::json!({
        "data": resolved(&args.data), "model": args.model.as_deref().map(resolved),
        "config": args.config,
        "evals": args.evals.iter().map(|(n, p)| (n.clone(), resolved(p))).collect::<Vec<_>>(),
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "wd": args.wd,
        "warmup": args.warmup, "seed": args.seed, "templates": config.templates.0,
        "augment": !args.no_augment,
    }));
    let existing = if args.resume {
        flyp::run_dir::Existing::Continue
    } else {
        flyp::run_dir::Existing::Refuse
    };
    let mut run = flyp::run_dir::RunDir::open(out, "pretrain", settings, &inputs, existing)?;
    if run.finished() {
        eprintln!(
            "flyp: {} is a finished run (results.json); raise --epochs to train further",
            out.display()
        );
        return Ok(());
    }
    let config = TrainConfig {
        resume: run.continued,
        ..config
    };
    let device = super::open_device(device_choice)?.autodiff();
    let clip = match &args.model {
        Some(path) => Clip::load(path, &device)?,
        None => {
            let sizes = if args.config.ends_with(".json") {
                ClipConfig::from_file(std::path::Path::new(&args.config))?
            } else {
                ClipConfig::preset(&args.config).with_context(|| {
                    format!(
                        "--config {}: not a preset (flyp-demo, ViT-B/32, ViT-B/16, ViT-L/14) or a config.json",
                        args.config
                    )
                })?
            };
            Clip::random(&sizes, &device, args.seed)?
        }
    };
    let run_config = serde_json::json!({
        "method": "pretrain",
        "data": args.data, "start": clip.source, "model_config": clip.model.config.to_hf_json(),
        "evals": args.evals, "seed": args.seed, "device": device.description,
        "pairs": data.train.len(), "classes": data.classes, "config": config,
        "templates": config.templates.0,
    });
    let text = serde_json::to_string_pretty(&run_config)?;
    flyp::model::weights::write_atomic(&out.join("config.json"), text.as_bytes())?;
    let params = clip.model.num_params();
    eprintln!(
        "flyp: pretraining a {:.2} M-parameter CLIP on {} image–caption pairs",
        params as f64 / 1e6,
        data.train.len()
    );
    let names: String = data
        .evals
        .iter()
        .map(|(n, _)| format!(" {n:>10}"))
        .collect();
    println!(
        "{:>5} {:>9} {:>9} {:>7}  {names}",
        "epoch", "loss", "lr", "scale"
    );
    let started = std::time::Instant::now();
    let trained = train(clip, &data, &config, |r| {
        let accs = super::top1_cells(&r.evals);
        println!(
            "{:>5} {:>9.4} {:>9.2e} {:>7.2}  {accs}",
            r.epoch,
            r.mean_loss,
            r.last_lr,
            r.logit_scale.exp()
        );
    })?;
    let model = Clip {
        model: trained.best_model.valid(),
        ..trained.clip.for_inference()
    };
    flyp::run_dir::replace_dir(out, "model", |dir| model.save(dir))?;
    let results = serde_json::json!({
        "schema": 1,
        "method": "pretrain",
        "classes": data.classes,
        "seconds": started.elapsed().as_secs_f64(),
        "kept_epoch": trained.best_epoch,
        "epochs": trained.reports,
    });
    let text = serde_json::to_string_pretty(&results)?;
    flyp::model::weights::write_atomic(&out.join("results.json"), text.as_bytes())?;
    run.mark_finished()?;
    println!(
        "{} epochs in {:.0} s; epoch {} written to {}",
        trained.reports.len(),
        started.elapsed().as_secs_f64(),
        trained.best_epoch,
        out.join("model").display()
    );
    Ok(())
}
