//! The Results screen: the table at α, the ID-vs-OOD scatter, accuracy along α, confusion matrices
//! whose cells open their images, try an image, export.

use super::*;

/// The Results screen's state.
pub struct ResultsView {
    /// The confusion cell (set, true class, predicted class) whose images are shown.
    pub open_cell: Option<(usize, usize, usize)>,
    /// WiSE-FT α (0 = the starting weights, 1 = the fine-tuned ones).
    pub alpha: f64,
    /// α values asked of the worker (each is evaluated once, in order).
    pub(crate) requested: Vec<f64>,
    /// The α slider is being dragged: ask only when it is let go.
    pub(crate) alpha_dragging: bool,
    /// "Try an image": the image to classify with the finished run's model at the current α.
    pub try_image: PathBuf,
    /// Export was asked about a folder that is not empty: what it holds, until answered.
    pub export_question: Option<super::export::ExportFolder>,
}

impl Default for ResultsView {
    fn default() -> Self {
        Self {
            open_cell: None,
            alpha: 1.0,
            requested: Vec::new(),
            alpha_dragging: false,
            try_image: PathBuf::new(),
            export_question: None,
        }
    }
}

impl Studio {
    /// The finished run: the table at the slider's α, the ID-vs-OOD scatter, accuracy along α,
    /// the confusion matrices (a cell shows its images), try an image, export.
    pub(super) fn results_screen(&mut self, ui: &mut egui::Ui) {
        if !self.progress.finished {
            ui.label("Results appear here when a run has finished.");
            return;
        }
        self.run_picker(ui);
        egui::ScrollArea::vertical().show(ui, |ui| self.results(ui));
    }

    fn results(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui
                .label("WiSE-FT α")
                .on_hover_text("θ(α) = (1 - α)·θ_start + α·θ_fine-tuned, every weight: 0 = the starting model, 1 = the fine-tuned one");
            let slider = ui
                .add(egui::Slider::new(&mut self.results_view.alpha, 0.0..=1.0).step_by(0.05))
                .labelled_by(label.id);
            self.results_view.alpha_dragging = slider.dragged();
        });
        // "Try an image" follows the slider: its answer is asked again at the new α once the
        // slider is let go.
        if !self.results_view.alpha_dragging
            && matches!(&self.progress.classified,
                Some(Ok((_, at, _))) if (at - self.results_view.alpha).abs() > 1e-9)
        {
            self.classify();
        }
        let alpha_now = self.results_view.alpha;
        let current = self
            .progress
            .wise
            .iter()
            .find(|w| w.alpha == alpha_now)
            .cloned();
        match &current {
            Some(w) => {
                egui::Grid::new("wise-table").striped(true).show(ui, |ui| {
                    ui.strong("set");
                    ui.strong(format!("top-1 at α = {:.2}", w.alpha));
                    ui.strong("macro-F1");
                    ui.strong("images");
                    ui.end_row();
                    for (name, m) in &w.sets {
                        ui.label(name);
                        ui.label(format!("{:.2} %", 100.0 * m.top1));
                        ui.label(format!("{:.3}", m.macro_f1));
                        ui.label(m.images.to_string());
                        ui.end_row();
                    }
                });
            }
            None => {
                ui.label(format!("evaluating α = {:.2}…", self.results_view.alpha));
            }
        }
        ui.horizontal_top(|ui| {
            let width = (ui.available_width() / 2.0 - 8.0).max(200.0);
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.strong("ID vs OOD top-1 (%) along α");
                self.id_ood_scatter(ui);
            });
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.strong("Top-1 (%) per set along α");
                self.alpha_curves(ui);
            });
        });
        ui.separator();
        ui.horizontal(|ui| {
            path_row(ui, "Try an image", &mut self.results_view.try_image, 80.0).on_hover_text(
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
                let (path, alpha, top) = (path.clone(), *alpha, top.clone());
                ui.horizontal_top(|ui| {
                    self.thumbs.show(ui, &path, 64.0);
                    ui.vertical(|ui| {
                        ui.label(format!("{} at α = {alpha:.2}:", path.display()));
                        egui::Grid::new("top5").striped(true).show(ui, |ui| {
                            ui.strong("class");
                            ui.strong("probability");
                            ui.strong("logit");
                            ui.end_row();
                            for (class, p, s) in top {
                                ui.label(class);
                                ui.label(format!("{:.1} %", 100.0 * p));
                                ui.label(format!("{s:.3}"));
                                ui.end_row();
                            }
                        });
                    });
                });
            }
        }
        ui.horizontal(|ui| {
            path_row(ui, "Export to", &mut self.export_dir, 80.0)
                .on_hover_text("A folder: model/ (HF layout, at this α; head.safetensors for head methods) and results.json (every epoch and α so far)");
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
        if let Some(w) = &current {
            egui::CollapsingHeader::new("Confusion matrix and per-class precision / recall")
                .id_salt("confusion")
                .show(ui, |ui| {
                    ui.label("Click a cell to see its images.");
                    egui::ScrollArea::horizontal().show(ui, |ui| {
                        ui.horizontal_top(|ui| {
                            for (set, (name, m)) in w.sets.iter().enumerate() {
                                ui.vertical(|ui| {
                                    if let Some((t, q)) =
                                        confusion(ui, name, m, &self.progress.classes)
                                    {
                                        self.results_view.open_cell = Some((set, t, q));
                                    }
                                });
                                ui.add_space(12.0);
                            }
                        });
                    });
                });
            self.cell_images(ui.ctx(), w);
        }
    }

    /// The images of the open confusion cell at the current α, in a window of their own.
    fn cell_images(&mut self, ctx: &egui::Context, w: &WisePoint) {
        let Some((set, t, q)) = self.results_view.open_cell else {
            return;
        };
        let images = cell_paths(&self.progress, w, set, t, q);
        let class = |k: usize| self.progress.classes.get(k).cloned().unwrap_or_default();
        let set_name = self.progress.sets.get(set).cloned().unwrap_or_default();
        let title = "Images of one confusion cell";
        let what = format!(
            "{set_name}: {} image(s) of {} predicted as {} at α = {:.2}",
            images.len(),
            class(t),
            class(q),
            w.alpha
        );
        let mut open = true;
        egui::Window::new(title)
            .id(egui::Id::unique("confusion-cell"))
            .open(&mut open)
            .default_size([420.0, 300.0])
            .anchor(egui::Align2::RIGHT_BOTTOM, [-16.0, -40.0])
            .show(ctx, |ui| {
                ui.add(egui::Label::new(what).wrap());
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        for path in &images {
                            self.thumbs
                                .show(ui, path, 64.0)
                                .on_hover_text(path.display().to_string());
                        }
                    });
                });
            });
        if !open {
            self.results_view.open_cell = None;
        }
    }

    /// This run's WiSE-FT curve and earlier runs' curves: mean OOD top-1 against ID top-1.
    fn id_ood_scatter(&self, ui: &mut egui::Ui) {
        let current = self.progress.id_ood_curve();
        if current.is_empty() {
            ui.label("Needs a test set and an OOD set.");
            return;
        }
        let label = format!("this run ({})", self.run_label);
        let alpha = self.results_view.alpha;
        Plot::new("id-ood")
            .height(260.0)
            // Curves run from lower left to upper right: the upper left stays free.
            .legend(Legend::default().position(egui_plot::Corner::LeftTop))
            .x_axis_label("ID (test) top-1 (%)")
            .y_axis_label("OOD top-1 (%)")
            .show(ui, |plot| {
                let shown = &self.run_label;
                let runs = self
                    .history
                    .iter()
                    .filter(|r| &r.label != shown)
                    .map(|r| (r.label.clone(), &r.curve));
                for (k, (name, curve)) in runs.chain(std::iter::once((label, &current))).enumerate()
                {
                    let colour = class_colour(k);
                    let xy: Vec<[f64; 2]> = curve.iter().map(|c| [c.1, c.2]).collect();
                    plot.line(Line::new(name.clone(), xy.clone()).color(colour));
                    plot.points(
                        egui_plot::Points::new(name.clone(), xy)
                            .color(colour)
                            .radius(3.0),
                    );
                }
                if let Some(c) = current.iter().find(|c| c.0 == alpha) {
                    plot.points(
                        egui_plot::Points::new(format!("α = {alpha:.2}"), vec![[c.1, c.2]])
                            .shape(egui_plot::MarkerShape::Diamond)
                            .radius(7.0),
                    );
                }
            });
    }

    /// Each set's top-1 along α, with the slider's α marked.
    fn alpha_curves(&self, ui: &mut egui::Ui) {
        let p = &self.progress;
        let mut points: Vec<&WisePoint> = p.wise.iter().collect();
        points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        Plot::new("wise")
            .height(260.0)
            .legend(Legend::default().position(egui_plot::Corner::RightBottom)) // accuracy rises: the lower right stays free
            .include_x(0.0)
            .include_x(1.0)
            .x_axis_label("α")
            .y_axis_label("top-1 (%)")
            .show(ui, |plot| {
                for (i, set) in p.sets.iter().enumerate() {
                    let line: PlotPoints = points
                        .iter()
                        .filter_map(|w| w.sets.get(i).map(|(_, m)| [w.alpha, 100.0 * m.top1]))
                        .collect();
                    plot.line(Line::new(set.clone(), line));
                }
                plot.vline(egui_plot::VLine::new("α", self.results_view.alpha));
            });
    }
}

