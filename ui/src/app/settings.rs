//! The left panel: run controls, data (scan report, thumbnails, OOD sets, folder picker), model
//! (folder, bundled, Hub download), method and hyper-parameters, compute device.

use super::*;

impl Studio {
    /// The folder picker's window.
    pub(super) fn browser_window(&mut self, ctx: &egui::Context) {
        let Some(browser) = &self.browser else {
            return;
        };
        let mut go = None;
        let mut chosen = None;
        let mut close = false;
        let title = match browser.role {
            FolderRole::Train => "Choose the training folder",
            FolderRole::Ood => "Choose an OOD folder",
            FolderRole::Model => "Choose a CLIP model folder",
            FolderRole::Run => "Choose the run folder",
        };
        egui::Window::new(title)
            .collapsible(false)
            .default_size([460.0, 420.0])
            .show(ctx, |ui| {
                ui.label(browser.dir.display().to_string());
                ui.horizontal(|ui| {
                    if let Some(parent) = browser.dir.parent()
                        && ui.button("Up").clicked()
                    {
                        go = Some(parent.to_path_buf());
                    }
                    if ui.button("Choose this folder").clicked() {
                        chosen = Some(browser.dir.clone());
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
                ui.separator();
                egui::ScrollArea::vertical()
                    .max_height(320.0)
                    .show(ui, |ui| match &browser.entries {
                        Ok(folders) if folders.is_empty() => {
                            ui.label("(no sub-folders)");
                        }
                        Ok(folders) => {
                            for folder in folders {
                                let name = folder
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default();
                                if ui.button(format!("{name}/")).clicked() {
                                    go = Some(folder.clone());
                                }
                            }
                        }
                        Err(e) => {
                            ui.colored_label(ui.visuals().error_fg_color, format!("error: {e}"));
                        }
                    });
            });
        let role = browser.role;
        if let Some(dir) = go {
            self.browser = Some(Browser::open(role, dir));
        }
        if let Some(dir) = chosen {
            self.browser = None;
            self.use_folder(role, dir, ctx);
        }
        if close {
            self.browser = None;
        }
    }

    /// Open the folder picker for `role` at `start` (or its nearest existing parent).
    pub fn browse(&mut self, role: FolderRole, start: &Path) {
        let mut dir = if start.as_os_str().is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            start.to_path_buf()
        };
        while !dir.is_dir() {
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
                _ => {
                    dir = std::env::current_dir().unwrap_or_default();
                    break;
                }
            }
        }
        self.browser = Some(Browser::open(role, dir));
    }

    pub(super) fn settings(&mut self, ui: &mut egui::Ui) {
        let running = self.is_running();
        ui.add_enabled_ui(!running, |ui| {
            ui.strong("Data");
            if browse_row(
                ui,
                "Training set",
                &mut self.settings.spec.data.train,
                "A folder of class folders, or train/val/test folders: drop one on the window",
            ) {
                let start = self.settings.spec.data.train.clone();
                self.browse(FolderRole::Train, &start);
            }
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
            ui.label("OOD sets (same classes, another style; never trained on):");
            let mut remove = None;
            for (k, (name, dir)) in self.settings.spec.data.evals.iter().enumerate() {
                ui.horizontal(|ui| {
                    if ui.small_button("Remove").clicked() {
                        remove = Some(k);
                    }
                    ui.add(egui::Label::new(format!("{name}: {}", dir.display())).truncate())
                        .on_hover_text(dir.display().to_string());
                });
            }
            if let Some(k) = remove {
                self.settings.spec.data.evals.remove(k);
            }
            ui.horizontal(|ui| {
                let mut path = std::mem::take(&mut self.new_ood);
                path_row(ui, "OOD folder", &mut path, 125.0)
                    .on_hover_text("Another folder of the same class folders (or drop one on the window)");
                if ui.button("Add").clicked() {
                    self.add_ood(std::mem::take(&mut path));
                }
                if ui.button("Browse…").clicked() {
                    self.browse(FolderRole::Ood, &self.settings.spec.data.train.clone());
                }
                self.new_ood = path;
            });
            if ui.button("Use the bundled demo data").clicked() {
                self.settings.spec.data.train = bundled("assets/emoji-subset/twemoji");
                self.settings.spec.data.evals = super::demo_oods();
                self.settings.spec.hyper.lr = self.settings.spec.method.demo_lr();
                self.settings.spec.model = bundled("assets/demo-model");
                self.settings.spec.templates = "emoji".into();
                self.start_scan(ui.ctx());
            }
            ui.separator();
            ui.strong("Model");
            if browse_row(
                ui,
                "CLIP folder",
                &mut self.settings.spec.model,
                "A Hugging Face CLIP folder (config.json + model.safetensors): drop one on the window",
            ) {
                let start = self.settings.spec.model.clone();
                self.browse(FolderRole::Model, &start);
            }
            if ui
                .button("Use the bundled demo model")
                .on_hover_text("A 4-million-parameter CLIP this project pretrained on emoji captions")
                .clicked()
            {
                self.settings.spec.model = bundled("assets/demo-model");
                self.settings.spec.templates = "emoji".into();
            }
            self.hub_row(ui);
            ui.horizontal(|ui| {
                let label = ui.label("Prompts").on_hover_text(
                    "The templates that turn a class name into captions: openai (CLIP's 80 ImageNet templates), simple (\"a photo of a {}.\"), emoji (the demo model's)",
                );
                egui::ComboBox::from_id_salt("templates")
                    .selected_text(self.settings.spec.templates.clone())
                    .show_ui(ui, |ui| {
                        for t in ["openai", "simple", "emoji"] {
                            ui.selectable_value(&mut self.settings.spec.templates, t.to_string(), t);
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
            ui.separator();
            let label = ui.strong("Method");
            egui::ComboBox::from_id_salt("method")
                .selected_text(self.settings.spec.method.label())
                .show_ui(ui, |ui| {
                    for m in flyp::methods::in_app() {
                        ui.selectable_value(&mut self.settings.spec.method, m, m.label())
                            .on_hover_text(m.about());
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(self.settings.spec.method.about());
            egui::Grid::new("hyper").num_columns(2).show(ui, |ui| {
                let label = ui.label("Epochs").on_hover_text("Passes over the training set");
                ui.add(egui::DragValue::new(&mut self.settings.spec.hyper.epochs).range(1..=1000)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Batch").on_hover_text("Images per step (FLYP's default: 256)");
                ui.add(egui::DragValue::new(&mut self.settings.spec.hyper.batch).range(1..=4096)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Learning rate (lr)")
                    .on_hover_text("AdamW peak rate after warmup; cosine decay (FLYP's default for CLIP ViT-B: 1e-5)");
                ui.add(egui::DragValue::new(&mut self.settings.spec.hyper.lr).speed(1e-6).range(1e-8..=1.0)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Weight decay (wd)").on_hover_text("Decoupled (AdamW), FLYP's default 0.1");
                ui.add(egui::DragValue::new(&mut self.settings.spec.hyper.wd).speed(0.01).range(0.0..=10.0)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut self.settings.spec.hyper.seed)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Compute").on_hover_text(
                    "Auto: the window's GPU when it is a hardware GPU (shared with the window, no second device), else the CPU backend",
                );
                egui::ComboBox::from_id_salt("compute")
                    .selected_text(crate::compute::label(self.settings.compute, self.gpu.as_ref()))
                    .show_ui(ui, |ui| {
                        for choice in [DeviceChoice::Auto, DeviceChoice::Gpu, DeviceChoice::Cpu] {
                            let text = crate::compute::label(choice, self.gpu.as_ref());
                            ui.selectable_value(&mut self.settings.compute, choice, text);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Zoom").on_hover_text(
                    "Everything larger for a projector, smaller for a small screen (also Ctrl + / Ctrl −); kept between sessions",
                );
                ui.add(
                    egui::DragValue::new(&mut self.settings.zoom)
                        .speed(0.05)
                        .range(Settings::ZOOM)
                        .suffix("×"),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Precision").on_hover_text(
                    "mixed: the towers' blocks in f16 (faster and lighter on GPUs with f16 shaders), weights, loss and optimizer in f32, with a loss scale; slower on the CPU backend",
                );
                egui::ComboBox::from_id_salt("precision")
                    .selected_text(self.settings.spec.precision.name())
                    .show_ui(ui, |ui| {
                        for p in [flyp::model::Precision::F32, flyp::model::Precision::Mixed] {
                            ui.selectable_value(&mut self.settings.spec.precision, p, p.name());
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
            });
            ui.separator();
            ui.strong("Run folder");
            let mut dir = self.settings.spec.out.clone().unwrap_or_default();
            if browse_row(
                ui,
                "Keep checkpoints in",
                &mut dir,
                "Empty: keep nothing on disk. Otherwise every epoch's checkpoint and the best epoch are written there, and a stopped run can continue from it",
            ) {
                let start = if dir.as_os_str().is_empty() { self.settings.spec.data.train.clone() } else { dir.clone() };
                self.browse(FolderRole::Run, &start);
            }
            self.settings.spec.out = (!dir.as_os_str().is_empty()).then_some(dir);
            match &self.settings.spec.out {
                Some(dir) if flyp::train::checkpoint::exists(dir) => {
                    ui.checkbox(&mut self.settings.spec.resume, "Continue the run saved there")
                        .on_hover_text("From its last finished epoch, with the same settings; without this, Start refuses to overwrite it");
                }
                _ => self.settings.spec.resume = false,
            }
        });
    }

    /// Start, Pause / Resume, Stop.
    pub(super) fn controls(&mut self, ui: &mut egui::Ui) {
        let running = self.is_running();
        ui.horizontal(|ui| {
            let blocked = self.cannot_start();
            let start = ui.add_enabled(blocked.is_none(), egui::Button::new("Start"));
            let start = match &blocked {
                Some(reason) => start.on_disabled_hover_text(reason),
                None => start.on_hover_text("Train with these settings; the results on screen stay until the new run trains"),
            };
            if start.clicked() {
                self.start(ui.ctx());
            }
            let paused = self.is_paused();
            let (text, tip) = if paused {
                ("Resume", "Go on from the step where the run was paused")
            } else {
                ("Pause", "Hold the run after its current step")
            };
            if ui
                .add_enabled(running, egui::Button::new(text))
                .on_hover_text(tip)
                .clicked()
                && let Some(run) = self.active_run()
            {
                run.pause(!paused);
            }
            if ui
                .add_enabled(running, egui::Button::new("Stop"))
                .on_hover_text("End the run after its current step; its best finished epoch stays to explore")
                .clicked()
                && let Some(run) = self.active_run()
            {
                run.stop();
            }
        });
        let lesson = ui
            .add_enabled(!running, egui::Button::new("Show me FLYP"))
            .on_hover_text("A lesson: zero-shot, FT and FLYP on the bundled demo (runs this session already made are reused), then four views with captions to read aloud");
        if lesson.clicked() {
            self.start_lesson();
        }
        if self.lesson.is_busy() {
            ui.label("Lesson: running zero-shot, FT and FLYP on the demo data…");
        }
        if let Some(line) = &self.lesson.error {
            ui.colored_label(ui.visuals().error_fg_color, line);
        }
        if self.jobs.next.is_some() {
            ui.label("Starting: reading the data and loading the model…");
        }
        if let Some(line) = &self.start_error {
            ui.colored_label(ui.visuals().error_fg_color, format!("Not started: {line}"));
        }
    }

    /// "Hub model id" with Download, a progress bar while it runs, and its outcome.
    fn hub_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Hub model id");
            ui.add(
                egui::TextEdit::singleline(&mut self.settings.hub_id)
                    .hint_text("openai/clip-vit-base-patch32")
                    .desired_width(160.0),
            )
            .labelled_by(label.id);
            let ready = flyp::hub::is_model_id(self.settings.hub_id.trim()) && !self.is_downloading();
            if ui
                .add_enabled(ready, egui::Button::new("Download"))
                .on_hover_text("Fetch config.json, model.safetensors and the tokenizer from huggingface.co (HF_ENDPOINT) into the cache, once")
                .clicked()
            {
                self.start_download(ui.ctx());
            }
        });
        if self.is_downloading() {
            let (text, fraction) = match &self.download_progress {
                Some(p) => {
                    let mb = |b: u64| b as f64 / 1e6;
                    match p.total {
                        Some(t) if t > 0 => (
                            format!("{} {:.1}/{:.1} MB", p.file, mb(p.done), mb(t)),
                            p.done as f32 / t as f32,
                        ),
                        _ => (format!("{} {:.1} MB", p.file, mb(p.done)), 0.0),
                    }
                }
                None => ("connecting…".to_string(), 0.0),
            };
            ui.add(egui::ProgressBar::new(fraction).text(text));
        }
        match &self.download {
            Some(Ok(dir)) => {
                ui.label(format!("downloaded: {}", dir.display()));
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("error: {e}"));
            }
            None => {}
        }
    }

    /// The scan report: counts per class per split, a few thumbnails per class, skipped files
    /// with reasons, warnings.
    fn scan_report(&mut self, ui: &mut egui::Ui) {
        let scan = match &self.scan {
            None => return,
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("error: {e}"));
                return;
            }
            Some(Ok(scan)) => scan.clone(),
        };
        let count = |v: &Option<Vec<flyp::data::Sample>>| v.as_ref().map_or(0, Vec::len);
        ui.add(
            egui::Label::new(format!(
                "{} classes · {} train, {} val, {} test images · {} skipped ({})",
                scan.classes.len(),
                scan.train.len(),
                count(&scan.val),
                count(&scan.test),
                scan.skipped.len(),
                scan.layout
            ))
            .wrap(),
        );
        if scan.val.is_none() {
            let held =
                flyp::data::folder::stratified_split(&scan.train, scan.classes.len(), 0.1, 0)
                    .1
                    .len();
            ui.add(
                egui::Label::new(format!(
                    "No val folder: a run holds out 10 % of the training images for validation ({held}, the same share of every class, drawn with the run's seed) and trains on the rest."
                ))
                .wrap(),
            );
        }
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
        egui::CollapsingHeader::new("Thumbnails per class")
            .id_salt("thumbnails")
            .show(ui, |ui| {
                for (k, class) in scan.prompt_names.iter().enumerate() {
                    ui.label(class);
                    ui.horizontal_wrapped(|ui| {
                        for sample in scan.train.iter().filter(|s| s.label == k).take(6) {
                            self.thumbs.show(ui, &sample.path, 40.0);
                        }
                    });
                }
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

/// A path row with a "Browse…" button after it; true when the button was clicked.
fn browse_row(ui: &mut egui::Ui, label: &str, path: &mut PathBuf, tip: &str) -> bool {
    ui.horizontal(|ui| {
        path_row(ui, label, path, 80.0).on_hover_text(tip);
        ui.button("Browse…").clicked()
    })
    .inner
}
