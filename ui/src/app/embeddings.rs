//! The Embeddings screen: images and class prompts in one 2-D map (PCA or t-SNE) along WiSE-FT α,
//! with play, hover thumbnails and per-modality centring; the projections are plain functions.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The Embeddings screen's state.
pub struct EmbeddingView {
    /// Remove each modality's mean (hides the modality gap).
    pub center_modalities: bool,
    /// The WiSE-FT α whose embeddings are shown (0 = before fine-tuning, 1 = after).
    pub alpha: f64,
    /// α is playing from 0 to 1.
    pub playing: bool,
    /// The image row under the pointer, and each image's place on screen.
    pub hovered: Option<usize>,
    pub points: Vec<egui::Pos2>,
    /// PCA or t-SNE.
    pub projection: Projection,
    /// The projected frames and what they were made from (centring, number of frames, method),
    /// and a t-SNE being fitted.
    pub(crate) projected: Option<(ProjectionKey, Projected)>,
    pub(crate) tsne_rx: Option<(ProjectionKey, std::sync::mpsc::Receiver<Option<Projected>>)>,
    /// α values whose embeddings were asked of the worker.
    pub(crate) requested: Vec<f64>,
    /// "Show one class": the class in full colour, the others faded.
    pub focus: Option<usize>,
    /// The plot transform of the last map drawn (plot coordinates to screen and back).
    pub transform: Option<egui_plot::PlotTransform>,
    /// The last t-SNE fit of this run and what it was made from (switching to PCA and back does
    /// not fit again).
    pub(crate) tsne_cache: Option<(ProjectionKey, Projected)>,
    /// The running t-SNE fit's iterations done, and its cancel flag.
    pub tsne_progress: Arc<AtomicUsize>,
    pub(crate) tsne_cancel: Arc<AtomicBool>,
}

/// The most classes the map's legend lists; with more, the table beside the map names them.
const LEGEND_CLASSES: usize = 12;

impl Default for EmbeddingView {
    fn default() -> Self {
        Self {
            center_modalities: false,
            alpha: 1.0,
            playing: false,
            hovered: None,
            points: Vec::new(),
            projection: Projection::Pca,
            projected: None,
            tsne_rx: None,
            requested: Vec::new(),
            focus: None,
            transform: None,
            tsne_cache: None,
            tsne_progress: Arc::default(),
            tsne_cancel: Arc::default(),
        }
    }
}

impl Studio {
    /// The method of the projection the embedding view shows now (`None` before the first).
    /// A t-SNE fit is running on its thread.
    pub fn is_fitting_tsne(&self) -> bool {
        self.embed_view.tsne_rx.is_some()
    }

    pub fn shown_projection(&self) -> Option<Projection> {
        self.embed_view.projected.as_ref().map(|p| p.0.2)
    }

