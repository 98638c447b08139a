//! The application state and its one screen.

use eframe::egui;

/// The app: what the window shows.
#[derive(Default)]
pub struct Studio {
    /// The GPU adapter eframe draws with, e.g. "llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan)".
    pub adapter: Option<String>,
    /// Files the user dropped on the window.
    pub dropped: Vec<String>,
}

impl Studio {
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let adapter = cc.wgpu_render_state.as_ref().map(|rs| {
            let info = rs.adapter.get_info();
            format!("{} ({:?})", info.name, info.backend)
        });
        Self {
            adapter,
            dropped: Vec::new(),
        }
    }

    /// Draw the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let dropped = ui.ctx().input(|i| i.raw.dropped_files.clone());
        self.dropped
            .extend(dropped.iter().map(|f| f.path().display().to_string()));
        ui.heading("flyp-studio");
        ui.label(format!(
            "flyp {} — fine-tune CLIP like you pretrain",
            env!("CARGO_PKG_VERSION")
        ));
        ui.separator();
        ui.label(match &self.adapter {
            Some(name) => format!("Drawing on: {name}"),
            None => "Drawing on: (no wgpu adapter reported)".to_string(),
        });
        ui.label("Drop a folder of labelled images here to start.");
        for path in &self.dropped {
            ui.monospace(path);
        }
    }
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.show(ui));
    }
}
