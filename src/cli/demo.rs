//! `flyp demo`: the whole story in one command (README, "How the demo is designed"). Zero-shot,
//! linear probe, FT, LP-FT and FLYP (with their WiSE-FT curves) on the bundled emoji experiment —
//! Twemoji in distribution, the same test emoji in Noto and in three art styles the model never
//! saw out of distribution — from the bundled demo model; then the table with bootstrap intervals
//! and the report pictures. `--lr-grid` is the one-off tuning run that chose each method's lr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flyp::data::Sample;
use flyp::embed::Clip;
use flyp::methods::Method;
use flyp::methods::head::ClassHead;
use flyp::methods::recipe::{DataPaths, RunSpec};
use flyp::methods::wise_ft::WiseFt;
use flyp::methods::zeroshot::{evaluate, image_and_prompt_embeddings};
use flyp::report::PALETTE;
use flyp::report::figures::{self, Curve, EmbeddingView, EpochCurve, Point};
use flyp::report::projection::Pca;
use flyp::report::write_figure;
use flyp::train::engine::TrainData;
use flyp::{ComputeDevice, DeviceChoice};
use serde_json::{Value, json};

use super::demo_table::{REPLICATES, intervals, print_intervals};

/// The fine-tuning methods, in table order; each has a WiSE-FT row.
const TUNED: [&str; 3] = ["finetune", "lp-ft", "flyp"];

/// `flyp demo`'s arguments: everything has the demo's default.
#[derive(clap::Args, Clone)]
pub struct DemoArgs {
    /// The report folder (runs are kept in OUT/runs; a second call reuses finished runs).
    #[arg(long, default_value = "demo-report")]
    pub out: PathBuf,
    /// Seeds: the first one's report is written in OUT, each further seed's in OUT/seed-N; with
    /// more than one, every accuracy and planned difference with its interval over seeds and
    /// test images together (OUT/seeds.json).
    #[arg(long, value_delimiter = ',', default_values_t = [0])]
    pub seeds: Vec<u64>,
    /// The base model (default: the bundled demo model, assets/demo-model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The ID dataset with train/val/test folders (default: assets/emoji-subset/twemoji).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// OOD sets, NAME=DIR, repeatable (default: noto=assets/emoji-subset/noto and
    /// unseen-styles=assets/emoji-subset/unseen-styles).
    #[arg(long = "ood", value_parser = super::parse_named_dir)]
    pub oods: Vec<(String, PathBuf)>,
    #[arg(long, default_value_t = 10, value_parser = super::positive_count)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32, value_parser = super::positive_count)]
    pub batch: usize,
    /// FT's learning rate (chosen on validation by --lr-grid; README).
    #[arg(long, default_value_t = flyp::methods::finetune::Finetune.demo_lr(), value_parser = super::positive_number)]
    pub lr_finetune: f64,
    /// LP-FT's learning rate for its fine-tuning stage (chosen on validation).
    #[arg(long, default_value_t = flyp::methods::lp_ft::LpFt.demo_lr(), value_parser = super::positive_number)]
    pub lr_lp_ft: f64,
    /// FLYP's learning rate (chosen on validation).
    #[arg(long, default_value_t = flyp::methods::flyp::Flyp.demo_lr(), value_parser = super::positive_number)]
    pub lr_flyp: f64,
    #[arg(long, default_value_t = 0.1, value_parser = super::non_negative_number)]
    pub wd: f64,
    /// Train FT and LP-FT without WiSE-FT's gradient clipping (global norm 1.0).
    #[arg(long)]
    pub no_clip_grad: bool,
    /// Instead of the report: train FT, LP-FT and FLYP at each of these learning rates (first
    /// seed; validation only, no test set is read) and print each one's best validation top-1.
    #[arg(long, value_delimiter = ',', value_parser = super::positive_number)]
    pub lr_grid: Vec<f64>,
}

