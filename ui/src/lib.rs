//! flyp-studio, the desktop app: an eframe (wgpu) front end over the `flyp` library.

pub mod app;
pub mod compute;
pub mod thumbs;
pub mod worker;
