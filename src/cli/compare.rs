//! `flyp compare`: every method on one dataset, each into its own run folder, one ID/OOD table.

use flyp::DeviceChoice;

use super::train::TrainArgs;
use super::{build_data, open_device};

/// `flyp compare`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Methods to run, in order (default: every method but the CE ablation).
    #[arg(long, value_delimiter = ',', value_parser = super::method_arg())]
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
    let methods: Vec<&'static dyn flyp::methods::Method> = if methods.is_empty() {
        flyp::methods::ALL
            .iter()
            .copied()
            .filter(|m| m.compared_by_default())
            .collect()
    } else {
        methods
            .iter()
            .map(|name| flyp::methods::by_name(name))
            .collect::<flyp::Result<_>>()?
    };
    let root = base.out.clone();
    let base_spec = base.spec()?;
    let inputs = base_spec.inputs();
    // Methods and α values may change between calls (each method's run checks its own settings).
    let resolved = flyp::run_dir::path_setting;
    let paths = &base_spec.data;
    let settings = flyp::run_dir::settings_from(serde_json::json!({
        "lp_ft_lr_scale": lp_ft_lr_scale,
        "model": resolved(&base.model), "train": resolved(&paths.train),
        "val": paths.val.as_deref().map(resolved), "test": paths.test.as_deref().map(resolved),
        "evals": paths.evals.iter().map(|(n, p)| (n.clone(), resolved(p))).collect::<Vec<_>>(),
        "epochs": base.epochs, "seed": base.seed,
    }));
    let _root_run = flyp::run_dir::RunDir::open(
        &root,
        "compare",
        settings,
        &inputs,
        flyp::run_dir::Existing::Continue,
    )?;
    let data = build_data(paths, base.seed)?;
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
        let name = method.name();
        eprintln!("flyp: compare: {name}");
        let top1 = |results: &flyp::train::RunResults| {
            set_names
                .iter()
                .map(|n| (n.clone(), results.best.get(n).map_or(f64::NAN, |m| m.top1)))
                .collect()
        };
        let mut spec = base_spec.clone();
        spec.method = method;
        if !method.fits() {
            // Zero-shot: nothing to keep on disk.
            spec.out = None;
            let device = open_device(device_choice)?;
            let outcome = flyp::methods::recipe::run(&spec, &data, &device, Default::default())?;
            rows.push((name.to_string(), top1(&outcome.results)));
            continue;
        }
        let out = root.join(name);
        spec.out = Some(out.clone());
        // A run of an earlier call is continued (or, when finished, reused as it is).
        spec.resume = out.join(flyp::run_dir::MANIFEST).is_file();
        spec.hyper.lr *= method.compare_lr_scale(lp_ft_lr_scale);
        if reference_clipping {
            spec = spec.with_reference_clipping();
        }
        super::train::train(device_choice, &spec)?;
        let results = flyp::train::RunResults::read(&out.join("results.json"))?;
        rows.push((name.to_string(), top1(&results)));
        if method.trains() {
            let wise = super::wise::curve(device_choice, &out, alphas, 64)?;
            let alpha = wise["alpha_by_val"].as_f64().unwrap_or(1.0);
            if let Some(point) = wise["curve"]
                .as_array()
                .and_then(|c| c.iter().find(|p| p["alpha"].as_f64() == Some(alpha)))
            {
                rows.push((format!("{name} + WiSE-FT α={alpha}"), top1s(&point["sets"])));
            }
            curves.insert(name.to_string(), wise);
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
