//! flyp: fine-tune CLIP like you pretrain (FLYP, Goyal et al., CVPR 2023) and its baselines, on any
//! GPU through wgpu or on the CPU through burn's Flex backend.
//!
//! Layers: [`model`] (CLIP in burn, HF weights), [`tokenizer`], [`data`] (decoding, CLIP
//! preprocessing, dataset folders, the loader), [`embed`] (a loaded model and its embedding entry
//! points), [`device`], [`contrastive`] (FLYP's loss: WGSL kernels and the plain-ops reference),
//! [`train`] (the training loop, checkpoints), [`methods`] (zero-shot, linear probe, WiSE-FT, the
//! recipes), [`run_dir`] (run folders: ownership, lock, resume settings, safe writes), [`hub`]
//! (Hugging Face downloads), [`report`] (the demo's pictures).
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
pub mod wgsl;

pub use device::{ComputeDevice, DeviceChoice};
pub use embed::Clip;
pub use error::{Error, Result};
