//! The application state and its screens: the run settings on the left, the live training
//! curves in the middle, the device in the status bar.

use std::path::{Path, PathBuf};

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use flyp::train::engine::{EpochReport, StepProgress};

use crate::worker::{Embeddings, Event, MethodChoice, Run, RunSpec};
use flyp::report::projection::{Pca, center_groups};

/// A bundled file of the flyp checkout this app was built from.
pub fn bundled(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// An answer to "try an image": the file, the α, and the top classes (class, probability,
/// similarity), most probable first.
pub type Classified = (PathBuf, f64, Vec<(String, f64, f64)>);

/// What a run has reported so far.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub device: String,
    pub classes: Vec<String>,
    pub sets: Vec<String>,
    pub train_images: usize,
    pub steps: Vec<StepProgress>,
    pub epochs: Vec<EpochReport>,
    pub embeddings: Option<Embeddings>,
    /// The last export's outcome.
    pub exported: Option<Result<PathBuf, String>>,
    /// "Try an image": the last answer (path, α, top classes) or the error line.
    pub classified: Option<Result<Classified, String>>,
    /// WiSE-FT evaluations received: (α, every set's metrics), in arrival order.
    pub wise: Vec<(f64, Vec<(String, flyp::train::Metrics)>)>,
    /// Training ended well (the WiSE-FT slider works).
    pub finished: bool,
    /// The last line: finished, stopped, or the error.
    pub outcome: Option<String>,
    pub failed: bool,
}

impl Progress {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Started {
                device,
                classes,
                sets,
                train_images,
            } => {
                self.device = device;
                self.classes = classes;
                self.sets = sets;
                self.train_images = train_images;
            }
            Event::Step(p) => self.steps.push(p),
            Event::Epoch(r) => self.epochs.push(r),
            Event::Embeddings(e) => self.embeddings = Some(e),
            Event::Classified { path, alpha, top } => {
                self.classified = Some(Ok((path, alpha, top)))
            }
            Event::ImageFailed(line) => self.classified = Some(Err(line)),
            Event::Exported(result) => self.exported = Some(result),
            Event::Wise { alpha, sets } => {
                self.wise.retain(|(a, _)| *a != alpha);
                self.wise.push((alpha, sets));
            }
            Event::Finished {
                best_epoch,
                seconds,
            } => {
                self.finished = true;
                self.outcome = Some(format!(
                    "finished in {seconds:.0} s; best epoch {best_epoch} by validation top-1"
                ))
            }
            Event::Stopped(line) => self.outcome = Some(line),
            Event::Failed(line) => {
                self.outcome = Some(format!("error: {line}"));
                self.failed = true;
            }
        }
    }

    /// "epoch 2/10 · step 14/70 · 31 images/s · ETA 12 s"
    pub fn status_line(&self, epochs: usize) -> String {
        match self.steps.last() {
            Some(p) => format!(
                "epoch {}/{epochs} · step {}/{} · {:.0} images/s · ETA {:.0} s",
                p.epoch, p.step, p.total, p.images_per_s, p.eta_s
            ),
            None if self.device.is_empty() => "loading the data and the model…".into(),
            None => format!("{} training images; first step…", self.train_images),
        }
    }
}

/// The app: settings, the current run and what it reported.
pub struct Studio {
    /// The GPU adapter eframe draws with, e.g. "llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan)".
    pub adapter: Option<String>,
    pub spec: RunSpec,
    /// The OOD set's folder (one; named "ood").
    pub ood: Option<PathBuf>,
    pub run: Option<Run>,
    pub progress: Progress,
    pub view: View,
    /// Embedding view: remove each modality's mean (hides the modality gap).
    pub center_modalities: bool,
    /// Embedding view: 0 = before fine-tuning, 1 = after; in between, positions are blended.
    pub blend: f32,
    /// WiSE-FT α of the Results view (0 = the starting weights, 1 = the fine-tuned ones).
    pub alpha: f64,
    /// α values asked of the worker (each is evaluated once, in order).
    requested: Vec<f64>,
    /// The α slider is being dragged: ask only when it is let go.
    alpha_dragging: bool,
    /// Where "Export" writes (`model/` at the current α and `results.json`).
    pub export_dir: PathBuf,
    /// "Try an image": the image to classify with the finished run's model at the current α.
    pub try_image: PathBuf,
    /// The training folder's scan report (or the error), and a scan in flight.
    pub scan: Option<Result<flyp::data::Scan, String>>,
    scan_rx: Option<std::sync::mpsc::Receiver<Result<flyp::data::Scan, String>>>,
    /// The projected points (before, after) and the centring they were made with.
    projected: Option<(bool, Projected)>,
}

