//! Thumbnails of image files, decoded and shrunk on the thread "flyp-thumbs" (never in a frame)
//! and uploaded as textures when they arrive. egui_extras' loader would keep full-size decodes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui;

/// Longest side of a thumbnail, in pixels.
pub const SIZE: u32 = 64;

type Decoded = (PathBuf, Result<egui::ColorImage, String>);

/// Textures of the thumbnails asked for so far.
pub struct Thumbnails {
    textures: HashMap<PathBuf, Slot>,
    ask: Option<Sender<PathBuf>>,
    answers: Receiver<Decoded>,
}

enum Slot {
    Pending,
    Ready(egui::TextureHandle),
    Failed(String),
}

impl Thumbnails {
    /// Start the decoding thread; it wakes `ctx` after each thumbnail.
    pub fn new(ctx: &egui::Context) -> Self {
        let (ask, asked) = channel::<PathBuf>();
        let (tx, answers) = channel::<Decoded>();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("flyp-thumbs".into())
            .spawn(move || {
                while let Ok(path) = asked.recv() {
                    let image = flyp::data::transform::thumbnail(&path, SIZE)
                        .map(|rgb| {
                            let size = [rgb.width() as usize, rgb.height() as usize];
                            egui::ColorImage::from_rgb(size, rgb.as_raw())
                        })
                        .map_err(|e| e.to_string());
                    if tx.send((path, image)).is_err() {
                        break;
                    }
                    ctx.request_repaint();
                }
            });
        Self {
            textures: HashMap::new(),
            // Without the thread, every thumbnail stays a placeholder.
            ask: spawned.ok().map(|_| ask),
            answers,
        }
    }

    /// Upload what the thread has finished (call once per frame; never blocks).
    pub fn receive(&mut self, ctx: &egui::Context) {
        while let Ok((path, image)) = self.answers.try_recv() {
            let slot = match image {
                Ok(image) => Slot::Ready(ctx.load_texture(
                    path.display().to_string(),
                    image,
                    egui::TextureOptions::LINEAR,
                )),
                Err(e) => Slot::Failed(e),
            };
            self.textures.insert(path, slot);
        }
    }

    /// The thumbnail of `path` if it is ready; asks for it the first time.
    pub fn get(&mut self, path: &Path) -> Option<&egui::TextureHandle> {
        if !self.textures.contains_key(path) {
            if let Some(ask) = &self.ask {
                let _ = ask.send(path.to_path_buf());
            }
            self.textures.insert(path.to_path_buf(), Slot::Pending);
        }
        match self.textures.get(path) {
            Some(Slot::Ready(texture)) => Some(texture),
            _ => None,
        }
    }

    /// Whether every thumbnail asked for has arrived (decoded or failed).
    pub fn settled(&self) -> bool {
        !self.textures.values().any(|s| matches!(s, Slot::Pending))
    }

    /// Draw the thumbnail of `path` (a grey square while it decodes; the reason on hover if it
    /// cannot be decoded), at most `side` points wide.
    pub fn show(&mut self, ui: &mut egui::Ui, path: &Path, side: f32) -> egui::Response {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(texture) = self.get(path) {
            let size = texture.size_vec2();
            let scale = side / size.x.max(size.y).max(1.0);
            return ui
                .add(egui::Image::new((texture.id(), size * scale)))
                .on_hover_text(name);
        }
        let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
        ui.painter()
            .rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
        match self.textures.get(path) {
            Some(Slot::Failed(reason)) => response.on_hover_text(reason.clone()),
            _ => response.on_hover_text(name),
        }
    }
}
