//! `flyp scan`: what a dataset folder or CSV holds, what is skipped and why.

use std::path::PathBuf;

use flyp::DeviceChoice;

/// `flyp scan`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct ScanArgs {
    /// The folder (or .csv manifest).
    pub dir: PathBuf,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_device_choice: DeviceChoice, args: ScanArgs) -> anyhow::Result<()> {
    let ScanArgs { dir, json } = args;
    let scan = flyp::data::Scan::folder(&dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&scan_json(&scan))?);
    } else {
        print_scan(&scan);
    }
    Ok(())
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
