//! flyp-studio, the desktop app: an eframe (wgpu) front end over the `flyp` library.

pub mod app;
pub mod worker;
