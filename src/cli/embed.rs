//! `flyp embed`: L2-normalised CLIP embeddings of images and texts as one JSON object.

use std::path::PathBuf;

use flyp::{Clip, DeviceChoice};

use super::{model_arg, open_device};

/// `flyp embed`'s arguments (the command's help is its variant's doc in `main.rs`).
#[derive(clap::Args)]
pub struct EmbedArgs {
    /// A Hugging Face CLIP folder (config.json + model.safetensors or shards), a .safetensors
    /// file, or a Hub id (owner/name: downloaded once into FLYP_CACHE, else ~/.cache/flyp/hub).
    #[arg(long, value_parser = model_arg)]
    pub model: PathBuf,
    /// An image file (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// A text (repeatable; an empty string is a valid text).
    #[arg(long = "text")]
    pub texts: Vec<String>,
}

pub fn run(device_choice: DeviceChoice, args: EmbedArgs) -> anyhow::Result<()> {
    let EmbedArgs {
        model,
        images,
        texts,
    } = args;
    let device = open_device(device_choice)?;
    let clip = Clip::load(&model, &device)?;
    let image_embeds = clip.embed_images(&images)?;
    let text_embeds = clip.embed_texts(&texts)?;
    let out = serde_json::json!({ "image_embeds": image_embeds, "text_embeds": text_embeds });
    println!("{out}");
    Ok(())
}