impl DemoArgs {
    fn lr(&self, method: &str) -> f64 {
        match method {
            "finetune" => self.lr_finetune,
            "lp-ft" => self.lr_lp_ft,
            _ => self.lr_flyp,
        }
    }
}

/// The demo's inputs, resolved.
struct Inputs {
    model: PathBuf,
    data: PathBuf,
    oods: Vec<(String, PathBuf)>,
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
    let inputs = Inputs {
        model: args
            .model
            .clone()
            .unwrap_or_else(|| bundled("assets/demo-model")),
        data: args
            .data
            .clone()
            .unwrap_or_else(|| bundled("assets/emoji-subset/twemoji")),
        oods: if args.oods.is_empty() {
            flyp::methods::DEMO_OOD_SETS
                .map(|n| (n.to_string(), bundled(&format!("assets/emoji-subset/{n}"))))
                .to_vec()
        } else {
            args.oods.clone()
        },
    };
    let paths: Vec<(&str, &Path)> = [
        ("--model", inputs.model.as_path()),
        ("--data", &inputs.data),
    ]
    .into_iter()
    .chain(inputs.oods.iter().map(|(_, p)| ("--ood", p.as_path())))
    .collect();
    for (what, path) in &paths {
        anyhow::ensure!(
            path.exists(),
            "{what} {}: not found (run from the repository root, or name it)",
            path.display()
        );
    }
    // The report folder is a run folder of its own (each seed's runs/ holds `flyp train` folders).
    let resolved = flyp::run_dir::path_setting;
    let settings = flyp::run_dir::settings_from(json!({
        "model": resolved(&inputs.model), "data": resolved(&inputs.data),
        "oods": inputs.oods.iter().map(|(n, p)| (n.clone(), resolved(p))).collect::<Vec<_>>(),
        "epochs": args.epochs, "batch": args.batch, "wd": args.wd,
        "lr_finetune": args.lr_finetune, "lr_lp_ft": args.lr_lp_ft, "lr_flyp": args.lr_flyp,
        "clip_grad": !args.no_clip_grad,
    }));
    let _run = flyp::run_dir::RunDir::open(
        &args.out,
        "demo",
        settings,
        &paths,
        flyp::run_dir::Existing::Continue,
    )?;
    let started = std::time::Instant::now();
    if !args.lr_grid.is_empty() {
        return lr_grid(device_choice, &args, &inputs, first);
    }
    let mut reports = vec![report(device_choice, &args, &inputs, first, &args.out)?];
    for &seed in more {
        let out = args.out.join(format!("seed-{seed}"));
        reports.push(report(device_choice, &args, &inputs, seed, &out)?);
    }
    if reports.len() > 1 {
        let (accuracies, differences) = intervals(&reports)?;
        println!(
            "\nover seeds {:?} and the test images together:",
            args.seeds
        );
        print_intervals(&reports, &accuracies, &differences);
        let text = serde_json::to_string_pretty(&json!({
            "schema": 2, "seeds": args.seeds, "replicates": REPLICATES, "level": 0.95,
            "sets": reports[0]["sets"], "accuracy": accuracies, "differences": differences,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
        flyp::model::weights::write_atomic(&args.out.join("seeds.json"), text.as_bytes())?;
    }
    println!(
        "flyp demo: {} seed(s) in {:.0} s",
        args.seeds.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One method's `flyp train` run in `runs/<name>`, continued or reused when it is there.
fn train_run(
    device_choice: DeviceChoice,
    args: &DemoArgs,
    base: RunSpec,
    method: &str,
    out: PathBuf,
) -> anyhow::Result<()> {
    let mut spec = base;
    spec.method = flyp::methods::by_name(method)?;
    spec.resume = out.join(flyp::run_dir::MANIFEST).is_file();
    spec.out = Some(out);
    if spec.method.trains() {
        spec.hyper.lr = args.lr(method);
    }
    if !args.no_clip_grad {
        spec = spec.with_reference_clipping();
    }
    super::train::train(device_choice, &spec)
}

/// Every run's settings but the method's (FLYP's here), lr and run folder.
fn base_spec(args: &DemoArgs, inputs: &Inputs, seed: u64) -> RunSpec {
    let data = DataPaths {
        train: inputs.data.clone(),
        evals: inputs.oods.clone(),
        ..Default::default()
    };
    RunSpec {
        hyper: flyp::train::engine::Hyper {
            epochs: args.epochs,
            batch: args.batch,
            lr: args.lr_flyp,
            wd: args.wd,
            seed,
            ..Default::default()
        },
        templates: "emoji".into(),
        ..RunSpec::new(&flyp::methods::flyp::Flyp, inputs.model.clone(), data)
    }
}

/// `--lr-grid`: every tuned method at every lr on train → val only; the best epoch's validation
/// top-1 of each, and each method's best lr (ties: the smaller).
fn lr_grid(
    device_choice: DeviceChoice,
    args: &DemoArgs,
    inputs: &Inputs,
    seed: u64,
) -> anyhow::Result<()> {
    let grid_dir = args.out.join("lr-grid");
    let mut base = base_spec(args, inputs, seed);
    base.data = DataPaths {
        train: inputs.data.join("train"),
        val: Some(inputs.data.join("val")),
        ..Default::default()
    };
    let mut table: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for method in TUNED {
        for &lr in &args.lr_grid {
            eprintln!("flyp: demo: lr grid: {method} at lr {lr:e}");
            let mut grid_args = args.clone();
            grid_args.lr_finetune = lr;
            grid_args.lr_lp_ft = lr;
            grid_args.lr_flyp = lr;
            let out = grid_dir.join(format!("{method}-{lr:e}"));
            train_run(device_choice, &grid_args, base.clone(), method, out.clone())?;
            let results = flyp::train::RunResults::read(&out.join("results.json"))?;
            let val = results.best.get("val").map_or(f64::NAN, |m| m.top1);
            table.entry(method).or_default().push((lr, val));
        }
    }
    println!("\nvalidation top-1 % (best epoch) by learning rate, seed {seed}:");
    let header: String = args
        .lr_grid
        .iter()
        .map(|lr| format!("{lr:>10.0e}"))
        .collect();
    println!("{:<10}{header}  chosen", "method");
    let mut chosen = serde_json::Map::new();
    for (method, row) in &table {
        let best = row
            .iter()
            .fold(None::<(f64, f64)>, |b, &(lr, v)| match b {
                Some((_, bv)) if bv >= v => b,
                _ => Some((lr, v)),
            })
            .map_or(f64::NAN, |b| b.0);
        let cells: String = row
            .iter()
            .map(|(_, v)| format!("{:>10.1}", 100.0 * v))
            .collect();
        println!("{method:<10}{cells}  {best:e}");
        chosen.insert(method.to_string(), json!(best));
    }
    let text = serde_json::to_string_pretty(&json!({
        "schema": 1, "seed": seed, "epochs": args.epochs, "batch": args.batch, "wd": args.wd,
        "grid": args.lr_grid,
        "val_top1": table.iter().map(|(m, r)| (m.to_string(), r.iter().map(|x| x.1).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
        "chosen": chosen,
    }))?;
    flyp::model::weights::write_atomic(&args.out.join("lr-grid.json"), text.as_bytes())?;
    Ok(())
}

/// Each set's metrics and predicted class per image, in the order of the run's sets.
type SetPredictions = Vec<(String, flyp::train::Metrics, Vec<usize>)>;

/// Each row's predictions on every set: `method → set → predicted class per image`.
type Predictions = BTreeMap<String, BTreeMap<String, Vec<usize>>>;

/// One seed's runs, table, results.json and pictures in `out`; returns what results.json holds.
fn report(
    device_choice: DeviceChoice,
    args: &DemoArgs,
    inputs: &Inputs,
    seed: u64,
    out: &Path,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let runs = out.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| format!("{}: cannot create", runs.display()))?;
    let base = base_spec(args, inputs, seed);
    for method in ["linear-probe", "finetune", "lp-ft", "flyp"] {
        eprintln!("flyp: demo: {method} (seed {seed})");
        train_run(device_choice, args, base.clone(), method, runs.join(method))?;
    }

    eprintln!("flyp: demo: zero-shot, WiSE-FT curves, embeddings and pictures");
    let data = super::build_data(&base.data, seed)?;
    let device = super::open_device(device_choice)?;
    let templates = flyp::data::prompts::Templates::emoji();
    let zero = Clip::load(&inputs.model, &device)?;
    let zero_head = ClassHead::zero_shot(&zero, &data.prompt_names, &templates)?;
    let mut predictions = Predictions::new();
    let mut top1: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut record = |row: &str, sets: SetPredictions| {
        for (set, metrics, predicted) in sets {
            top1.entry(row.to_string())
                .or_default()
                .insert(set.clone(), metrics.top1);
            predictions
                .entry(row.to_string())
                .or_default()
                .insert(set, predicted);
        }
    };
    let predict_all = |clip: &Clip, head: &ClassHead| -> anyhow::Result<SetPredictions> {
        let mut sets = Vec::new();
        for (name, samples) in &data.evals {
            let (metrics, predicted) = evaluate(clip, head, samples, 64)?;
            sets.push((name.clone(), metrics, predicted));
        }
        Ok(sets)
    };
    record("zeroshot", predict_all(&zero, &zero_head)?);
    let probe = flyp::model::weights::load_head(
        &runs.join("linear-probe").join("head.safetensors"),
        &device.device,
    )?;
    record("linear-probe", predict_all(&zero, &probe)?);
    let alphas = flyp::methods::wise_ft::default_alphas();
    let mut curves = Vec::new();
    let mut chosen_alpha = BTreeMap::new();
    for method in TUNED {
        let run = runs.join(method);
        let head_file = run.join("head.safetensors");
        let heads = if head_file.is_file() {
            Some((
                zero_head.clone(),
                flyp::model::weights::load_head(&head_file, &device.device)?,
            ))
        } else {
            None
        };
        let wise = WiseFt {
            zero_shot: zero.for_inference(),
            fine_tuned: Clip::load(&run.join("model"), &device)?,
            heads,
            prompt_names: data.prompt_names.clone(),
            templates: templates.clone(),
        };
        let mut curve = Vec::new();
        for &alpha in &alphas {
            curve.push((alpha, wise.predict(alpha, &data.evals, 64)?));
        }
        // α by validation top-1 (ties: the larger α, the more fine-tuned model).
        let (best_alpha, best_sets) = curve
            .iter()
            .fold(None::<&(f64, SetPredictions)>, |best, point| match best {
                Some(b) if b.1[0].1.top1 > point.1[0].1.top1 => Some(b),
                _ => Some(point),
            })
            .context("no α")?
            .clone();
        let (_, at_one) = curve.last().context("no α")?.clone();
        record(method, at_one);
        record(&format!("{method} + WiSE-FT"), best_sets);
        chosen_alpha.insert(method.to_string(), best_alpha);
        curves.push((method, curve));
    }

    let set_names: Vec<String> = data.evals.iter().map(|(n, _)| n.clone()).collect();
    anyhow::ensure!(
        set_names.len() > 2 && set_names[0] == "val" && set_names[1] == "test",
        "--data {}: the demo needs train/, val/ and test/ folders and at least one --ood set",
        inputs.data.display()
    );
    let ood_names: Vec<String> = set_names[2..].to_vec();
    let ood_mean = |sets: &BTreeMap<String, f64>| -> f64 {
        ood_names.iter().map(|n| sets[n]).sum::<f64>() / ood_names.len() as f64
    };
    let row_names: Vec<String> = ["zeroshot", "linear-probe"]
        .into_iter()
        .map(String::from)
        .chain(
            TUNED
                .iter()
                .flat_map(|m| [m.to_string(), format!("{m} + WiSE-FT")]),
        )
        .collect();
    let labels: BTreeMap<String, Vec<usize>> = data
        .evals
        .iter()
        .map(|(n, s)| (n.clone(), s.iter().map(|s| s.label).collect()))
        .collect();
    let seconds_runs = started.elapsed().as_secs_f64();
    let mut results = json!({
        "schema": 2,
        "seed": seed,
        "model": inputs.model,
        "data": inputs.data,
        "oods": inputs.oods,
        "device": device.description,
        "settings": {"epochs": args.epochs, "batch": args.batch, "wd": args.wd,
                     "lr": {"finetune": args.lr_finetune, "lp-ft": args.lr_lp_ft, "flyp": args.lr_flyp},
                     "clip_grad_norm_ft": if args.no_clip_grad { Value::Null } else { json!(1.0) },
                     "templates": "emoji", "alphas": alphas},
        "sets": {"val": "val", "id": "test", "ood": ood_names},
        "rows": row_names.iter().map(|r| json!({
            "method": r, "top1": top1[r], "ood_mean": ood_mean(&top1[r]),
            "alpha": r.strip_suffix(" + WiSE-FT").and_then(|m| chosen_alpha.get(m)),
        })).collect::<Vec<_>>(),
        "wise": curves.iter().map(|(m, c)| (m.to_string(), c.iter().map(|(a, sets)| json!({
            "alpha": a,
            "top1": sets.iter().map(|(n, m, _)| (n.clone(), m.top1)).collect::<BTreeMap<_, _>>(),
        })).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
        "labels": labels,
        "predictions": predictions,
    });
    let (accuracies, differences) = intervals(std::slice::from_ref(&results))?;
    results["accuracy"] = json!(accuracies);
    results["differences"] = json!(differences);
    println!("\ndemo, seed {seed} (intervals over the test images):");
    print_intervals(std::slice::from_ref(&results), &accuracies, &differences);

    // Pictures: OOD = the mean over the OOD sets.
    let subtitle = format!(
        "fine-tuned on Twemoji (ID); OOD = mean of {}; demo model; seed {seed}; {} epochs",
        ood_names.join(", "),
        args.epochs
    );
    let ood_label = "OOD mean";
    let points: Vec<Point> = row_names
        .iter()
        .map(|r| Point {
            method: r.replace(
                " + WiSE-FT",
                &format!(
                    " + WiSE-FT α={}",
                    chosen_alpha
                        .get(r.split(" +").next().unwrap_or(r))
                        .copied()
                        .unwrap_or(1.0)
                ),
            ),
            id: top1[r]["test"],
            ood: ood_mean(&top1[r]),
        })
        .collect();
    let wise_curves: Vec<Curve> = curves
        .iter()
        .map(|(method, curve)| Curve {
            method: method.to_string(),
            points: curve
                .iter()
                .map(|(alpha, sets)| {
                    let by_name: BTreeMap<String, f64> =
                        sets.iter().map(|(n, m, _)| (n.clone(), m.top1)).collect();
                    (*alpha, by_name["test"], ood_mean(&by_name))
                })
                .collect(),
        })
        .collect();
    let mut epoch_runs = Vec::new();
    for method in TUNED {
        let results = flyp::train::RunResults::read(&runs.join(method).join("results.json"))?;
        let id = results.top1_by_epoch("test");
        let oods: Vec<Vec<(usize, f64)>> =
            ood_names.iter().map(|n| results.top1_by_epoch(n)).collect();
        let points = id
            .iter()
            .enumerate()
            .map(|(i, &(epoch, v))| {
                let ood = oods.iter().map(|o| o[i].1).sum::<f64>() / oods.len() as f64;
                (epoch as f64, v, ood)
            })
            .collect();
        epoch_runs.push(EpochCurve {
            method: method.into(),
            points,
        });
    }
    let zero_shot = Some((top1["zeroshot"]["test"], ood_mean(&top1["zeroshot"])));
    write_figure(
        &figures::id_vs_ood(&points, &wise_curves, "Twemoji test", ood_label, &subtitle),
        out,
        "id_vs_ood",
    )?;
    write_figure(
        &figures::accuracy_vs_alpha(&wise_curves, "Twemoji test", ood_label, &subtitle),
        out,
        "wise_alpha",
    )?;
    write_figure(
        &figures::epoch_curves(&epoch_runs, zero_shot, "Twemoji test", ood_label, &subtitle),
        out,
        "epochs",
    )?;
    let (views, classes) = embedding_views(&device, &inputs.model, &runs, &data, &ood_names[0])?;
    let shown = if classes.len() < data.prompt_names.len() {
        format!(
            "; the {} largest of the {} classes",
            classes.len(),
            data.prompt_names.len()
        )
    } else {
        String::new()
    };
    write_figure(
        &figures::embeddings(
            &views,
            &classes,
            "Twemoji test",
            &ood_names[0],
            &format!("{subtitle}{shown}"),
        ),
        out,
        "embeddings",
    )?;
    let seconds = started.elapsed().as_secs_f64();
    results["seconds"] = json!(seconds);
    results["seconds_training"] = json!(seconds_runs);
    let text = serde_json::to_string_pretty(&results)?;
    flyp::model::weights::write_atomic(&out.join("results.json"), text.as_bytes())?;
    println!(
        "demo report (seed {seed}) in {}: results.json, id_vs_ood, wise_alpha, epochs, embeddings (.png and .svg); {seconds:.0} s",
        out.display(),
    );
    Ok(results)
}

/// Zero-shot, FT and FLYP embeddings of the ID test and the first OOD set's images and of the
/// class prompts, in the PCA fitted on the zero-shot ones; and the class prompt names. With more
/// classes than the palette has colours, only the classes with the most ID test images are shown
/// (colours would repeat and the legend would not fit), and the PCA is fitted on those.
fn embedding_views(
    device: &ComputeDevice,
    model: &Path,
    runs: &Path,
    data: &TrainData,
    ood: &str,
) -> anyhow::Result<(Vec<EmbeddingView>, Vec<String>)> {
    let set = |name: &str| {
        data.evals
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    let test = set("test");
    let shown = largest_classes(&test, data.prompt_names.len(), PALETTE.len());
    let names: Vec<String> = shown
        .iter()
        .map(|&c| data.prompt_names[c].clone())
        .collect();
    let images: Vec<(PathBuf, usize, bool)> = test
        .iter()
        .map(|s| (s, false))
        .chain(set(ood).iter().map(|s| (s, true)))
        .filter_map(|(s, ood)| {
            let class = shown.iter().position(|&c| c == s.label)?;
            Some((s.path.clone(), class, ood))
        })
        .collect();
    let paths: Vec<PathBuf> = images.iter().map(|i| i.0.clone()).collect();
    let templates = flyp::data::prompts::Templates::emoji();
    let embed = |path: &Path| -> anyhow::Result<Vec<Vec<f32>>> {
        let clip = Clip::load(path, device)?;
        Ok(image_and_prompt_embeddings(
            &clip, &paths, &names, &templates,
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
    Ok((views, names))
}

/// The (at most) `most` classes with the most samples, in class order; ties go to the lower class.
fn largest_classes(samples: &[Sample], classes: usize, most: usize) -> Vec<usize> {
    let mut counts = vec![0usize; classes];
    for s in samples {
        counts[s.label] += 1;
    }
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(counts[c]));
    order.truncate(most);
    order.sort_unstable();
    order
}
