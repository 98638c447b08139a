//! flyp-studio: the desktop face of flyp. For now a window that opens on eframe's wgpu renderer and
//! shows what it runs on; the trainer screens arrive with the app issue.

use eframe::egui;
use flyp_studio::app;

fn main() -> eframe::Result {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("flyp-studio")
            .with_inner_size([960.0, 640.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "flyp-studio",
        options,
        Box::new(|cc| Ok(Box::new(app::Studio::new(cc)))),
    )
}
