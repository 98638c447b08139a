//! `flyp eval`: zero-shot top-1 and macro-F1 of a model on dataset folders.

use std::path::PathBuf;

use flyp::{Clip, DeviceChoice};

use super::{model_arg, open_device, parse_named_dir};

/// `flyp eval`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A Hugging Face CLIP folder, .safetensors file or Hub id (owner/name).
    #[arg(long, value_parser = model_arg)]
    pub model: PathBuf,
    /// The dataset: its test split when it has one (else every image); classes come from here.
    #[arg(long)]
    pub data: PathBuf,
    /// Extra evaluation sets (e.g. an out-of-distribution style), NAME=DIR, repeatable.
    #[arg(long = "eval", value_parser = parse_named_dir)]
    pub evals: Vec<(String, PathBuf)>,
    /// Prompt templates: openai (80 ImageNet templates), simple ("a photo of a {}."), or a file.
    #[arg(long, default_value = "openai")]
    pub templates: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(device_choice: DeviceChoice, args: EvalArgs) -> anyhow::Result<()> {
    let EvalArgs {
        model,
        data,
        evals,
        templates,
        batch,
        json,
    } = args;
    flyp::train::engine::check_eval_names(&evals)?;
    let device = open_device(device_choice)?;
    let clip = Clip::load(&model, &device)?;
    let templates = flyp::data::prompts::Templates::named(&templates)?;
    let scan = flyp::data::Scan::folder(&data)?;
    let head = flyp::methods::head::ClassHead::zero_shot(&clip, &scan.prompt_names, &templates)?;
    let mut sets = vec![(
        if scan.test.is_some() {
            "test".to_string()
        } else {
            "all".to_string()
        },
        scan.test.clone().unwrap_or_else(|| scan.train.clone()),
    )];
    let (named, warnings) = flyp::train::data::named_sets(&evals, &scan.classes)?;
    warnings
        .iter()
        .for_each(|w| eprintln!("flyp: warning: {w}"));
    sets.extend(named);
    let mut results = Vec::new();
    for (name, samples) in &sets {
        let (metrics, _) = flyp::methods::zeroshot::evaluate(&clip, &head, samples, batch.max(1))?;
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
