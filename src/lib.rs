//! flyp: fine-tune CLIP like you pretrain (FLYP, Goyal et al., CVPR 2023) and its baselines, on any
//! GPU through wgpu or on the CPU through burn's Flex backend.
//!
//! Layers: [`model`] (CLIP in burn, HF weights), [`tokenizer`], [`data`] (decoding and CLIP
//! preprocessing), [`embed`] (a loaded model and its embedding entry points), [`device`].
//! The CLI (`flyp`) and the desktop app (`flyp-studio`) call these same functions.

pub mod contrastive;
pub mod data;
pub mod device;
pub mod embed;
pub mod error;
pub mod hub;
pub mod methods;
pub mod model;
pub mod report;
pub mod run_dir;
pub mod tokenizer;
pub mod train;

pub use device::{ComputeDevice, DeviceChoice};
pub use embed::Clip;
pub use error::{Error, Result};
