//! flyp-studio: the desktop face of flyp. The window draws with wgpu on a device opened with what
//! burn needs, so training can run on the same device (see `compute`).

use eframe::{egui, egui_wgpu};
use flyp_studio::{app, compute};

fn main() -> eframe::Result {
    let args: Vec<String> = std::env::args().collect();
    let scale = match app::Settings::scale_arg(&args) {
        Ok(scale) => scale,
        Err(line) => {
            eprintln!("flyp-studio: {line}");
            std::process::exit(2);
        }
    };
    let wgpu = egui_wgpu::WgpuConfiguration::default();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("flyp-studio")
            .with_inner_size([1200.0, 780.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: compute::share_with_burn(wgpu.wgpu_setup.clone()),
            ..wgpu
        },
        ..Default::default()
    };
    eframe::run_native(
        "flyp-studio",
        options,
        Box::new(move |cc| Ok(Box::new(app::Studio::new(cc).with_zoom(scale)))),
    )
}