/// The central panel's screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Training,
    Embeddings,
    Results,
}

/// A colour per class (Tableau 10, as the report pictures).
fn class_colour(class: usize) -> egui::Color32 {
    const HEX: [u32; 10] = [
        0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f, 0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f,
        0xbab0ac,
    ];
    let h = HEX[class % HEX.len()];
    egui::Color32::from_rgb((h >> 16) as u8, (h >> 8) as u8, h as u8)
}

impl Studio {
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let adapter = cc.wgpu_render_state.as_ref().map(|rs| {
            let info = rs.adapter.get_info();
            format!("{} ({:?})", info.name, info.backend)
        });
        Self {
            adapter,
            spec: RunSpec {
                method: MethodChoice::Flyp,
                model: bundled("assets/demo-model"),
                train: bundled("assets/emoji-subset/twemoji"),
                evals: Vec::new(),
                epochs: 10,
                batch: 32,
                lr: 1e-4,
                wd: 0.1,
                seed: 0,
                templates: "emoji".into(),
                out: None,
                resume: false,
            },
            ood: Some(bundled("assets/emoji-subset/noto")),
            run: None,
            progress: Progress::default(),
            view: View::Training,
            center_modalities: false,
            blend: 1.0,
            alpha: 1.0,
            requested: Vec::new(),
            alpha_dragging: false,
            scan: None,
            scan_rx: None,
            try_image: PathBuf::new(),
            export_dir: PathBuf::from("flyp-studio-export"),
            projected: None,
        }
    }

    /// A run is training (its worker stays to answer WiSE-FT requests afterwards).
    pub fn is_running(&self) -> bool {
        self.run.is_some() && self.progress.outcome.is_none()
    }

    /// Start a run with the current settings (the Start button).
    pub fn start(&mut self, ctx: &egui::Context) {
        let mut spec = self.spec.clone();
        spec.evals = self
            .ood
            .iter()
            .map(|p| ("ood".to_string(), p.clone()))
            .collect();
        self.progress = Progress::default();
        self.projected = None;
        self.requested.clear();
        match Run::start(spec, ctx.clone()) {
            Ok(run) => self.run = Some(run),
            Err(e) => {
                self.progress.outcome = Some(format!("error: cannot start the worker thread: {e}"));
                self.progress.failed = true;
            }
        }
    }

    /// Scan the training folder on a worker thread (the Scan button; also after a drop).
    pub fn start_scan(&mut self, ctx: &egui::Context) {
        match crate::worker::scan(self.spec.train.clone(), ctx.clone()) {
            Ok(rx) => {
                self.scan = None;
                self.scan_rx = Some(rx);
            }
            Err(e) => self.scan = Some(Err(format!("cannot start the scan thread: {e}"))),
        }
    }

    /// Classify `try_image` with the finished run's model at the current α.
    pub fn classify(&mut self) {
        if let Some(run) = &self.run {
            self.progress.classified = None;
            run.classify(self.try_image.clone(), self.alpha);
        }
    }

    /// Export the finished run: `export_dir/results.json` now (epochs, WiSE-FT points so far) and
    /// `export_dir/model/` at the current α on the worker.
    pub fn export(&mut self) {
        let Some(run) = &self.run else { return };
        self.progress.exported = None;
        let p = &self.progress;
        let results = serde_json::json!({
            "schema": 1,
            "method": self.spec.method.label(),
            "model": self.spec.model, "train": self.spec.train, "ood": self.ood,
            "classes": p.classes,
            "alpha": self.alpha,
            "epochs": p.epochs,
            "wise": p.wise.iter().map(|(a, sets)| serde_json::json!({"alpha": a, "sets": sets})).collect::<Vec<_>>(),
        });
        let written = std::fs::create_dir_all(&self.export_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| serde_json::to_vec_pretty(&results).map_err(|e| e.to_string()))
            .and_then(|bytes| {
                flyp::model::weights::write_atomic(&self.export_dir.join("results.json"), &bytes)
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => run.export(self.export_dir.join("model"), self.alpha),
            Err(e) => {
                self.progress.exported = Some(Err(format!("{}: {e}", self.export_dir.display())))
            }
        }
    }

    /// Whether a scan is running.
    pub fn is_scanning(&self) -> bool {
        self.scan_rx.is_some()
    }

    /// Take what the worker sent since the last frame (never blocks).
    fn drain(&mut self) {
        if let Some(rx) = &self.scan_rx
            && let Ok(result) = rx.try_recv()
        {
            self.scan = Some(result);
            self.scan_rx = None;
        }
        if let Some(run) = &self.run {
            while let Ok(event) = run.events.try_recv() {
                self.progress.apply(event);
            }
            if self.progress.finished {
                // The slider's α first, then the whole curve (0, 0.1, …, 1) in the background.
                let grid = (0..=10).map(|k| k as f64 / 10.0);
                let first = self.requested.is_empty();
                let wanted: Vec<f64> = if first {
                    std::iter::once(self.alpha).chain(grid).collect()
                } else if !self.alpha_dragging {
                    vec![self.alpha]
                } else {
                    Vec::new()
                };
                for alpha in wanted {
                    if !self.requested.contains(&alpha) {
                        run.wise(alpha);
                        self.requested.push(alpha);
                    }
                }
            }
        }
    }

    /// Draw the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.drain();
        let dropped = ui.ctx().input(|i| i.raw.dropped_files.clone());
        if let Some(dir) = dropped
            .iter()
            .map(|f| f.path().to_path_buf())
            .find(|p| p.is_dir())
        {
            self.spec.train = dir;
            self.start_scan(ui.ctx());
        }
        // A dropped file, once a run has finished: "try an image".
        if let Some(file) = dropped
            .iter()
            .map(|f| f.path().to_path_buf())
            .find(|p| p.is_file())
            && self.progress.finished
        {
            self.try_image = file;
            self.classify();
        }
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                let compute = if self.progress.device.is_empty() {
                    "CPU (Flex)".to_string()
                } else {
                    self.progress.device.clone()
                };
                ui.label(format!("Training on: {compute}"));
                ui.separator();
                ui.label(match &self.adapter {
                    Some(name) => format!("Drawing on: {name}"),
                    None => "Drawing on: (no wgpu adapter reported)".to_string(),
                });
            });
        });
        egui::Panel::left("settings")
            .resizable(false)
            .exact_size(330.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.settings(ui));
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.view, View::Training, "Training");
                ui.selectable_value(&mut self.view, View::Embeddings, "Embeddings");
                ui.selectable_value(&mut self.view, View::Results, "Results");
            });
            ui.separator();
            match self.view {
                View::Training => self.curves(ui),
                View::Embeddings => self.embedding_view(ui),
                View::Results => self.results_view(ui),
            }
        });
    }

    /// The finished run's accuracy per set along WiSE-FT's α, re-evaluated as the slider moves.
    fn results_view(&mut self, ui: &mut egui::Ui) {
        if !self.progress.finished {
            ui.label("Results appear here when a run has finished.");
            return;
        }
        ui.horizontal(|ui| {
            let label = ui
                .label("WiSE-FT α")
                .on_hover_text("θ(α) = (1 - α)·θ_start + α·θ_fine-tuned, every weight: 0 = the starting model, 1 = the fine-tuned one");
            let slider = ui
                .add(egui::Slider::new(&mut self.alpha, 0.0..=1.0).step_by(0.05))
                .labelled_by(label.id);
            self.alpha_dragging = slider.dragged();
        });
        let alpha_now = self.alpha;
        let current = self
            .progress
            .wise
            .iter()
            .find(|(a, _)| *a == alpha_now)
            .cloned();
        match &current {
            Some((alpha, sets)) => {
                egui::Grid::new("wise-table").striped(true).show(ui, |ui| {
                    ui.strong("set");
                    ui.strong(format!("top-1 at α = {alpha:.2}"));
                    ui.strong("macro-F1");
                    ui.end_row();
                    for (name, m) in sets {
                        ui.label(name);
                        ui.label(format!("{:.2} %", 100.0 * m.top1));
                        ui.label(format!("{:.3}", m.macro_f1));
                        ui.end_row();
                    }
                });
            }
            None => {
                ui.label(format!("evaluating α = {:.2}…", self.alpha));
            }
        }
        ui.separator();
        ui.horizontal(|ui| {
            path_row(ui, "Try an image", &mut self.try_image).on_hover_text(
                "Any image file (or drop one on the window): its top-5 classes at this α",
            );
            if ui.button("Classify").clicked() {
                self.classify();
            }
        });
        match &self.progress.classified {
            None => {}
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("error: {e}"));
            }
            Some(Ok((path, alpha, top))) => {
                ui.label(format!("{} at α = {alpha:.2}:", path.display()));
                egui::Grid::new("top5").striped(true).show(ui, |ui| {
                    ui.strong("class");
                    ui.strong("probability");
                    ui.strong("similarity");
                    ui.end_row();
                    for (class, p, s) in top {
                        ui.label(class);
                        ui.label(format!("{:.1} %", 100.0 * p));
                        ui.label(format!("{s:.3}"));
                        ui.end_row();
                    }
                });
            }
        }
        ui.horizontal(|ui| {
            path_row(ui, "Export to", &mut self.export_dir)
                .on_hover_text("A folder: model/ (HF layout, at this α) and results.json (every epoch and α so far)");
            if ui.button("Export").clicked() {
                self.export();
            }
        });
        match &self.progress.exported {
            None => {}
            Some(Ok(dir)) => {
                ui.label(format!("exported: {}", dir.display()));
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("error: {e}"));
            }
        }
        let p = &self.progress;
        if let Some((_, sets)) = &current {
            egui::CollapsingHeader::new("Confusion matrix and per-class precision / recall")
                .id_salt("confusion")
                .show(ui, |ui| {
                    egui::ScrollArea::horizontal().show(ui, |ui| {
                        ui.horizontal_top(|ui| {
                            for (name, m) in sets {
                                ui.vertical(|ui| confusion(ui, name, m, &p.classes));
                                ui.add_space(12.0);
                            }
                        });
                    });
                });
        }
        let mut points: Vec<(f64, &Vec<(String, flyp::train::Metrics)>)> =
            p.wise.iter().map(|(a, s)| (*a, s)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Plot::new("wise")
            .legend(Legend::default())
            .include_x(0.0)
            .include_x(1.0)
            .x_axis_label("α")
            .y_axis_label("top-1 (%)")
            .show(ui, |plot| {
                for (i, set) in p.sets.iter().enumerate() {
                    let line: PlotPoints = points
                        .iter()
                        .filter_map(|(a, sets)| sets.get(i).map(|(_, m)| [*a, 100.0 * m.top1]))
                        .collect();
                    plot.line(Line::new(set.clone(), line));
                }
                plot.vline(egui_plot::VLine::new("α", self.alpha));
            });
    }

    /// Image embeddings (colour = class; filled = test, hollow = OOD) and class prompts (stars)
    /// in one PCA fitted on the starting model's embeddings, blended from before to after.
    fn embedding_view(&mut self, ui: &mut egui::Ui) {
        let Some(e) = self.progress.embeddings.clone() else {
            ui.label("The embeddings appear here when a run has finished.");
            return;
        };
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.center_modalities, "Center each modality")
                .on_hover_text("Subtract the mean image and the mean prompt: hides the gap between the two modalities");
            let label = ui.label("Before / after fine-tuning (0 to 1)");
            ui.add(egui::Slider::new(&mut self.blend, 0.0..=1.0))
                .labelled_by(label.id);
        });
        let center = self.center_modalities;
        if self.projected.as_ref().is_none_or(|p| p.0 != center) {
            self.projected = project(&e, center).map(|p| (center, p));
        }
        let Some((_, (before, after))) = &self.projected else {
            ui.label("No embeddings to show.");
            return;
        };
        let t = self.blend as f64;
        let at = |i: usize| -> [f64; 2] {
            [
                before[i][0] + t * (after[i][0] - before[i][0]),
                before[i][1] + t * (after[i][1] - before[i][1]),
            ]
        };
        let n = e.images.len();
        Plot::new("embeddings")
            .legend(Legend::default())
            .data_aspect(1.0)
            .x_axis_label("component 1")
            .y_axis_label("component 2")
            .show(ui, |plot| {
                for (class, name) in e.classes.iter().enumerate() {
                    for ood in [false, true] {
                        let points: PlotPoints = (0..n)
                            .filter(|&i| e.images[i].0 == class && (e.images[i].1 == "ood") == ood)
                            .map(at)
                            .collect();
                        // One legend entry per class: its images, prompt and label share the name.
                        plot.points(
                            egui_plot::Points::new(name.clone(), points)
                                .color(class_colour(class))
                                .filled(!ood)
                                .radius(3.0),
                        );
                    }
                    let star = at(n + class);
                    plot.points(
                        egui_plot::Points::new(name.clone(), vec![star])
                            .color(class_colour(class))
                            .shape(egui_plot::MarkerShape::Asterisk)
                            .radius(9.0),
                    );
                    plot.text(
                        egui_plot::Text::new(
                            name.clone(),
                            egui_plot::PlotPoint::new(star[0], star[1]),
                            egui::RichText::new(format!("   {name}")).strong(),
                        )
                        .color(class_colour(class)),
                    );
                }
            });
    }

    fn settings(&mut self, ui: &mut egui::Ui) {
        ui.heading("flyp-studio");
        ui.label("Fine-tune CLIP like you pretrain");
        ui.separator();
        let running = self.is_running();
        ui.add_enabled_ui(!running, |ui| {
            ui.strong("Data");
            path_row(ui, "Training set", &mut self.spec.train)
                .on_hover_text("A folder of class folders, or train/val/test folders: drop one on the window");
            let mut ood = self.ood.clone().unwrap_or_default();
            path_row(ui, "OOD set", &mut ood)
                .on_hover_text("Images of the same classes in another style, never trained on");
            self.ood = (!ood.as_os_str().is_empty()).then_some(ood);
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(!self.is_scanning(), egui::Button::new("Scan"))
                    .on_hover_text("Count the images per class and list every file that cannot be used, and why")
                    .clicked()
                {
                    self.start_scan(ui.ctx());
                }
                if self.is_scanning() {
                    ui.spinner();
                }
            });
            self.scan_report(ui);
            if ui.button("Use the bundled demo data").clicked() {
                self.spec.train = bundled("assets/emoji-subset/twemoji");
                self.ood = Some(bundled("assets/emoji-subset/noto"));
                self.spec.model = bundled("assets/demo-model");
                self.spec.templates = "emoji".into();
                self.start_scan(ui.ctx());
            }
            ui.separator();
            ui.strong("Model");
            path_row(ui, "CLIP folder", &mut self.spec.model)
                .on_hover_text("A Hugging Face CLIP folder (config.json + model.safetensors)");
            ui.separator();
            let label = ui.strong("Method");
            egui::ComboBox::from_id_salt("method")
                .selected_text(self.spec.method.label())
                .show_ui(ui, |ui| {
                    for m in MethodChoice::ALL {
                        ui.selectable_value(&mut self.spec.method, m, m.label())
                            .on_hover_text(m.tooltip());
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(self.spec.method.tooltip());
            egui::Grid::new("hyper").num_columns(2).show(ui, |ui| {
                let label = ui.label("Epochs").on_hover_text("Passes over the training set");
                ui.add(egui::DragValue::new(&mut self.spec.epochs).range(1..=1000)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Batch").on_hover_text("Images per step (FLYP's default: 256)");
                ui.add(egui::DragValue::new(&mut self.spec.batch).range(1..=4096)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Learning rate")
                    .on_hover_text("AdamW peak rate after warmup; cosine decay (FLYP's default for CLIP ViT-B: 1e-5)");
                ui.add(egui::DragValue::new(&mut self.spec.lr).speed(1e-6).range(1e-8..=1.0)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Weight decay").on_hover_text("Decoupled (AdamW), FLYP's default 0.1");
                ui.add(egui::DragValue::new(&mut self.spec.wd).speed(0.01).range(0.0..=10.0)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut self.spec.seed)).labelled_by(label.id);
                ui.end_row();
            });
        });
        ui.separator();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!running, egui::Button::new("Start"))
                .clicked()
            {
                self.start(ui.ctx());
            }
            if ui.add_enabled(running, egui::Button::new("Stop")).clicked()
                && let Some(run) = &self.run
            {
                run.stop();
            }
        });
    }

    /// The scan report: counts per class per split, skipped files with reasons, warnings.
    fn scan_report(&self, ui: &mut egui::Ui) {
        match &self.scan {
            None => {}
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("error: {e}"));
            }
            Some(Ok(scan)) => {
                let count = |v: &Option<Vec<flyp::data::Sample>>| v.as_ref().map_or(0, Vec::len);
                ui.label(format!(
                    "{} classes · {} train, {} val, {} test images · {} skipped ({})",
                    scan.classes.len(),
                    scan.train.len(),
                    count(&scan.val),
                    count(&scan.test),
                    scan.skipped.len(),
                    scan.layout
                ));
                egui::CollapsingHeader::new("Images per class")
                    .id_salt("per-class")
                    .show(ui, |ui| {
                        egui::Grid::new("counts").striped(true).show(ui, |ui| {
                            for (class, n) in scan.prompt_names.iter().zip(scan.counts()) {
                                ui.label(class);
                                ui.label(n.to_string());
                                ui.end_row();
                            }
                        });
                    });
                if !scan.skipped.is_empty() {
                    egui::CollapsingHeader::new(format!("Skipped files ({})", scan.skipped.len()))
                        .id_salt("skipped")
                        .show(ui, |ui| {
                            for s in &scan.skipped {
                                ui.label(format!("{}: {}", s.path.display(), s.reason));
                            }
                        });
                }
                for w in &scan.warnings {
                    ui.colored_label(ui.visuals().warn_fg_color, format!("warning: {w}"));
                }
            }
        }
    }

    fn curves(&mut self, ui: &mut egui::Ui) {
        let p = &self.progress;
        if self.run.is_none() {
            ui.label("Choose a dataset and a model, then Start.");
            return;
        }
        ui.label(p.status_line(self.spec.epochs));
        if let Some(outcome) = &p.outcome {
            let colour = if p.failed {
                ui.visuals().error_fg_color
            } else {
                ui.visuals().text_color()
            };
            ui.colored_label(colour, outcome);
        }
        let height = (ui.available_height() / 2.0 - 20.0).max(120.0);
        ui.strong("Training loss (per step)");
        let loss: PlotPoints = p.steps.iter().map(|s| [s.step as f64, s.loss]).collect();
        Plot::new("loss")
            .height(height)
            .x_axis_label("step")
            .y_axis_label("loss")
            .show(ui, |plot| plot.line(Line::new("loss", loss)));
        ui.strong("Top-1 accuracy per set (per epoch, %)");
        Plot::new("accuracy")
            .height(height)
            .legend(Legend::default())
            .x_axis_label("epoch")
            .y_axis_label("top-1 (%)")
            .show(ui, |plot| {
                for (i, set) in p.sets.iter().enumerate() {
                    let points: PlotPoints = p
                        .epochs
                        .iter()
                        .filter_map(|r| {
                            r.evals
                                .get(i)
                                .map(|(_, m)| [r.epoch as f64, 100.0 * m.top1])
                        })
                        .collect();
                    plot.line(Line::new(set.clone(), points));
                }
            });
    }
}

