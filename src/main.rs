//! `flyp`: the command-line face of the library. Every command takes `--device auto|gpu|cpu`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use burn::module::Module;
use clap::{Parser, Subcommand};
use flyp::{Clip, ComputeDevice, DeviceChoice};

#[derive(Parser)]
#[command(
    name = "flyp",
    version,
    about = "Fine-tune CLIP like you pretrain (FLYP) and its baselines"
)]
struct Cli {
    /// Where to compute: auto (a hardware GPU if any, else CPU), gpu (wgpu), cpu (Flex).
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print L2-normalised CLIP embeddings of images and texts as one JSON object:
    /// {"image_embeds": [[...], ...], "text_embeds": [[...], ...]}, in argument order.
    Embed {
        /// A Hugging Face CLIP folder (config.json + model.safetensors or shards), a .safetensors
        /// file, or a Hub id (owner/name: downloaded once into FLYP_CACHE, else ~/.cache/flyp/hub).
        #[arg(long, value_parser = model_arg)]
        model: PathBuf,
        /// An image file (repeatable).
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        /// A text (repeatable; an empty string is a valid text).
        #[arg(long = "text")]
        texts: Vec<String>,
    },
    /// Check a dataset folder: classes, counts, every skipped file and why, image sizes, warnings.
    /// Layouts: DIR/<class>/<images>, DIR/{train,val,test}/<class>/…, or a CSV (path,label[,caption]).
    Scan {
        /// The folder (or .csv manifest).
        dir: PathBuf,
        /// Print one JSON object instead of the human report.
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune a CLIP on a labelled image folder with FLYP or standard fine-tuning, evaluating
    /// every epoch on the validation, test and extra sets; writes RUN_DIR/{config.json,
    /// results.json, model/ (best epoch by validation top-1, HF layout)} and, for finetune, head.safetensors.
    Train(TrainArgs),
    /// Pretrain a CLIP contrastively on image–caption pairs (CLIP's loss, through the same engine
    /// and kernel as FLYP), from a random model of a given size or from a checkpoint; evaluates
    /// zero-shot on the --eval sets every epoch; writes OUT/{config.json, results.json, model/}.
    Pretrain(cli::pretrain::PretrainArgs),
    /// The whole story in one command: zero-shot, linear probe, FT, LP-FT and FLYP with their
    /// WiSE-FT curves, on the bundled emoji subset (Twemoji ID → Noto OOD) from the bundled demo
    /// model; prints the ID/OOD table and writes OUT/results.json and the pictures (PNG + SVG).
    Demo(cli::demo::DemoArgs),
    /// Every method on one dataset — zero-shot, linear probe, FT, LP-FT, FLYP (and the CE
    /// ablation if asked) — each into OUT/<method>/, WiSE-FT curves for the fine-tuned ones, then
    /// one ID/OOD table and the curves; writes OUT/compare.json. Finished methods are not rerun.
    Compare {
        /// Methods to run, in order.
        #[arg(long, value_delimiter = ',', default_values_t = ["zeroshot", "linear-probe", "finetune", "lp-ft", "flyp"].map(String::from))]
        methods: Vec<String>,
        /// LP-FT's fine-tuning stage runs at --lr times this (Kumar et al. use a much smaller one).
        #[arg(long, default_value_t = 0.1)]
        lp_ft_lr_scale: f64,
        /// WiSE-FT α values.
        #[arg(long, value_delimiter = ',', default_values_t = flyp::methods::wise_ft::default_alphas())]
        alphas: Vec<f64>,
        /// Everything `flyp train` takes (--method is set per run; --out is the comparison folder).
        #[command(flatten)]
        train: TrainArgs,
    },
    /// WiSE-FT for a `flyp train` run: interpolate every weight between the run's zero-shot model
    /// and its fine-tuned model, θ(α) = (1−α)·θ₀ + α·θ₁, and evaluate every set at every α; the α
    /// with the best validation top-1 is reported. Writes RUN_DIR/wise.json.
    Wise {
        /// The run folder written by `flyp train`.
        #[arg(long)]
        run: PathBuf,
        /// The α values.
        #[arg(long, value_delimiter = ',', default_values_t = flyp::methods::wise_ft::default_alphas())]
        alphas: Vec<f64>,
        /// Images per forward pass.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Zero-shot accuracy of a model on dataset folders: the prompt-ensemble head from the class
    /// names, then top-1 and macro-F1 per set.
    Eval {
        /// A Hugging Face CLIP folder, .safetensors file or Hub id (owner/name).
        #[arg(long, value_parser = model_arg)]
        model: PathBuf,
        /// The dataset: its test split when it has one (else every image); classes come from here.
        #[arg(long)]
        data: PathBuf,
        /// Extra evaluation sets (e.g. an out-of-distribution style), NAME=DIR, repeatable.
        #[arg(long = "eval", value_parser = parse_named_dir)]
        evals: Vec<(String, PathBuf)>,
        /// Prompt templates: openai (80 ImageNet templates), simple ("a photo of a {}."), or a file.
        #[arg(long, default_value = "openai")]
        templates: String,
        /// Images per forward pass.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(Bench),
    /// Write a model as a Hugging Face CLIP folder (config.json + f32 model.safetensors, plus its
    /// tokenizer.json and preprocessor_config.json): converts f16/bf16, shards or a bare
    /// .safetensors into what `transformers.CLIPModel.from_pretrained` loads.
    Export {
        /// The model to read (same forms as `embed --model`).
        #[arg(long, value_parser = model_arg)]
        model: PathBuf,
        /// The folder to write: new or empty (an export killed midway is never loaded as a model).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `flyp train`'s arguments (also what `flyp compare` runs for each method).
#[derive(clap::Args, Clone)]
struct TrainArgs {
    /// flyp, finetune, linear-probe, lp-ft (probe, then finetune from its head; use a smaller
    /// --lr) or ce-ablation.
    #[arg(long, default_value = "flyp")]
    method: String,
    /// The pretrained model (HF folder, .safetensors or Hub id owner/name).
    #[arg(long, value_parser = model_arg)]
    model: PathBuf,
    /// Training images: class folders, train/val/test folders, or a CSV manifest.
    #[arg(long)]
    train: PathBuf,
    /// Validation set (default: the folder's val split, else 10 % of train, seeded, stratified).
    #[arg(long)]
    val: Option<PathBuf>,
    /// Test set (default: the folder's test split, if any).
    #[arg(long)]
    test: Option<PathBuf>,
    /// Extra (e.g. out-of-distribution) evaluation sets, NAME=DIR, repeatable.
    #[arg(long = "eval", value_parser = parse_named_dir)]
    evals: Vec<(String, PathBuf)>,
    /// The run folder.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 10, value_parser = positive_count)]
    epochs: usize,
    #[arg(long, default_value_t = 256, value_parser = positive_count, allow_negative_numbers = true)]
    batch: usize,
    #[arg(long, default_value_t = 1e-5, value_parser = positive_number, allow_negative_numbers = true)]
    lr: f64,
    /// AdamW weight decay (decoupled, every parameter).
    #[arg(long, default_value_t = 0.1, value_parser = non_negative_number, allow_negative_numbers = true)]
    wd: f64,
    /// Warmup steps (default: 500, capped at 10 % of the steps).
    #[arg(long)]
    warmup: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Prompt templates: openai, simple, or a file.
    #[arg(long, default_value = "openai")]
    templates: String,
    /// Turn off the random resized crop (scale 0.9–1.0) on training images.
    #[arg(long)]
    no_augment: bool,
    /// FLYP: drop same-class pairs from the softmax denominators.
    #[arg(long)]
    mask_collisions: bool,
    /// Continue the run in --out from its last checkpoint (same settings).
    #[arg(long)]
    resume: bool,
    /// Clip the global gradient norm (torch's clip_grad_norm_); WiSE-FT's FT recipe uses 1.0.
    #[arg(long, value_parser = positive_number, allow_negative_numbers = true)]
    clip_grad_norm: Option<f64>,
    /// Clamp logit_scale to [0, ln 100] after every step (open_clip; FLYP's code does not).
    #[arg(long)]
    clamp_logit_scale: bool,
    /// f32, or mixed: the towers' blocks in f16 (GPUs with f16 shaders; the CPU backend), with
    /// weights, optimizer state and the contrastive loss in f32 and a dynamic loss scale.
    #[arg(long, default_value = "f32", value_parser = precision_arg)]
    precision: flyp::model::Precision,
}

/// A finite number above zero (learning rates, clipping norms).
pub fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{text:?}: expected a number above 0")),
    }
}

/// A finite number of at least zero (weight decay).
pub fn non_negative_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text:?}: expected a number of at least 0")),
    }
}