/// The images of set `set` whose true class is `t` and predicted class `q` at `w`'s α.
pub fn cell_paths(p: &Progress, w: &WisePoint, set: usize, t: usize, q: usize) -> Vec<PathBuf> {
    let (Some(samples), Some(predicted)) = (p.samples.get(set), w.predicted.get(set)) else {
        return Vec::new();
    };
    samples
        .iter()
        .zip(predicted)
        .filter(|((_, truth), predicted)| *truth == t && **predicted == q)
        .map(|((path, _), _)| path.clone())
        .collect()
}

/// One set's confusion matrix (rows: true class, columns: predicted; cell shade = share of the
/// row) with each class's precision and recall. Returns the cell clicked, (true, predicted).
fn confusion(
    ui: &mut egui::Ui,
    set: &str,
    m: &Metrics,
    classes: &[String],
) -> Option<(usize, usize)> {
    let mut clicked = None;
    // Never wrapped: in a narrow column egui would otherwise break it letter by letter.
    ui.add(
        egui::Label::new(
            egui::RichText::new(format!("{set}: rows true, columns predicted")).strong(),
        )
        .extend(),
    );
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
                    let cell = ui
                        .add(egui::Button::new(n.to_string()).fill(fill).small())
                        .on_hover_text(format!(
                            "{n} image(s) of {name} predicted as {}",
                            classes.get(q).map_or("?", String::as_str)
                        ));
                    if cell.clicked() {
                        clicked = Some((t, q));
                    }
                }
                let pr = |v: &[f64]| v.get(t).map_or("-".to_string(), |x| format!("{:.2}", x));
                ui.label(pr(&m.precision));
                ui.label(pr(&m.recall));
                ui.end_row();
            }
        });
    clicked
}