    /// Take a finished t-SNE, or start one for `key` on the thread "flyp-tsne" (one at a time).
    fn fit_tsne(&mut self, e: &Embeddings, key: ProjectionKey, ctx: &egui::Context) {
        // A fit this run already made is shown again at once.
        if let Some((fitted, frames)) = &self.embed_view.tsne_cache
            && *fitted == key
        {
            self.embed_view.projected = Some((key, frames.clone()));
            return;
        }
        if let Some((asked, rx)) = &self.embed_view.tsne_rx {
            match rx.try_recv() {
                Ok(result) => {
                    let asked = *asked;
                    self.embed_view.tsne_rx = None;
                    if let Some(frames) = result {
                        self.embed_view.tsne_cache = Some((asked, frames.clone()));
                        self.embed_view.projected = Some((asked, frames));
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.embed_view.tsne_rx = None,
            }
        }
        if self
            .embed_view
            .projected
            .as_ref()
            .is_some_and(|p| p.0 == key)
            || self.embed_view.tsne_rx.is_some()
        {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (e, center, ctx) = (e.clone(), key.0, ctx.clone());
        let progress = Arc::new(AtomicUsize::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (done, stop) = (progress.clone(), cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("flyp-tsne".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                let frames = project_tsne_with(&e, center, &mut |it| {
                    done.store(it, Ordering::Relaxed);
                    // A few repaints a second move the progress bar.
                    if last.elapsed().as_millis() > 200 {
                        last = std::time::Instant::now();
                        ctx.request_repaint();
                    }
                    !stop.load(Ordering::Relaxed)
                });
                let _ = tx.send(frames);
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.embed_view.tsne_rx = Some((key, rx));
            self.embed_view.tsne_progress = progress;
            self.embed_view.tsne_cancel = cancel;
        }
    }

    /// Image embeddings (colour = class; marker = set) and class prompts (labelled stars) in one
    /// 2-D PCA fitted once on the starting model's embeddings and reused for every α; α plays
    /// from the starting model (0) to the fine-tuned one (1); hovering an image shows it.
    pub(super) fn embeddings_screen(&mut self, ui: &mut egui::Ui) {
        let Some(e) = self.progress.embeddings.clone() else {
            ui.label("The embeddings appear here when a run has finished.");
            return;
        };
        self.run_picker(ui);
        // Wrapped: on a narrow window the controls take a second line instead of leaving it.
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Projection");
            egui::ComboBox::from_id_salt("projection")
                .selected_text(match self.embed_view.projection {
                    Projection::Pca => "PCA",
                    Projection::Tsne => "t-SNE",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.embed_view.projection, Projection::Pca, "PCA")
                        .on_hover_text("Linear: the two directions of largest spread of the starting model's embeddings, kept for every α");
                    ui.selectable_value(&mut self.embed_view.projection, Projection::Tsne, "t-SNE")
                        .on_hover_text("Non-linear: keeps neighbours together; fitted once on every α's embeddings at once");
                })
                .response
                .labelled_by(label.id);
            ui.checkbox(&mut self.embed_view.center_modalities, "Center each modality")
                .on_hover_text("Subtract the mean image and the mean prompt: hides the gap between the two modalities");
            let label = ui
                .label("WiSE-FT α (0 = before, 1 = after fine-tuning)")
                .on_hover_text("The embeddings of the model at this α; between computed α values, positions are blended");
            ui.add(egui::Slider::new(&mut self.embed_view.alpha, 0.0..=1.0))
                .labelled_by(label.id);
            let play = if self.embed_view.playing { "Stop playing" } else { "Play" };
            if ui
                .button(play)
                .on_hover_text("Move α from 0 to 1 over four seconds")
                .clicked()
            {
                if !self.embed_view.playing && self.embed_view.alpha >= 1.0 {
                    self.embed_view.alpha = 0.0;
                }
                self.embed_view.playing = !self.embed_view.playing;
            }
            let label = ui.label("Show one class");
            let focus_text = self
                .embed_view
                .focus
                .and_then(|k| e.classes.get(k).map(|c| format!("only {c}")))
                .unwrap_or_else(|| "every class".into());
            egui::ComboBox::from_id_salt("focus")
                .selected_text(focus_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.embed_view.focus, None, "every class");
                    for (k, class) in e.classes.iter().enumerate() {
                        ui.selectable_value(&mut self.embed_view.focus, Some(k), format!("only {class}"));
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Its images and its prompt in full colour, every other class faded");
        });
        if self.embed_view.playing {
            let dt = ui.ctx().input(|i| i.stable_dt).min(0.1) as f64;
            self.embed_view.alpha = (self.embed_view.alpha + dt / 4.0).min(1.0);
            self.embed_view.playing = self.embed_view.alpha < 1.0;
            ui.ctx().request_repaint();
        }
        let key = (
            self.embed_view.center_modalities,
            e.frames.len(),
            self.embed_view.projection,
        );
        if self
            .embed_view
            .projected
            .as_ref()
            .is_none_or(|p| p.0 != key)
        {
            match self.embed_view.projection {
                Projection::Pca => {
                    self.embed_view.projected =
                        project(&e, self.embed_view.center_modalities).map(|p| (key, p));
                }
                Projection::Tsne => self.fit_tsne(&e, key, ui.ctx()),
            }
        }
        // A t-SNE fit nobody waits for any more (PCA chosen again) is cancelled.
        if self.embed_view.projection != Projection::Tsne && self.embed_view.tsne_rx.is_some() {
            self.embed_view.tsne_cancel.store(true, Ordering::Relaxed);
            self.embed_view.tsne_rx = None;
        }
        if self.embed_view.tsne_rx.is_some() {
            let done = self.embed_view.tsne_progress.load(Ordering::Relaxed);
            ui.add(
                egui::ProgressBar::new(done as f32 / TSNE_ITERATIONS as f32).text(format!(
                    "fitting t-SNE on every α's embeddings: iteration {done} of {TSNE_ITERATIONS} (choose PCA to cancel)"
                )),
            );
        }
        let Some((shown, frames)) = &self.embed_view.projected else {
            ui.label("No embeddings to show.");
            return;
        };
        if shown.2 != self.embed_view.projection {
            return;
        }
        let positions = positions_at(frames, self.embed_view.alpha);
        let n = e.images.len();
        // Marker per set: the ID test set filled circles, each OOD set another shape.
        let sets: Vec<String> = {
            let mut names: Vec<String> = Vec::new();
            for (_, set) in &e.images {
                if !names.contains(set) {
                    names.push(set.clone());
                }
            }
            names
        };
        let marker = |set: &str| {
            const SHAPES: [egui_plot::MarkerShape; 5] = [
                egui_plot::MarkerShape::Circle,
                egui_plot::MarkerShape::Square,
                egui_plot::MarkerShape::Diamond,
                egui_plot::MarkerShape::Up,
                egui_plot::MarkerShape::Cross,
            ];
            let k = sets.iter().position(|s| s == set).unwrap_or(0);
            (SHAPES[k % SHAPES.len()], set == "test" || set == "val")
        };
        ui.label(format!(
            "{} of 11 α computed · markers: {}; stars: class prompts",
            e.frames.len(),
            sets.iter()
                .map(|s| format!("{s} {}", shape_name(marker(s).0, marker(s).1)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // "Show one class": its images and prompt in full colour, the others faded.
        let focus = self.embed_view.focus;
        let colour = |class: usize| {
            let c = class_colour(class);
            match focus {
                Some(f) if f != class => c.gamma_multiply(0.15),
                _ => c,
            }
        };
        let stars: Vec<[f64; 2]> = (0..e.classes.len()).map(|k| positions[n + k]).collect();
        let side = 190.0;
        let plot_width = (ui.available_width() - side - 8.0).max(200.0);
        let mut response = None;
        // A legend of more classes than it has room for would cover the map (and the images
        // under it could not be hovered); the table beside the map names every class in its
        // colour, and "Show one class" picks one out.
        let mut map = Plot::new("embeddings")
            .width(plot_width)
            .data_aspect(1.0)
            .x_axis_label("component 1")
            .y_axis_label("component 2");
        if e.classes.len() <= LEGEND_CLASSES {
            map = map.legend(Legend::default());
        }
        ui.horizontal_top(|ui| {
            response = Some(map.show(ui, |plot| {
                for (class, name) in e.classes.iter().enumerate() {
                    for set in &sets {
                        let points: PlotPoints = (0..n)
                            .filter(|&i| e.images[i].0 == class && e.images[i].1 == *set)
                            .map(|i| positions[i])
                            .collect();
                        let (shape, filled) = marker(set);
                        // One legend entry per class: its images and prompt share the name.
                        plot.points(
                            egui_plot::Points::new(name.clone(), points)
                                .color(colour(class))
                                .shape(shape)
                                .filled(filled)
                                .radius(3.0),
                        );
                    }
                }
                // The prompts over every image.
                for (class, name) in e.classes.iter().enumerate() {
                    plot.points(
                        egui_plot::Points::new(name.clone(), vec![stars[class]])
                            .color(colour(class))
                            .shape(egui_plot::MarkerShape::Asterisk)
                            .radius(9.0),
                    );
                }
            }));
            // Scrolled, so that the "all" row of many classes stays reachable on a small window.
            ui.vertical(|ui| {
                egui::ScrollArea::vertical()
                    .id_salt("nearest prompt")
                    .show(ui, |ui| self.nearest_prompt_table(ui, &e));
            });
        });
        let Some(response) = response else { return };
        self.embed_view.transform = Some(response.transform);
        // Prompt labels where they do not cover each other, placed in screen space with this
        // frame's transform and painted over the map. Painted, not plot items: a plot item counts
        // towards the map's automatic bounds, so labels pushed outwards would move the bounds,
        // which moves the labels again, and the map would never settle.
        let labels = place_labels(&stars, &e.classes, &response.transform);
        let painter = ui.painter_at(*response.transform.frame());
        let font = egui::TextStyle::Body.resolve(ui.style());
        for (class, (name, at)) in e.classes.iter().zip(labels).enumerate() {
            painter.text(
                at,
                egui::Align2::LEFT_CENTER,
                name,
                font.clone(),
                colour(class),
            );
        }
        // Where each image is on screen; the one under the pointer (within 8 points) is shown.
        self.embed_view.points = (0..n)
            .map(|i| {
                let [x, y] = positions[i];
                response
                    .transform
                    .position_from_point(&egui_plot::PlotPoint::new(x, y))
            })
            .collect();
        self.embed_view.hovered = response.response.hover_pos().and_then(|pointer| {
            self.embed_view
                .points
                .iter()
                .enumerate()
                .map(|(i, at)| (i, at.distance(pointer)))
                .filter(|(_, d)| *d < 8.0)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        });
        if let Some(i) = self.embed_view.hovered {
            let path = e.paths[i].clone();
            let (class, set) = e.images[i].clone();
            let class = e.classes.get(class).cloned().unwrap_or_default();
            let thumbs = &mut self.thumbs;
            response.response.on_hover_ui_at_pointer(|ui| {
                thumbs.show(ui, &path, 96.0);
                ui.label(format!("{class} ({set})"));
                ui.label(
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            });
        }
    }
}

/// 2-D positions of every row of [`Embeddings`] for each computed α: (α, positions).
pub type Projected = Vec<(f64, Vec<[f64; 2]>)>;

/// What a projection was made from: (centred per modality, number of α frames, method).
pub(super) type ProjectionKey = (bool, usize, Projection);

/// Every frame of `e` in 2-D: PCA fitted once on the α = 0 rows (the starting model; centred per
/// modality when asked), then applied to every α.
pub fn project(e: &Embeddings, center: bool) -> Option<Projected> {
    let start = e.at(0.0)?;
    let groups: Vec<usize> = (0..start.len())
        .map(|i| usize::from(i >= e.images.len()))
        .collect();
    let prepare = |rows: &Vec<Vec<f32>>| {
        if center {
            center_groups(rows, &groups)
        } else {
            rows.clone()
        }
    };
    let pca = Pca::fit(&prepare(start), 2)?;
    Some(
        e.frames
            .iter()
            .map(|(alpha, rows)| {
                let xy = prepare(rows)
                    .iter()
                    .map(|r| {
                        let p = pca.project(r);
                        [p[0], p.get(1).copied().unwrap_or(0.0)]
                    })
                    .collect();
                (*alpha, xy)
            })
            .collect(),
    )
}

/// Every frame of `e` in 2-D by one t-SNE of all frames' rows together (perplexity 30, 500
/// iterations), so positions at different α are comparable.
pub fn project_tsne(e: &Embeddings, center: bool) -> Option<Projected> {
    project_tsne_with(e, center, &mut |_| true)
}

/// The t-SNE iterations of one fit.
pub const TSNE_ITERATIONS: usize = 500;

/// [`project_tsne`], telling `go_on` the iterations done; `None` when it answers `false`.
pub fn project_tsne_with(
    e: &Embeddings,
    center: bool,
    go_on: &mut dyn FnMut(usize) -> bool,
) -> Option<Projected> {
    let first = e.frames.first()?;
    let per_frame = first.1.len();
    let groups: Vec<usize> = (0..per_frame)
        .map(|i| usize::from(i >= e.images.len()))
        .collect();
    let mut rows = Vec::with_capacity(per_frame * e.frames.len());
    for (_, frame) in &e.frames {
        if center {
            rows.extend(center_groups(frame, &groups));
        } else {
            rows.extend(frame.iter().cloned());
        }
    }
    let xy = flyp::report::projection::tsne_with(&rows, 30.0, TSNE_ITERATIONS, go_on)?;
    Some(
        e.frames
            .iter()
            .zip(xy.chunks(per_frame))
            .map(|((alpha, _), chunk)| (*alpha, chunk.to_vec()))
            .collect(),
    )
}

/// Positions at `alpha`: the computed frame there, else a blend of the two computed frames
/// around it (frames sorted by α).
pub fn positions_at(frames: &Projected, alpha: f64) -> Vec<[f64; 2]> {
    let below = frames.iter().rev().find(|(a, _)| *a <= alpha);
    let above = frames.iter().find(|(a, _)| *a >= alpha);
    match (below, above) {
        (Some((a, p)), Some((b, q))) if b > a => {
            let t = (alpha - a) / (b - a);
            p.iter()
                .zip(q)
                .map(|(p, q)| [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])])
                .collect()
        }
        (Some((_, p)), _) | (None, Some((_, p))) => p.clone(),
        (None, None) => Vec::new(),
    }
}

/// How a marker looks, in words (for the legend line above the plot).
fn shape_name(shape: egui_plot::MarkerShape, filled: bool) -> String {
    let fill = if filled { "filled" } else { "hollow" };
    let name = match shape {
        egui_plot::MarkerShape::Circle => "circles",
        egui_plot::MarkerShape::Square => "squares",
        egui_plot::MarkerShape::Diamond => "diamonds",
        egui_plot::MarkerShape::Up => "triangles",
        _ => "crosses",
    };
    format!("{fill} {name}")
}

impl Studio {
    /// Beside the map: for each class, how many of its images (test and OOD sets together) lie
    /// nearest their own class's prompt in the full embedding space at the shown α (the nearest
    /// computed α) — what the picture shows, as numbers.
    fn nearest_prompt_table(&self, ui: &mut egui::Ui, e: &Embeddings) {
        let Some((alpha, rows)) = e.frames.iter().min_by(|a, b| {
            (a.0 - self.embed_view.alpha)
                .abs()
                .total_cmp(&(b.0 - self.embed_view.alpha).abs())
        }) else {
            return;
        };
        let (right, total) = nearest_prompt_counts(e, rows);
        ui.strong(format!("Nearest prompt at α = {alpha:.1}"));
        ui.label("images of each class nearest its own prompt");
        egui::Grid::new("nearest").striped(true).show(ui, |ui| {
            for (k, class) in e.classes.iter().enumerate() {
                ui.colored_label(class_colour(k), class);
                let share = 100.0 * right[k] as f64 / total[k].max(1) as f64;
                ui.label(format!("{share:.0} %"));
                ui.end_row();
            }
            let all = 100.0 * right.iter().sum::<usize>() as f64
                / total.iter().sum::<usize>().max(1) as f64;
            ui.strong("all");
            ui.strong(format!("{all:.0} %"));
            ui.end_row();
        });
    }
}

/// Per class: (images nearest their own class's prompt, images), by cosine in `rows` (image rows
/// first, then one unit prompt row per class).
pub fn nearest_prompt_counts(e: &Embeddings, rows: &[Vec<f32>]) -> (Vec<usize>, Vec<usize>) {
    let k = e.classes.len();
    let n = e.images.len();
    let (mut right, mut total) = (vec![0; k], vec![0; k]);
    let prompts = &rows[n.min(rows.len())..];
    for (i, (class, _)) in e.images.iter().enumerate() {
        let Some(image) = rows.get(i) else { break };
        let dot = |p: &Vec<f32>| image.iter().zip(p).map(|(a, b)| a * b).sum::<f32>();
        let nearest = prompts
            .iter()
            .enumerate()
            .max_by(|a, b| dot(a.1).total_cmp(&dot(b.1)))
            .map(|(c, _)| c);
        if let Some(t) = total.get_mut(*class) {
            *t += 1;
            if nearest == Some(*class) {
                right[*class] += 1;
            }
        }
    }
    (right, total)
}

/// Where each star's label goes on screen (the left centre of its text): to the right of the star,
/// else the first of left, above, below and further out whose box stays inside the plot and covers
/// no label placed before it. Boxes are estimated with `t`, the plot's transform (about 7 points
/// per character, 16 high).
pub fn place_labels(
    stars: &[[f64; 2]],
    names: &[String],
    t: &egui_plot::PlotTransform,
) -> Vec<egui::Pos2> {
    let mut placed: Vec<egui::Rect> = Vec::new();
    stars
        .iter()
        .zip(names)
        .map(|(star, name)| {
            let at = t.position_from_point(&egui_plot::PlotPoint::new(star[0], star[1]));
            let size = egui::vec2(7.0 * name.chars().count() as f32 + 4.0, 16.0);
            let offsets = [
                egui::vec2(10.0, 0.0),
                egui::vec2(-10.0 - size.x, 0.0),
                egui::vec2(10.0, -18.0),
                egui::vec2(10.0, 18.0),
                egui::vec2(-10.0 - size.x, -18.0),
                egui::vec2(-10.0 - size.x, 18.0),
                egui::vec2(10.0, -36.0),
                egui::vec2(10.0, 36.0),
            ];
            let spot = offsets
                .iter()
                .map(|o| egui::Rect::from_min_size(at + *o - egui::vec2(0.0, size.y / 2.0), size))
                .find(|r| t.frame().contains_rect(*r) && placed.iter().all(|p| !p.intersects(*r)))
                .unwrap_or_else(|| {
                    egui::Rect::from_min_size(at + offsets[0] - egui::vec2(0.0, size.y / 2.0), size)
                });
            placed.push(spot);
            spot.left_center()
        })
        .collect()
}
