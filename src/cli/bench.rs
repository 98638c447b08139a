//! `flyp bench`: benchmarks that print tables.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use flyp::DeviceChoice;

use super::{open_device, precision_arg};

#[derive(Subcommand)]
pub enum Bench {
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
        /// flyp, finetune, eval (image-tower forward without autodiff, as evaluation runs),
        /// eval-both (both towers' forward without autodiff: what the FLYP step's forward does).
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
        /// Also count the kernels one step launches, by kind (cubecl's launch log, wgpu only),
        /// in a second process per row so that logging does not slow the timed steps.
        #[arg(long)]
        kernels: bool,
        /// (Internal: the counting process of --kernels) log launches into this file and print
        /// one `kernels` line per row.
        #[arg(long, hide = true)]
        kernel_log: Option<PathBuf>,
        /// (For before/after tables) step AdamW one parameter at a time with burn's ops on wgpu,
        /// as before the multi-tensor AdamW.
        #[arg(long, hide = true)]
        adamw_per_parameter: bool,
        /// Clip the gradients' global norm to MAX in the FLYP and FT steps, as FT's recipe does by
        /// default (1.0).
        #[arg(long, value_name = "MAX")]
        clip_grad_norm: Option<f64>,
        /// (For before/after tables) the gradients' sum of squares with burn's ops one gradient
        /// at a time on wgpu, and clipping and unscaling as a multiplication per gradient, as
        /// before the multi-tensor sum.
        #[arg(long, hide = true)]
        grad_norm_per_tensor: bool,
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

/// One row's kernel launches per step, counted by a second `flyp` process that logs them (`row`:
/// config, step, precision, batch), formatted as the table's columns.
fn count_kernels(
    device_choice: DeviceChoice,
    row: &[&str; 4],
    options: &[String],
) -> anyhow::Result<String> {
    let log = std::env::temp_dir().join(format!("flyp-kernels-{}.log", std::process::id()));
    let exe = std::env::current_exe().context("finding this program to count kernels")?;
    let [config, step, precision, batch] = row;
    let output = std::process::Command::new(exe)
        .args(["--device", &device_choice.to_string(), "bench", "step"])
        .args(["--config", config, "--step", step, "--precision", precision])
        .args(options)
        .args(["--batch", batch, "--steps", "1", "--kernel-log"])
        .arg(&log)
        .output()
        .context("starting the counting process")?;
    let _ = std::fs::remove_file(&log); // this process's own temporary file
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kernels "))
        .with_context(|| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            stderr.lines().last().unwrap_or("no output").to_string()
        })?;
    let n: Vec<usize> = line
        .split_whitespace()
        .map(|v| v.parse())
        .collect::<Result<_, _>>()
        .context("reading the counting process's line")?;
    anyhow::ensure!(n.len() == 6, "the counting process printed {line}");
    Ok(format!(
        "{:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
        n[0], n[1], n[2], n[3], n[4], n[5]
    ))
}

pub fn run(device_choice: DeviceChoice, bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Contrastive { batch, dim, iters } => {
            // The fused path exists on wgpu only: benchmark there unless told otherwise.
            let choice = if device_choice == DeviceChoice::Auto {
                DeviceChoice::Gpu
            } else {
                device_choice
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
        Bench::Step {
            config,
            step,
            batch,
            steps,
            precision,
            phases,
            kernels,
            kernel_log,
            adamw_per_parameter,
            clip_grad_norm,
            grad_norm_per_tensor,
        } => {
            flyp::train::adamw_gpu::set_batched(!adamw_per_parameter);
            flyp::train::grads_gpu::set_multi_tensor(!grad_norm_per_tensor);
            // What the counting process of --kernels must be told too.
            let mut options = Vec::new();
            if adamw_per_parameter {
                options.push("--adamw-per-parameter".to_string());
            }
            if grad_norm_per_tensor {
                options.push("--grad-norm-per-tensor".to_string());
            }
            if let Some(max) = clip_grad_norm {
                options.extend(["--clip-grad-norm".to_string(), max.to_string()]);
            }
            use flyp::train::bench::{StepBench, StepKind, time_steps, tiny_config};
            if let Some(log) = &kernel_log {
                anyhow::ensure!(
                    flyp::train::bench::log_kernel_launches(log),
                    "cubecl's configuration was fixed before the kernel log could be set"
                );
            }
            let device = open_device(device_choice)?;
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
            if kernels {
                print!(
                    " {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
                    "kernels", "matmul", "elemw", "reduce", "layout", "other"
                );
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
                        "eval-both" => StepKind::EvalBoth,
                        other => {
                            anyhow::bail!(
                                "unknown --step '{other}': flyp, finetune, eval or eval-both"
                            )
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
                                kernel_log: kernel_log.clone(),
                                clip_grad_norm,
                            };
                            let t = time_steps(&bench, 2, steps.max(1), &device.device)?;
                            if kernel_log.is_some() {
                                let k = t.kernels.unwrap_or_default();
                                println!(
                                    "kernels {} {} {} {} {} {}",
                                    k.total, k.matmul, k.elementwise, k.reduce, k.layout, k.other
                                );
                                continue;
                            }
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
                            if kernels {
                                let row = [name.as_str(), kind_name, p.name(), &b.to_string()];
                                match count_kernels(device_choice, &row, &options) {
                                    Ok(counts) => print!(" {counts}"),
                                    Err(e) => print!(" kernels not counted: {e:#}"),
                                }
                            }
                            println!();
                        }
                    }
                }
            }
            Ok(())
        }
        Bench::Loader { dir, size, batch } => {
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
    }
}
