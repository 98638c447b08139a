//! Integration tests: one binary, one module per area.
//!
//! wgpu tests need a Vulkan/Metal/DX12 adapter (CI installs Mesa's llvmpipe). Without one they
//! fail, unless `FLYP_SKIP_WGPU=1` says to skip them (printed).

mod cli;
mod common;
mod contrastive;
mod data;
mod demo;
mod fuzz;
mod gpu_ops;
mod head;
mod hub;
mod parity;
mod precision;
#[cfg(unix)]
mod safety;
mod training;
mod weights;
mod zeroshot;