/// A whole number of at least one (batch sizes, epochs).
pub fn positive_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("{text:?}: expected a whole number of at least 1")),
    }
}

fn precision_arg(name: &str) -> Result<flyp::model::Precision, String> {
    flyp::model::Precision::from_name(name)
        .ok_or_else(|| format!("unknown precision '{name}': f32 or mixed"))
}

#[derive(Subcommand)]
enum Bench {
    /// The fused WGSL contrastive core vs the same loss in plain burn ops, forward + backward, on
    /// one device (default: the wgpu adapter, whatever it is).
    Contrastive {
        /// Batch sizes.
        #[arg(long, value_delimiter = ',', default_values_t = [128, 512, 1024])]
        batch: Vec<usize>,
        /// Feature widths.
        #[arg(long, value_delimiter = ',', default_values_t = [512, 768])]
        dim: Vec<usize>,
        /// Timed passes per configuration (the median is reported), after 2 warm-up passes.
        #[arg(long, default_value_t = 5)]
        iters: usize,
    },
    /// Throughput on random weights: the FLYP step, the FT step and the evaluation forward pass.
    Step {
        /// tiny, vit-b-32 or vit-b-16.
        #[arg(long, value_delimiter = ',', default_values_t = ["tiny".to_string()])]
        config: Vec<String>,
        /// flyp, finetune, eval (image-tower forward without autodiff, as evaluation runs).
        #[arg(long, value_delimiter = ',', default_values_t = ["flyp".to_string(), "finetune".to_string(), "eval".to_string()])]
        step: Vec<String>,
        #[arg(long, value_delimiter = ',', default_values_t = [32])]
        batch: Vec<usize>,
        /// Timed steps (median reported) after 2 warm-up steps.
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// f32 and/or mixed (f16 blocks, f32 weights, loss and optimizer; a loss scale).
        #[arg(long, value_delimiter = ',', default_values_t = [flyp::model::Precision::F32], value_parser = precision_arg)]
        precision: Vec<flyp::model::Precision>,
        /// Also time forward, backward and the optimizer step apart (a device sync between them).
        #[arg(long)]
        phases: bool,
    },
    /// Images per second through the loader (decode + preprocess, parallel), one epoch of DIR.
    Loader {
        /// A dataset folder (any layout `flyp scan` reads).
        dir: PathBuf,
        /// Output sizes to preprocess to.
        #[arg(long, value_delimiter = ',', default_values_t = [224, 32])]
        size: Vec<u32>,
        /// Batch size.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
}

fn main() -> ExitCode {
    // A panic is a bug: say so in one line and exit 1 like any other failure.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error (a bug in flyp; please report it){place}: {message}");
    }));
    let cli = Cli::parse();
    if cli.device == DeviceChoice::Cpu {
        // burn materialises a loaded optimizer state on its default device, which would open
        // Vulkan on a CPU run's --resume; name Flex as that default.
        // SAFETY: no other thread exists yet (nothing has run but argument parsing).
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// An error and its causes in one line, each cause once (an I/O error's text is often already
/// part of the message that wraps it).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Embed {
            model,
            images,
            texts,
        } => {
            let device = open_device(cli.device)?;
            let clip = Clip::load(&model, &device)?;
            let image_embeds = clip.embed_images(&images)?;
            let text_embeds = clip.embed_texts(&texts)?;
            let out =
                serde_json::json!({ "image_embeds": image_embeds, "text_embeds": text_embeds });
            println!("{out}");
            Ok(())
        }
        Command::Bench(Bench::Contrastive { batch, dim, iters }) => {
            // The fused path exists on wgpu only: benchmark there unless told otherwise.
            let choice = if cli.device == DeviceChoice::Auto {
                DeviceChoice::Gpu
            } else {
                cli.device
            };
            let device = open_device(choice)?;
            let sizes: Vec<(usize, usize)> = batch
                .iter()
                .flat_map(|&b| dim.iter().map(move |&d| (b, d)))
                .collect();
            let (warmup, round) = (2, flyp::contrastive::bench::ROUND);
            println!(
                "contrastive loss, forward + backward, median of {iters} after {warmup} warm-up \
                 passes (plain and fused take turns in rounds of up to {round} passes, each round \
                 after one more warm-up pass)"
            );
            println!("device: {}", device.description);
            println!(
                "{:>6} {:>5} {:>11} {:>11} {:>8}",
                "B", "d", "fused ms", "plain ms", "speedup"
            );
            for (b, d) in sizes {
                let row = flyp::contrastive::bench::run(&device, &[(b, d)], warmup, iters.max(1))?
                    .remove(0);
                println!(
                    "{:>6} {:>5} {:>11.2} {:>11.2} {:>7.2}x",
                    row.batch,
                    row.dim,
                    row.fused_ms,
                    row.plain_ms,
                    row.speedup()
                );
            }
            Ok(())
        }
        Command::Scan { dir, json } => {
            let scan = flyp::data::Scan::folder(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&scan_json(&scan))?);
            } else {
                print_scan(&scan);
            }
            Ok(())
        }
        Command::Bench(Bench::Step {
            config,
            step,
            batch,
            steps,
            precision,
            phases,
        }) => {
            use flyp::train::bench::{StepBench, StepKind, time_steps, tiny_config};
            let device = open_device(cli.device)?;
            for p in &precision {
                p.check(&device.device, &device.description)?;
            }
            println!(
                "training step, median of {steps} after 2 warm-up steps; device: {}",
                device.description
            );
            print!(
                "{:<9} {:<9} {:<9} {:>6} {:>10} {:>10} {:>10} {:>10}",
                "config",
                "step",
                "precision",
                "batch",
                "ms/step",
                "images/s",
                "host MiB",
                "dev MiB"
            );
            if phases {
                print!(" {:>8} {:>8} {:>8}", "fwd ms", "bwd ms", "opt ms");
            }
            println!();
            let mib = |m: Option<f64>| m.map_or("-".to_string(), |m| format!("{m:.0}"));
            for name in &config {
                let cfg = match name.as_str() {
                    "tiny" => tiny_config(),
                    other => flyp::model::ClipConfig::preset(other).with_context(|| {
                        format!("unknown --config '{other}': tiny, vit-b-32, vit-b-16, vit-l-14")
                    })?,
                };
                for kind_name in &step {
                    let kind = match kind_name.as_str() {
                        "flyp" => StepKind::Flyp,
                        "finetune" | "ft" => StepKind::Finetune,
                        "eval" => StepKind::Eval,
                        other => {
                            anyhow::bail!("unknown --step '{other}': flyp, finetune or eval")
                        }
                    };
                    for &p in &precision {
                        for &b in &batch {
                            let bench = StepBench {
                                config: cfg.clone(),
                                kind,
                                batch: b,
                                precision: p,
                                phases,
                            };
                            let t = time_steps(&bench, 2, steps.max(1), &device.device)?;
                            print!(
                                "{name:<9} {kind_name:<9} {:<9} {b:>6} {:>10.1} {:>10.1} {:>10} {:>10}",
                                p.name(),
                                t.seconds * 1e3,
                                t.images_per_s,
                                mib(flyp::train::bench::peak_rss_mib()),
                                mib(t.device_mib)
                            );
                            if let Some(ph) = t.phases {
                                print!(
                                    " {:>8.1} {:>8.1} {:>8.1}",
                                    ph[0] * 1e3,
                                    ph[1] * 1e3,
                                    ph[2] * 1e3
                                );
                            }
                            println!();
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Bench(Bench::Loader { dir, size, batch }) => {
            let scan = flyp::data::Scan::folder(&dir)?;
            let threads = rayon::current_num_threads();
            println!(
                "loader: one epoch of {} images from {}",
                scan.train.len(),
                dir.display()
            );
            println!(
                "{:>6} {:>6} {:>8} {:>10} {:>10}",
                "size", "batch", "threads", "seconds", "images/s"
            );
            for s in size {
                let config = flyp::data::loader::LoaderConfig {
                    batch_size: batch,
                    ..Default::default()
                };
                let loader = flyp::data::loader::Loader::new(
                    scan.train.clone(),
                    flyp::data::Preprocess::clip(s),
                    s,
                    config,
                );
                let start = std::time::Instant::now();
                let images: usize = loader.epoch(0).map(|b| b.len()).sum();
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "{s:>6} {batch:>6} {threads:>8} {secs:>10.2} {:>10.0}",
                    images as f64 / secs
                );
            }
            Ok(())
        }
        Command::Train(args) => run_train(cli.device, args),
        Command::Pretrain(args) => cli::pretrain::run(cli.device, args),
        Command::Demo(args) => cli::demo::run(cli.device, args),
        Command::Eval {
            model,
            data,
            evals,
            templates,
            batch,
            json,
        } => {
            flyp::train::engine::check_eval_names(&evals)?;
            let device = open_device(cli.device)?;
            let clip = Clip::load(&model, &device)?;
            let templates = flyp::data::prompts::Templates::named(&templates)?;
            let scan = flyp::data::Scan::folder(&data)?;
            let head =
                flyp::methods::zeroshot::zero_shot_head(&clip, &scan.prompt_names, &templates)?;
            let mut sets = vec![(
                if scan.test.is_some() {
                    "test".to_string()
                } else {
                    "all".to_string()
                },
                scan.test.clone().unwrap_or_else(|| scan.train.clone()),
            )];
            for (name, dir) in evals {
                let (samples, warnings) =
                    flyp::data::Scan::folder(&dir)?.align_to(&scan.classes)?;
                warnings
                    .iter()
                    .for_each(|w| eprintln!("flyp: warning: {w}"));
                sets.push((name, samples));
            }
            let mut results = Vec::new();
            for (name, samples) in &sets {
                let (metrics, _) =
                    flyp::methods::zeroshot::evaluate(&clip, &head, samples, batch.max(1))?;
                results.push((name.clone(), metrics));
            }
            if json {
                let sets: Vec<_> = results
                    .iter()
                    .map(|(n, m)| serde_json::json!({"set": n, "metrics": m}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"method": "zeroshot", "classes": scan.classes, "sets": sets})
                );
            } else {
                println!(
                    "zero-shot, {} classes, {} templates",
                    scan.classes.len(),
                    templates.len()
                );
                println!(
                    "{:<16} {:>7} {:>8} {:>9}",
                    "set", "images", "top-1 %", "macro-F1"
                );
                for (name, m) in &results {
                    println!(
                        "{name:<16} {:>7} {:>8.2} {:>9.4}",
                        m.images,
                        100.0 * m.top1,
                        m.macro_f1
                    );
                }
            }
            Ok(())
        }
        Command::Compare {
            methods,
            lp_ft_lr_scale,
            alphas,
            train,
        } => run_compare(cli.device, &methods, lp_ft_lr_scale, &alphas, train),
        Command::Wise { run, alphas, batch } => {
            run_wise(cli.device, &run, &alphas, batch).map(|_| ())
        }
        Command::Export { model, out } => {
            flyp::run_dir::check_overlap(&out, &[("--model", &model)])?;
            let device = open_device(cli.device)?;
            let clip = Clip::load(&model, &device)?;
            clip.save(&out)?;
            eprintln!("flyp: wrote {}", out.display());
            Ok(())
        }
    }
}

/// `flyp train`: one method on one dataset, into a run folder.
fn run_train(device_choice: DeviceChoice, args: TrainArgs) -> anyhow::Result<()> {
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
    let settings = settings_of(serde_json::json!({
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
    let names: String = data.evals.iter().map(|(n, _)| format!("{n:>11}")).collect();
    let mut probe_json = serde_json::Value::Null;
    if probe_first {
        let frozen = Clip::load(&model, &device)?;
        let scale = frozen.model.logit_scale.val().into_scalar::<f32>() as f64;
        let (probe, metrics) = flyp::methods::linear_probe::run(&frozen, &data, seed, 64)?;
        println!(
            "linear probe: L2 {} chosen on val from {:?}",
            probe.l2, probe.sweep
        );
        println!("{:>5} {names}", "");
        let accs = top1_cells(&metrics);
        println!("{:>5} {accs}", "LP");
        probe_json = serde_json::json!({"l2": probe.l2, "sweep": probe.sweep, "evals": metrics});
        let head = probe.as_head(scale);
        if method.is_none() {
            flyp::run_dir::replace_dir(&out, "model", |dir| frozen.save(dir))?;
            flyp::model::weights::save_head(&out.join("head.safetensors"), head)?;
            let best: std::collections::BTreeMap<_, _> =
                metrics.iter().map(|(n, m)| (n.clone(), m)).collect();
            let results = serde_json::json!({
                "schema": 1, "method": method_name, "classes": data.classes,
                "best_epoch": 1, "best": best, "epochs": [], "probe": probe_json,
            });
            let text = serde_json::to_string_pretty(&results)?;
            flyp::model::weights::write_atomic(&out.join("results.json"), text.as_bytes())?;
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
        flyp::model::weights::save_head(&out.join("head.safetensors"), head.weight.val())?;
    }
    let best_sets: std::collections::BTreeMap<_, _> = trained.reports[best - 1]
        .evals
        .iter()
        .map(|(n, m)| (n.clone(), m))
        .collect();
    let results = serde_json::json!({
        "schema": 1,
        "method": method_name,
        "classes": data.classes,
        "best_epoch": best,
        "best": best_sets,
        "epochs": trained.reports,
        "probe": probe_json,
    });
    let text = serde_json::to_string_pretty(&results)?;
    flyp::model::weights::write_atomic(&out.join("results.json"), text.as_bytes())?;
    run.mark_finished()?;
    println!(
        "best epoch {best} by val top-1; model written to {}",
        out.join("model").display()
    );
    Ok(())
}

/// `flyp compare`: every method on one dataset, one table.
fn run_compare(
    device_choice: DeviceChoice,
    methods: &[String],
    lp_ft_lr_scale: f64,
    alphas: &[f64],
    base: TrainArgs,
) -> anyhow::Result<()> {
    let root = base.out.clone();
    let inputs = input_paths(
        &base.model,
        &base.train,
        base.val.as_ref(),
        base.test.as_ref(),
        &base.evals,
    );
    // Methods and α values may change between calls (each method's run checks its own settings).
    let settings = settings_of(serde_json::json!({
        "lp_ft_lr_scale": lp_ft_lr_scale,
        "model": resolved(&base.model), "train": resolved(&base.train),
        "val": base.val.as_deref().map(resolved), "test": base.test.as_deref().map(resolved),
        "evals": base.evals.iter().map(|(n, p)| (n.clone(), resolved(p))).collect::<Vec<_>>(),
        "epochs": base.epochs, "seed": base.seed,
    }));
    flyp::run_dir::check_overlap(&root, &inputs)?;
    let _root_run = flyp::run_dir::RunDir::open(
        &root,
        "compare",
        settings,
        &inputs,
        flyp::run_dir::Existing::Continue,
    )?;
    let data = build_data(
        &base.train,
        base.val.as_ref(),
        base.test.as_ref(),
        &base.evals,
        base.seed,
    )?;
    let set_names: Vec<String> = data.evals.iter().map(|(n, _)| n.clone()).collect();
    let mut rows: Vec<(String, std::collections::BTreeMap<String, f64>)> = Vec::new();
    let mut curves = serde_json::Map::new();
    let top1s = |sets: &serde_json::Value| -> std::collections::BTreeMap<String, f64> {
        set_names
            .iter()
            .map(|n| (n.clone(), sets[n]["top1"].as_f64().unwrap_or(f64::NAN)))
            .collect()
    };
    for method in methods {
        eprintln!("flyp: compare: {method}");
        if method == "zeroshot" {
            let device = open_device(device_choice)?;
            let clip = Clip::load(&base.model, &device)?;
            let templates = flyp::data::prompts::Templates::named(&base.templates)?;
            let head =
                flyp::methods::zeroshot::zero_shot_head(&clip, &data.prompt_names, &templates)?;
            let mut sets = std::collections::BTreeMap::new();
            for (name, samples) in &data.evals {
                let (m, _) = flyp::methods::zeroshot::evaluate(&clip, &head, samples, 64)?;
                sets.insert(name.clone(), m.top1);
            }
            rows.push(("zeroshot".into(), sets));
            continue;
        }
        let out = root.join(method);
        let mut args = base.clone();
        args.method = method.clone();
        args.out = out.clone();
        // A run of an earlier call is continued (or, when finished, reused as it is).
        args.resume = out.join(flyp::run_dir::MANIFEST).is_file();
        if method == "lp-ft" {
            args.lr *= lp_ft_lr_scale;
        }
        run_train(device_choice, args)?;
        let text = std::fs::read_to_string(out.join("results.json"))?;
        let results: serde_json::Value = serde_json::from_str(&text)?;
        rows.push((method.clone(), top1s(&results["best"])));
        if matches!(
            method.as_str(),
            "finetune" | "lp-ft" | "flyp" | "ce-ablation"
        ) {
            let wise = run_wise(device_choice, &out, alphas, 64)?;
            let alpha = wise["alpha_by_val"].as_f64().unwrap_or(1.0);
            if let Some(point) = wise["curve"]
                .as_array()
                .and_then(|c| c.iter().find(|p| p["alpha"].as_f64() == Some(alpha)))
            {
                rows.push((
                    format!("{method} + WiSE-FT α={alpha}"),
                    top1s(&point["sets"]),
                ));
            }
            curves.insert(method.clone(), wise);
        }
    }
    println!();
    println!(
        "comparison on {} (top-1 %, best epoch by val; WiSE-FT α chosen by val)",
        base.train.display()
    );
    let header: String = set_names.iter().map(|n| format!("{n:>11}")).collect();
    println!("{:<32}{header}", "method");
    for (name, sets) in &rows {
        let accs: String = set_names
            .iter()
            .map(|n| format!("{:>10.2}%", 100.0 * sets[n]))
            .collect();
        println!("{name:<32}{accs}");
    }
    for (method, wise) in &curves {
        println!("\nWiSE-FT curve of {method}");
        println!("{:>6}{header}", "alpha");
        for point in wise["curve"].as_array().into_iter().flatten() {
            let sets = top1s(&point["sets"]);
            let accs: String = set_names
                .iter()
                .map(|n| format!("{:>10.2}%", 100.0 * sets[n]))
                .collect();
            println!("{:>6.2}{accs}", point["alpha"].as_f64().unwrap_or(f64::NAN));
        }
    }
    let json = serde_json::json!({
        "schema": 1,
        "sets": set_names,
        "rows": rows.iter().map(|(n, s)| serde_json::json!({"method": n, "top1": s})).collect::<Vec<_>>(),
        "wise": curves,
    });
    let text = serde_json::to_string_pretty(&json)?;
    flyp::model::weights::write_atomic(&root.join("compare.json"), text.as_bytes())?;
    Ok(())
}

/// `flyp wise`: the WiSE-FT curve of a run; returns what it wrote to `RUN_DIR/wise.json`.
fn run_wise(
    device_choice: DeviceChoice,
    run: &std::path::Path,
    alphas: &[f64],
    batch: usize,
) -> anyhow::Result<serde_json::Value> {
    use flyp::methods::wise_ft::WiseFt;
    use flyp::methods::zeroshot::zero_shot_head;
    let run_dir = flyp::run_dir::RunDir::existing(run, "train")?;
    let config_path = run.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("{}: not a run folder of `flyp train`", run.display()))?;
    let cfg: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid JSON", config_path.display()))?;
    let path = |key: &str| cfg[key].as_str().map(PathBuf::from);
    let zero_path = path("model").context("config.json has no \"model\"")?;
    let train_path = path("train").context("config.json has no \"train\"")?;
    let evals: Vec<(String, PathBuf)> =
        serde_json::from_value(cfg["evals"].clone()).unwrap_or_default();
    let seed = cfg["seed"].as_u64().unwrap_or(0);
    let templates: Vec<String> = serde_json::from_value(cfg["templates"].clone())
        .context("config.json has no \"templates\"")?;
    let templates = flyp::data::prompts::Templates(templates);
    let data = build_data(
        &train_path,
        path("val").as_ref(),
        path("test").as_ref(),
        &evals,
        seed,
    )?;
    let device = open_device(device_choice)?;
    let zero = Clip::load(&zero_path, &device)?;
    let tuned = Clip::load(&run.join("model"), &device)?;
    let head_file = run.join("head.safetensors");
    let heads = if head_file.is_file() {
        let zs = zero_shot_head(&zero, &data.prompt_names, &templates)?;
        Some((zs, load_head(&head_file, &device.device)?))
    } else {
        None
    };
    let wise = WiseFt {
        zero_shot: zero,
        fine_tuned: tuned,
        heads,
        prompt_names: data.prompt_names.clone(),
        templates,
    };
    let names: String = data.evals.iter().map(|(n, _)| format!("{n:>11}")).collect();
    println!("WiSE-FT of {} (top-1 %)", run.display());
    println!("{:>5}  {names}", "alpha");
    let mut rows = Vec::new();
    for &alpha in alphas {
        let sets = wise.evaluate(alpha, &data.evals, batch.max(1))?;
        let accs = top1_cells(&sets);
        println!("{alpha:>5.2}  {accs}");
        rows.push((alpha, sets));
    }
    let best = rows
        .iter()
        .max_by(|a, b| a.1[0].1.top1.total_cmp(&b.1[0].1.top1))
        .map(|r| r.0)
        .unwrap_or(1.0);
    println!("alpha chosen by val top-1: {best}");
    let json = serde_json::json!({
        "schema": 1,
        "alpha_by_val": best,
        "curve": rows.iter().map(|(a, sets)| serde_json::json!({
            "alpha": a,
            "sets": sets.iter().map(|(n, m)| (n.clone(), m)).collect::<std::collections::BTreeMap<_, _>>(),
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&json)?;
    flyp::model::weights::write_atomic(&run_dir.join("wise.json"), text.as_bytes())?;
    Ok(json)
}

/// A path as a resume compares it: resolved when it exists, else as given.
fn resolved(path: &std::path::Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A JSON object of settings as the run manifest keeps them.
fn settings_of(json: serde_json::Value) -> flyp::run_dir::Settings {
    match json {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => Default::default(),
    }
}

/// The inputs a run folder must not overlap, by flag.
fn input_paths<'a>(
    model: &'a std::path::Path,
    train: &'a std::path::Path,
    val: Option<&'a PathBuf>,
    test: Option<&'a PathBuf>,
    evals: &'a [(String, PathBuf)],
) -> Vec<(&'static str, &'a std::path::Path)> {
    let mut inputs = vec![("--model", model), ("--train", train)];
    inputs.extend(val.map(|p| ("--val", p.as_path())));
    inputs.extend(test.map(|p| ("--test", p.as_path())));
    inputs.extend(evals.iter().map(|(_, p)| ("--eval", p.as_path())));
    inputs
}

/// Top-1 of each set as a table cell ("  48.61%"), the CLI's one format for accuracy rows.
fn top1_cells(sets: &[(String, flyp::train::Metrics)]) -> String {
    sets.iter()
        .map(|(_, m)| format!("{:>10.2}%", 100.0 * m.top1))
        .collect()
}

/// Resolve `--device` and say once, on stderr, what was chosen.
fn open_device(choice: DeviceChoice) -> anyhow::Result<ComputeDevice> {
    let device = ComputeDevice::select(choice).with_context(|| format!("--device {choice}"))?;
    eprintln!("flyp: device {}", device.description);
    Ok(device)
}

/// `NAME=DIR` for `--eval`.
fn parse_named_dir(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("expected NAME=DIR, got {arg:?}")),
    }
}

fn scan_json(scan: &flyp::data::Scan) -> serde_json::Value {
    let counts = scan.counts();
    serde_json::json!({
        "root": scan.root,
        "layout": scan.layout,
        "classes": scan.classes.iter().zip(&scan.prompt_names).zip(&counts).map(|((c, p), n)| serde_json::json!({"name": c, "prompt": p, "images": n})).collect::<Vec<_>>(),
        "train": scan.train.len(),
        "val": scan.val.as_ref().map(Vec::len),
        "test": scan.test.as_ref().map(Vec::len),
        "skipped": scan.skipped,
        "warnings": scan.warnings,
        "sizes": size_summary(scan),
    })
}

/// (min, median, max) of widths and heights.
fn size_summary(scan: &flyp::data::Scan) -> serde_json::Value {
    let all = scan
        .train
        .iter()
        .chain(scan.val.iter().flatten())
        .chain(scan.test.iter().flatten());
    let (mut w, mut h): (Vec<u32>, Vec<u32>) = all.map(|s| s.size).unzip();
    w.sort_unstable();
    h.sort_unstable();
    let stats = |v: &[u32]| serde_json::json!({"min": v.first(), "median": v.get(v.len() / 2), "max": v.last()});
    serde_json::json!({"width": stats(&w), "height": stats(&h)})
}

fn print_scan(scan: &flyp::data::Scan) {
    println!("{} ({})", scan.root.display(), scan.layout);
    let counts = scan.counts();
    println!(
        "{} classes, {} training images",
        scan.classes.len(),
        scan.train.len()
    );
    for ((class, prompt), n) in scan.classes.iter().zip(&scan.prompt_names).zip(&counts) {
        if class == prompt {
            println!("  {n:>7}  {class}");
        } else {
            println!("  {n:>7}  {class}  (prompted as \"{prompt}\")");
        }
    }
    if let Some(val) = &scan.val {
        println!("validation: {} images", val.len());
    }
    if let Some(test) = &scan.test {
        println!("test: {} images", test.len());
    }
    let sizes = size_summary(scan);
    println!(
        "image sizes: width {}..{} (median {}), height {}..{} (median {})",
        sizes["width"]["min"],
        sizes["width"]["max"],
        sizes["width"]["median"],
        sizes["height"]["min"],
        sizes["height"]["max"],
        sizes["height"]["median"]
    );
    if !scan.skipped.is_empty() {
        println!("skipped {} file(s):", scan.skipped.len());
        for s in &scan.skipped {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
    for w in &scan.warnings {
        println!("warning: {w}");
    }
}

/// The training data of `flyp train` (see [`flyp::train::engine::TrainData::from_folders`]),
/// its warnings printed.
fn build_data(
    train: &std::path::Path,
    val: Option<&PathBuf>,
    test: Option<&PathBuf>,
    evals: &[(String, PathBuf)],
    seed: u64,
) -> anyhow::Result<flyp::train::engine::TrainData> {
    let (data, warnings) = flyp::train::engine::TrainData::from_folders(
        train,
        val.map(PathBuf::as_path),
        test.map(PathBuf::as_path),
        evals,
        seed,
    )?;
    warnings
        .iter()
        .for_each(|w| eprintln!("flyp: warning: {w}"));
    Ok(data)
}

/// Read a head written by [`save_head`].
fn load_head(
    path: &std::path::Path,
    device: &burn::prelude::Device,
) -> anyhow::Result<burn::prelude::Tensor<2>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let view = st
        .tensor("weight")
        .with_context(|| format!("{}: no \"weight\" tensor", path.display()))?;
    let shape = view.shape().to_vec();
    anyhow::ensure!(
        shape.len() == 2,
        "{}: weight has shape {shape:?}, expected 2 dimensions",
        path.display()
    );
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(burn::prelude::Tensor::from_data(
        burn::prelude::TensorData::new(values, [shape[0], shape[1]]),
        device,
    ))
}

/// `--model`: a local folder or file as given, or a Hugging Face Hub id (`owner/name`) downloaded
/// into the cache (`FLYP_CACHE`, else ~/.cache/flyp/hub) with progress on stderr.
pub fn model_arg(text: &str) -> Result<PathBuf, String> {
    if !flyp::hub::is_model_id(text) {
        return Ok(PathBuf::from(text));
    }
    // `assets/demo-modle`: the owner part is a folder here, so this is a mistyped path.
    if flyp::run_dir::looks_local(text) {
        return Err(format!(
            "{text}: no such file or folder (not tried as a Hugging Face Hub id: {} is a local folder)",
            text.split('/').next().unwrap_or(text)
        ));
    }
    let cache = flyp::hub::default_cache();
    let mut shown = String::new();
    let dir = flyp::hub::download(
        &flyp::hub::default_endpoint(),
        text,
        &cache,
        &mut |p| {
            let mb = |b: u64| b as f64 / 1e6;
            let line = match p.total {
                Some(t) => format!("{text}: {} {:.1}/{:.1} MB", p.file, mb(p.done), mb(t)),
                None => format!("{text}: {} {:.1} MB", p.file, mb(p.done)),
            };
            if line != shown {
                eprint!("\r{line}");
                shown = line;
            }
        },
        None,
    )
    .map_err(|e| {
        format!("{text}: no such file or folder here, so tried the Hugging Face Hub: {e}")
    })?;
    if !shown.is_empty() {
        eprintln!();
    }
    Ok(dir)
}