/// 2-D positions of every row of [`Embeddings`]: (before fine-tuning, after).
pub type Projected = (Vec<[f64; 2]>, Vec<[f64; 2]>);

/// Before and after embeddings in 2-D: PCA fitted once on the "before" rows (centred per
/// modality when asked), then applied to both.
pub fn project(e: &Embeddings, center: bool) -> Option<Projected> {
    let groups: Vec<usize> = (0..e.before.len())
        .map(|i| usize::from(i >= e.images.len()))
        .collect();
    let prepare = |rows: &Vec<Vec<f32>>| {
        if center {
            center_groups(rows, &groups)
        } else {
            rows.clone()
        }
    };
    let (before, after) = (prepare(&e.before), prepare(&e.after));
    let pca = Pca::fit(&before, 2)?;
    let xy = |rows: &Vec<Vec<f32>>| -> Vec<[f64; 2]> {
        rows.iter()
            .map(|r| {
                let p = pca.project(r);
                [p[0], p.get(1).copied().unwrap_or(0.0)]
            })
            .collect()
    };
    Some((xy(&before), xy(&after)))
}

/// One set's confusion matrix (rows: true class, columns: predicted; cell shade = share of the
/// row) with each class's precision and recall.
fn confusion(ui: &mut egui::Ui, set: &str, m: &flyp::train::Metrics, classes: &[String]) {
    ui.strong(format!("{set}: rows true, columns predicted"));
    egui::Grid::new(format!("confusion-{set}"))
        .spacing([2.0, 2.0])
        .show(ui, |ui| {
            ui.label("");
            for k in 0..m.confusion.len() {
                ui.label(format!("{k}"));
            }
            ui.label("precision");
            ui.label("recall");
            ui.end_row();
            for (t, row) in m.confusion.iter().enumerate() {
                let name = classes.get(t).map_or("?", String::as_str);
                ui.label(format!("{t} {name}"));
                let total: usize = row.iter().sum();
                for (q, &n) in row.iter().enumerate() {
                    let share = if total == 0 {
                        0.0
                    } else {
                        n as f32 / total as f32
                    };
                    let base = if q == t {
                        egui::Color32::from_rgb(89, 161, 79)
                    } else {
                        egui::Color32::from_rgb(225, 87, 89)
                    };
                    let fill = base.gamma_multiply(share.max(0.04));
                    egui::Frame::new()
                        .fill(fill)
                        .inner_margin(2.0)
                        .show(ui, |ui| {
                            ui.label(n.to_string());
                        });
                }
                let pr = |v: &[f64]| v.get(t).map_or("-".to_string(), |x| format!("{:.2}", x));
                ui.label(pr(&m.precision));
                ui.label(pr(&m.recall));
                ui.end_row();
            }
        });
}

/// A label and an editable path.
fn path_row(ui: &mut egui::Ui, label: &str, path: &mut PathBuf) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        let mut text = path.display().to_string();
        if ui
            .text_edit_singleline(&mut text)
            .labelled_by(label.id)
            .changed()
        {
            *path = PathBuf::from(text);
        }
    })
    .response
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
