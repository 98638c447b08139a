//! `flyp compare`: every method on one dataset, each into its own run folder, one ID/OOD table.

use flyp::{Clip, DeviceChoice};

use super::train::TrainArgs;
use super::{build_data, input_paths, open_device};

/// `flyp compare`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Methods to run, in order.
    #[arg(long, value_delimiter = ',', default_values_t = ["zeroshot", "linear-probe", "finetune", "lp-ft", "flyp"].map(String::from))]
    pub methods: Vec<String>,
    /// LP-FT's fine-tuning stage runs at --lr times this (Kumar et al. use a much smaller one).
    #[arg(long, default_value_t = 0.1)]
    pub lp_ft_lr_scale: f64,
    /// Train FT and LP-FT without WiSE-FT's gradient clipping (global norm 1.0; an explicit
    /// --clip-grad-norm applies to every method instead).
    #[arg(long)]
    pub no_clip_grad: bool,
    /// WiSE-FT α values.
    #[arg(long, value_delimiter = ',', default_values_t = flyp::methods::wise_ft::default_alphas())]
    pub alphas: Vec<f64>,
    /// Everything `flyp train` takes (--method is set per run; --out is the comparison folder).
    #[command(flatten)]
    pub train: TrainArgs,
}

pub fn run(device_choice: DeviceChoice, args: CompareArgs) -> anyhow::Result<()> {
    let CompareArgs {
        methods: names,
        lp_ft_lr_scale,
        no_clip_grad,
        alphas,
        train,
    } = args;
    methods(
        device_choice,
        &names,
        lp_ft_lr_scale,
        !no_clip_grad,
        &alphas,
        train,
    )
}

/// `flyp compare`: every method on one dataset, one table.
pub fn methods(
    device_choice: DeviceChoice,
    methods: &[String],
    lp_ft_lr_scale: f64,
    reference_clipping: bool,
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
    let resolved = flyp::run_dir::path_setting;
    let settings = flyp::run_dir::settings_from(serde_json::json!({
        "lp_ft_lr_scale": lp_ft_lr_scale,
        "model": resolved(&base.model), "train": resolved(&base.train),
        "val": base.val.as_deref().map(resolved), "test": base.test.as_deref().map(resolved),
        "evals": base.evals.iter().map(|(n, p)| (n.clone(), resolved(p))).collect::<Vec<_>>(),
        "epochs": base.epochs, "seed": base.seed,
    }));
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
                flyp::methods::head::ClassHead::zero_shot(&clip, &data.prompt_names, &templates)?;
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
        if reference_clipping {
            args = args.with_reference_clipping()?;
        }
        super::train::run(device_choice, args)?;
        let results = flyp::train::RunResults::read(&out.join("results.json"))?;
        let best = set_names
            .iter()
            .map(|n| (n.clone(), results.best.get(n).map_or(f64::NAN, |m| m.top1)))
            .collect();
        rows.push((method.clone(), best));
        if matches!(
            method.as_str(),
            "finetune" | "lp-ft" | "flyp" | "ce-ablation"
        ) {
            let wise = super::wise::curve(device_choice, &out, alphas, 64)?;
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
    let header: String = set_names.iter().map(|n| format!(" {n:>10}")).collect();
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
