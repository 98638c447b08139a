//! `flyp wise`: the WiSE-FT curve of a finished `flyp train` run.

use std::path::PathBuf;

use anyhow::Context;
use flyp::{Clip, DeviceChoice};

use super::{build_data, open_device, top1_cells};

/// `flyp wise`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct WiseArgs {
    /// The run folder written by `flyp train`.
    #[arg(long)]
    pub run: PathBuf,
    /// The α values.
    #[arg(long, value_delimiter = ',', default_values_t = flyp::methods::wise_ft::default_alphas())]
    pub alphas: Vec<f64>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

pub fn run(device_choice: DeviceChoice, args: WiseArgs) -> anyhow::Result<()> {
    curve(device_choice, &args.run, &args.alphas, args.batch).map(|_| ())
}

/// `flyp wise`: the WiSE-FT curve of a run; returns what it wrote to `RUN_DIR/wise.json`.
pub fn curve(
    device_choice: DeviceChoice,
    run: &std::path::Path,
    alphas: &[f64],
    batch: usize,
) -> anyhow::Result<serde_json::Value> {
    use flyp::methods::head::ClassHead;
    use flyp::methods::wise_ft::WiseFt;
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
    let paths = flyp::methods::recipe::DataPaths {
        train: train_path,
        val: path("val"),
        test: path("test"),
        evals,
    };
    let data = build_data(&paths, seed)?;
    let device = open_device(device_choice)?;
    let zero = Clip::load(&zero_path, &device)?;
    let tuned = Clip::load(&run.join("model"), &device)?;
    let head_file = run.join("head.safetensors");
    let heads = if head_file.is_file() {
        let zs = ClassHead::zero_shot(&zero, &data.prompt_names, &templates)?;
        Some((
            zs,
            flyp::model::weights::load_head(&head_file, &device.device)?,
        ))
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
    let names: String = data
        .evals
        .iter()
        .map(|(n, _)| format!(" {n:>10}"))
        .collect();
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
