//! `flyp demo`: the whole story in one command. Zero-shot, linear probe, FT, LP-FT and FLYP (with
//! their WiSE-FT curves) on the bundled emoji subset — Twemoji in distribution, Noto out of
//! distribution — from the bundled demo model; then the ID/OOD table and the report pictures.

use std::path::{Path, PathBuf};

use anyhow::Context;
use flyp::embed::Clip;
use flyp::methods::zeroshot::image_and_prompt_embeddings;
use flyp::report::figures::{self, Curve, EmbeddingView, EpochCurve, Point};
use flyp::report::projection::Pca;
use flyp::report::write_figure;
use flyp::{ComputeDevice, DeviceChoice};
use serde_json::{Value, json};

use super::train::TrainArgs;

/// `flyp demo`'s arguments: everything has the demo's default.
#[derive(clap::Args, Clone)]
pub struct DemoArgs {
    /// The report folder (runs are kept in OUT/runs; a second call reuses finished runs).
    #[arg(long, default_value = "demo-report")]
    pub out: PathBuf,
    /// Seeds: the first one's report is written in OUT, each further seed's in OUT/seed-N, and
    /// with more than one, the mean and spread of every method over the seeds (OUT/seeds.json).
    #[arg(long, value_delimiter = ',', default_values_t = [0])]
    pub seeds: Vec<u64>,
    /// The base model (default: the bundled demo model, assets/demo-model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The ID dataset with train/val/test folders (default: assets/emoji-subset/twemoji).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The OOD set (default: assets/emoji-subset/noto).
    #[arg(long)]
    pub ood: Option<PathBuf>,
    #[arg(long, default_value_t = 10, value_parser = super::positive_count)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32, value_parser = super::positive_count)]
    pub batch: usize,
    /// Learning rate of FT and FLYP (LP-FT's fine-tuning stage uses a tenth).
    #[arg(long, default_value_t = 1e-4, value_parser = super::positive_number)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.1, value_parser = super::non_negative_number)]
    pub wd: f64,
}

/// A bundled file: relative to the working directory when it is there (a checkout), else where
/// the source tree was at build time.
fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn run(device_choice: DeviceChoice, args: DemoArgs) -> anyhow::Result<()> {
    let Some((&first, more)) = args.seeds.split_first() else {
        anyhow::bail!("--seeds: name at least one seed");
    };
    // The report folder is a run folder of its own (each seed's runs/ is a `compare` folder in it).
    let path = |p: &Option<PathBuf>| p.as_deref().map(flyp::run_dir::path_setting);
    let settings = flyp::run_dir::settings_from(json!({
        "model": path(&args.model), "data": path(&args.data), "ood": path(&args.ood),
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "wd": args.wd,
    }));
    let inputs: Vec<(&str, &Path)> = [
        ("--model", &args.model),
        ("--data", &args.data),
        ("--ood", &args.ood),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
    .collect();
    let _run = flyp::run_dir::RunDir::open(
        &args.out,
        "demo",
        settings,
        &inputs,
        flyp::run_dir::Existing::Continue,
    )?;
    let mut reports = vec![report(device_choice, &args, first, &args.out)?];
    for &seed in more {
        let out = args.out.join(format!("seed-{seed}"));
        reports.push(report(device_choice, &args, seed, &out)?);
    }
    if reports.len() > 1 {
        summarise(&args, &reports)?;
    }
    Ok(())
}

/// Mean and sample standard deviation of each method's ID and OOD top-1 over the seeds.
fn summarise(args: &DemoArgs, reports: &[Value]) -> anyhow::Result<()> {
    let methods: Vec<String> = reports[0]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["method"].as_str().map(String::from))
        .collect();
    let stats = |values: &[f64]| {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (mean, var.sqrt())
    };
    println!(
        "\nover seeds {:?}: top-1 %, mean ± standard deviation (WiSE-FT α chosen by val per seed)",
        args.seeds
    );
    println!("{:<32}{:>18}{:>18}", "method", "test (ID)", "ood");
    let mut rows = Vec::new();
    for method in &methods {
        // WiSE-FT rows name their α, which may differ per seed: match on the method part.
        let key = method.split(" α=").next().unwrap_or(method);
        let picked: Vec<&Value> = reports
            .iter()
            .filter_map(|r| {
                r["rows"].as_array().into_iter().flatten().find(|row| {
                    row["method"].as_str().and_then(|m| m.split(" α=").next()) == Some(key)
                })
            })
            .collect();
        let values = |set: &str| -> Vec<f64> {
            picked
                .iter()
                .filter_map(|row| row["top1"][set].as_f64())
                .map(|v| 100.0 * v)
                .collect()
        };
        let (id, ood) = (stats(&values("test")), stats(&values("ood")));
        println!(
            "{key:<32}{:>11.1} ± {:<4.1}{:>11.1} ± {:<4.1}",
            id.0, id.1, ood.0, ood.1
        );
        rows.push(json!({"method": key, "seeds": picked.len(),
            "test": {"mean": id.0 / 100.0, "std": id.1 / 100.0},
            "ood": {"mean": ood.0 / 100.0, "std": ood.1 / 100.0}}));
    }
    let text =
        serde_json::to_string_pretty(&json!({"schema": 1, "seeds": args.seeds, "rows": rows}))?;
    flyp::model::weights::write_atomic(&args.out.join("seeds.json"), text.as_bytes())?;
    Ok(())
}

