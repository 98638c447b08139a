//! `flyp export`: a model written as a Hugging Face CLIP folder.

use std::path::PathBuf;

use flyp::{Clip, DeviceChoice};

use super::{model_arg, open_device};

/// `flyp export`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The model to read (same forms as `embed --model`).
    #[arg(long, value_parser = model_arg)]
    pub model: PathBuf,
    /// The folder to write: new or empty (an export killed midway is never loaded as a model).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(device_choice: DeviceChoice, args: ExportArgs) -> anyhow::Result<()> {
    let ExportArgs { model, out } = args;
    flyp::run_dir::check_overlap(&out, &[("--model", &model)])?;
    let device = open_device(device_choice)?;
    let clip = Clip::load(&model, &device)?;
    clip.save(&out)?;
    eprintln!("flyp: wrote {}", out.display());
    Ok(())
}
