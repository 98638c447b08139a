//! `flyp`: the command-line face of the library. Every command takes `--device auto|gpu|cpu`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
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
        /// A Hugging Face CLIP folder (config.json + model.safetensors or shards) or a .safetensors file.
        #[arg(long)]
        model: PathBuf,
        /// An image file (repeatable).
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        /// A text (repeatable; an empty string is a valid text).
        #[arg(long = "text")]
        texts: Vec<String>,
    },
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(Bench),
    /// Write a model as a Hugging Face CLIP folder (config.json + f32 model.safetensors, plus its
    /// tokenizer.json and preprocessor_config.json): converts f16/bf16, shards or a bare
    /// .safetensors into what `transformers.CLIPModel.from_pretrained` loads.
    Export {
        /// The model to read (same forms as `embed --model`).
        #[arg(long)]
        model: PathBuf,
        /// The folder to write (created; existing files of the same names are replaced).
        #[arg(long)]
        out: PathBuf,
    },
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
            println!(
                "contrastive loss, forward + backward, median of {iters} after 2 warm-up passes"
            );
            println!("device: {}", device.description);
            println!(
                "{:>6} {:>5} {:>11} {:>11} {:>8}",
                "B", "d", "fused ms", "plain ms", "speedup"
            );
            for (b, d) in sizes {
                let row =
                    flyp::contrastive::bench::run(&device, &[(b, d)], 2, iters.max(1))?.remove(0);
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
        Command::Export { model, out } => {
            let device = open_device(cli.device)?;
            let clip = Clip::load(&model, &device)?;
            clip.save(&out)?;
            eprintln!("flyp: wrote {}", out.display());
            Ok(())
        }
    }
}

/// Resolve `--device` and say once, on stderr, what was chosen.
fn open_device(choice: DeviceChoice) -> anyhow::Result<ComputeDevice> {
    let device = ComputeDevice::select(choice).with_context(|| format!("--device {choice}"))?;
    eprintln!("flyp: device {}", device.description);
    Ok(device)
}