/// One seed's runs, table, results.json and pictures in `out`; returns what results.json holds.
fn report(
    device_choice: DeviceChoice,
    args: &DemoArgs,
    seed: u64,
    out: &Path,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| bundled("assets/demo-model"));
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| bundled("assets/emoji-subset/twemoji"));
    let ood = args
        .ood
        .clone()
        .unwrap_or_else(|| bundled("assets/emoji-subset/noto"));
    for (what, path) in [("--model", &model), ("--data", &data), ("--ood", &ood)] {
        anyhow::ensure!(
            path.exists(),
            "{what} {}: not found (run from the repository root, or name it)",
            path.display()
        );
    }
    let runs = out.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| format!("{}: cannot create", runs.display()))?;
    let base = TrainArgs {
        method: "flyp".into(),
        model: model.clone(),
        train: data.clone(),
        val: None,
        test: None,
        evals: vec![("ood".into(), ood.clone())],
        out: runs.clone(),
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        wd: args.wd,
        warmup: None,
        seed,
        templates: "emoji".into(),
        no_augment: false,
        mask_collisions: false,
        resume: false,
        clip_grad_norm: None,
        clamp_logit_scale: false,
        precision: flyp::model::Precision::F32,
    };
    let methods: Vec<String> = ["zeroshot", "linear-probe", "finetune", "lp-ft", "flyp"]
        .map(String::from)
        .to_vec();
    let alphas = flyp::methods::wise_ft::default_alphas();
    super::compare::methods(device_choice, &methods, 0.1, &alphas, base)?;
    let compare = read_json(&runs.join("compare.json"))?;

    eprintln!("flyp: demo: embeddings and pictures");
    let device = super::open_device(device_choice)?;
    let name = |p: &Path| -> String {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let subtitle = format!(
        "fine-tuned on {} (ID), tested on {} (OOD); base model {}; seed {}; {} epochs",
        name(&data),
        name(&ood),
        name(&model),
        seed,
        args.epochs
    );
    let (id_name, ood_name) = ("test", "ood");
    let top1 = |row: &Value, set: &str| row["top1"][set].as_f64().unwrap_or(f64::NAN);
    let points: Vec<Point> = compare["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| Point {
            method: row["method"].as_str().unwrap_or("?").to_string(),
            id: top1(row, id_name),
            ood: top1(row, ood_name),
        })
        .collect();
    let curves: Vec<Curve> = compare["wise"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(method, wise)| Curve {
            method: method.clone(),
            points: wise["curve"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let set = |s: &str| p["sets"][s]["top1"].as_f64().unwrap_or(f64::NAN);
                    (
                        p["alpha"].as_f64().unwrap_or(f64::NAN),
                        set(id_name),
                        set(ood_name),
                    )
                })
                .collect(),
        })
        .collect();
    let mut epoch_runs = Vec::new();
    for method in ["finetune", "lp-ft", "flyp"] {
        let results = flyp::train::RunResults::read(&runs.join(method).join("results.json"))?;
        let points = results
            .top1_by_epoch(id_name)
            .into_iter()
            .zip(results.top1_by_epoch(ood_name))
            .map(|((epoch, id), (_, ood))| (epoch as f64, id, ood))
            .collect();
        epoch_runs.push(EpochCurve {
            method: method.into(),
            points,
        });
    }
    let zero_shot = points
        .iter()
        .find(|p| p.method == "zeroshot")
        .map(|p| (p.id, p.ood));
    write_figure(
        &figures::id_vs_ood(&points, &curves, "Twemoji test", "Noto", &subtitle),
        out,
        "id_vs_ood",
    )?;
    write_figure(
        &figures::accuracy_vs_alpha(&curves, "Twemoji test", "Noto", &subtitle),
        out,
        "wise_alpha",
    )?;
    write_figure(
        &figures::epoch_curves(&epoch_runs, zero_shot, "Twemoji test", "Noto", &subtitle),
        out,
        "epochs",
    )?;
    let (views, classes) = embedding_views(&device, &model, &runs, &data, &ood)?;
    write_figure(
        &figures::embeddings(&views, &classes, "Twemoji test", "Noto", &subtitle),
        out,
        "embeddings",
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let results = json!({
        "schema": 1,
        "seed": seed,
        "model": model,
        "data": data,
        "ood": ood,
        "device": device.description,
        "settings": {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "wd": args.wd,
                     "lp_ft_lr": args.lr * 0.1, "templates": "emoji", "alphas": alphas},
        "sets": {"id": "test", "ood": "ood"},
        "rows": compare["rows"],
        "wise": compare["wise"],
        "epochs": epoch_runs.iter().map(|r| json!({
            "method": r.method,
            "curve": r.points.iter().map(|p| json!({"epoch": p.0, "test": p.1, "ood": p.2})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "seconds": seconds,
    });
    let text = serde_json::to_string_pretty(&results)?;
    flyp::model::weights::write_atomic(&out.join("results.json"), text.as_bytes())?;
    println!(
        "\ndemo report (seed {seed}) in {}: results.json, id_vs_ood, wise_alpha, epochs, embeddings (.png and .svg); {:.0} s",
        out.display(),
        seconds
    );
    Ok(results)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

/// Zero-shot, FT and FLYP embeddings of the ID test and OOD images and of the class prompts, in
/// the PCA fitted on the zero-shot ones; and the class prompt names.
fn embedding_views(
    device: &ComputeDevice,
    model: &Path,
    runs: &Path,
    data: &Path,
    ood: &Path,
) -> anyhow::Result<(Vec<EmbeddingView>, Vec<String>)> {
    let scan = flyp::data::Scan::folder(data)?;
    let test = scan.test.clone().unwrap_or_default();
    let (ood_samples, _) = flyp::data::Scan::folder(ood)?.align_to(&scan.classes)?;
    let images: Vec<(PathBuf, usize, bool)> = test
        .iter()
        .map(|s| (s.path.clone(), s.label, false))
        .chain(ood_samples.iter().map(|s| (s.path.clone(), s.label, true)))
        .collect();
    let paths: Vec<PathBuf> = images.iter().map(|i| i.0.clone()).collect();
    let templates = flyp::data::prompts::Templates::emoji();
    let embed = |path: &Path| -> anyhow::Result<Vec<Vec<f32>>> {
        let clip = Clip::load(path, device)?;
        Ok(image_and_prompt_embeddings(
            &clip,
            &paths,
            &scan.prompt_names,
            &templates,
        )?)
    };
    let models = [
        ("zero-shot (before fine-tuning)", model.to_path_buf()),
        ("after FT", runs.join("finetune").join("model")),
        ("after FLYP", runs.join("flyp").join("model")),
    ];
    let mut all = Vec::new();
    for (title, path) in &models {
        all.push((title.to_string(), embed(path)?));
    }
    let pca = Pca::fit(&all[0].1, 2).context("no embeddings to project")?;
    let views = all
        .into_iter()
        .map(|(title, rows)| {
            let xy: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| {
                    let p = pca.project(r);
                    (p[0], p[1])
                })
                .collect();
            EmbeddingView {
                title,
                images: images
                    .iter()
                    .zip(&xy)
                    .map(|(i, p)| (p.0, p.1, i.1, i.2))
                    .collect(),
                prompts: xy[images.len()..].to_vec(),
            }
        })
        .collect();
    Ok((views, scan.prompt_names))
}
