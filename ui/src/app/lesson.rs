//! "Show me FLYP": one button that runs zero-shot, FT and FLYP on the bundled demo (the same
//! library recipe, data and learning rates as `flyp demo`), skipping the runs this session
//! already made, then walks through four captioned views a teacher can read aloud.

use super::*;

/// The lesson's runs, in order.
const METHODS: [&dyn flyp::methods::Method; 3] = [
    &flyp::methods::zeroshot::ZeroShot,
    &flyp::methods::finetune::Finetune,
    &flyp::methods::flyp::Flyp,
];

/// The lesson's pages.
pub const PAGES: usize = 4;

/// Where the lesson stands.
#[derive(Debug, Clone)]
pub struct Lesson {
    /// Epochs of the lesson's training runs (the demo's 10; fewer for a quick look).
    pub epochs: usize,
    /// Methods still to run, and the one running.
    queue: Vec<&'static dyn flyp::methods::Method>,
    running: Option<&'static dyn flyp::methods::Method>,
    /// (method name, run label) of the lesson's finished runs this session.
    pub done: Vec<(&'static str, String)>,
    /// The page shown, once every run is there.
    pub page: Option<usize>,
    /// Why the lesson stopped early.
    pub error: Option<String>,
}

impl Default for Lesson {
    fn default() -> Self {
        Self {
            epochs: 10,
            queue: Vec::new(),
            running: None,
            done: Vec::new(),
            page: None,
            error: None,
        }
    }
}

impl Lesson {
    /// The lesson is running its runs.
    pub fn is_busy(&self) -> bool {
        !self.queue.is_empty() || self.running.is_some()
    }
}

impl Studio {
    /// The "Show me FLYP" button: queue the runs the session does not have yet.
    pub fn start_lesson(&mut self) {
        let lesson = &mut self.lesson;
        lesson.error = None;
        lesson.page = None;
        let shown = &self.run_label;
        let past = &self.past;
        // A run of an earlier lesson counts while the session still holds it.
        lesson
            .done
            .retain(|(_, label)| label == shown || past.iter().any(|p| &p.label == label));
        lesson.queue = METHODS
            .iter()
            .copied()
            .filter(|m| !lesson.done.iter().any(|(name, _)| *name == m.name()))
            .rev()
            .collect();
        if lesson.queue.is_empty() {
            self.show_lesson_page(0);
        }
    }

    /// Between frames: start the lesson's next run when the last one has ended, and open the
    /// first page when all are there.
    pub(super) fn lesson_step(&mut self, ctx: &egui::Context) {
        if self.is_running() || !self.lesson.is_busy() {
            return;
        }
        // A finished run answers its WiSE-FT curve first: the lesson's pages read it.
        let answered = self
            .results_view
            .requested
            .iter()
            .all(|a| self.progress.wise.iter().any(|w| w.alpha == *a));
        if self.lesson.running.is_some() && self.progress.finished && !answered {
            return;
        }
        if let Some(method) = self.lesson.running.take() {
            let ended_well = self.start_error.is_none()
                && self.progress.finished
                && self.run_label.ends_with(method.label())
                && !self
                    .progress
                    .outcome
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("stopped");
            if !ended_well {
                self.lesson.queue.clear();
                self.lesson.error = Some(format!(
                    "the lesson stopped: its {} run did not finish{}",
                    method.label(),
                    self.start_error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
                return;
            }
            self.lesson
                .done
                .push((method.name(), self.run_label.clone()));
        }
        let Some(method) = self.lesson.queue.pop() else {
            self.show_lesson_page(0);
            return;
        };
        let demo = Settings::demo();
        let spec = &mut self.settings.spec;
        *spec = demo.spec;
        spec.method = method;
        spec.hyper.epochs = self.lesson.epochs;
        spec.hyper.lr = method.demo_lr();
        self.lesson.running = Some(method);
        self.start(ctx);
    }

    /// Show page `page` of the lesson: its screen and α.
    fn show_lesson_page(&mut self, page: usize) {
        self.lesson.page = Some(page);
        let screen = match page {
            1 => "Embeddings",
            _ => "Results",
        };
        self.view = SCREENS.iter().position(|s| s.name == screen).unwrap_or(0);
        // The lesson's last run (FLYP) is the one on screen; the others are in the scatter.
        if let Some(k) = self
            .lesson_run("flyp")
            .and_then(|l| self.past.iter().position(|p| p.label == l))
        {
            self.show_past_run(k);
        }
        match page {
            1 => {
                self.embed_view.alpha = 0.0;
                self.embed_view.playing = true;
            }
            2 => self.results_view.alpha = 0.5,
            _ => self.results_view.alpha = 1.0,
        }
    }

    /// The label of the lesson's run of `method`, if the session has it.
    fn lesson_run(&self, method: &str) -> Option<String> {
        self.lesson
            .done
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, label)| label.clone())
    }

    /// What the session measured of run `label` (the one on screen or an earlier one).
    fn run_progress(&self, label: &str) -> Option<&Progress> {
        if self.run_label == label {
            return Some(&self.progress);
        }
        self.past
            .iter()
            .find(|p| p.label == label)
            .map(|p| &p.progress)
    }

    /// (ID, OOD mean) top-1 % of the lesson's `method` run at α = 1 (its fine-tuned model).
    fn lesson_point(&self, method: &str) -> Option<(f64, f64)> {
        let progress = self.run_progress(&self.lesson_run(method)?)?;
        progress
            .id_ood_curve()
            .last()
            .map(|&(_, id, ood)| (id, ood))
    }

    /// An OOD image FT gets wrong and FLYP right at α = 1: (path, true, FT's, FLYP's class).
    fn lesson_disagreement(&self) -> Option<(PathBuf, String, String, String)> {
        let ft = self.run_progress(&self.lesson_run("finetune")?)?;
        let flyp = self.run_progress(&self.lesson_run("flyp")?)?;
        let at_one = |p: &Progress| p.wise.iter().find(|w| w.alpha == 1.0).cloned();
        let (ft_at, flyp_at) = (at_one(ft)?, at_one(flyp)?);
        // OOD sets: every set but val and test.
        for (k, set) in flyp.sets.iter().enumerate() {
            if set == "val" || set == "test" {
                continue;
            }
            let (Some(a), Some(b), Some(images)) = (
                ft_at.predicted.get(k),
                flyp_at.predicted.get(k),
                flyp.samples.get(k),
            ) else {
                continue;
            };
            for (i, (path, truth)) in images.iter().enumerate() {
                if a.get(i) != Some(truth) && b.get(i) == Some(truth) {
                    let class = |c: usize| flyp.classes.get(c).cloned().unwrap_or_default();
                    return Some((path.clone(), class(*truth), class(a[i]), class(*truth)));
                }
            }
        }
        None
    }

    /// The lesson's window: a page's caption, Back, Next and Close.
    pub(super) fn lesson_window(&mut self, ctx: &egui::Context) {
        let Some(page) = self.lesson.page else {
            return;
        };
        let mut go = None;
        let mut close = false;
        egui::Window::new("Show me FLYP")
            .collapsible(false)
            .resizable(false)
            .default_width(340.0)
            .anchor(egui::Align2::RIGHT_BOTTOM, [-12.0, -36.0])
            .show(ctx, |ui| {
                ui.strong(format!("{} of {PAGES}: {}", page + 1, lesson_title(page)));
                ui.add(egui::Label::new(self.lesson_caption(page)).wrap());
                if page == 3
                    && let Some((path, _, _, _)) = self.lesson_disagreement()
                {
                    self.thumbs.show(ui, &path, 96.0);
                }
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(page > 0, egui::Button::new("Back"))
                        .clicked()
                    {
                        go = Some(page - 1);
                    }
                    if ui
                        .add_enabled(page + 1 < PAGES, egui::Button::new("Next"))
                        .clicked()
                    {
                        go = Some(page + 1);
                    }
                    if ui.button("Close the lesson").clicked() {
                        close = true;
                    }
                });
            });
        if let Some(page) = go {
            self.show_lesson_page(page);
        }
        if close {
            self.lesson.page = None;
        }
    }

    /// What a teacher reads aloud on `page`, with this session's numbers.
    pub fn lesson_caption(&self, page: usize) -> String {
        let point = |m: &str| {
            self.lesson_point(m)
                .map(|(id, ood)| format!("{id:.1} % ID, {ood:.1} % OOD"))
                .unwrap_or_else(|| "not measured".into())
        };
        match page {
            0 => format!(
                "Each line is one method: right means more Twemoji test images (in distribution, ID) classified right, up means more images in the other art styles (out of distribution, OOD). Zero-shot, the model before any training: {}. Fine-tuned (FT): {}. FLYP: {}. Fine-tuning moves a model right; whether it moves up or down on the way is the question of robustness.",
                point("zeroshot"),
                point("finetune"),
                point("flyp")
            ),
            1 => "Every dot is an image, every star the prompt of a class, in one picture of the model's embedding space. α = 0 is the model before fine-tuning, α = 1 after FLYP: press Play to watch the images move towards their class's prompt as fine-tuning pulls them together.".into(),
            2 => "WiSE-FT mixes the weights: at α = 0.5 every weight is halfway between the zero-shot model and the fine-tuned one. Move the slider and watch both numbers: where ID stays high while OOD rises, the mix beats both of its ends. The scatter's lines show the same for every method at once.".into(),
            _ => match self.lesson_disagreement() {
                Some((path, truth, ft, flyp)) => format!(
                    "{}: an image of {truth} in a style fine-tuning never showed. FT calls it {ft}; FLYP calls it {flyp}. FLYP's idea is to fine-tune with the loss the model was pretrained with, so that it keeps more of what it knew; one image shows that they differ, the scatter shows by how much.",
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                ),
                None => "In these runs no OOD image is wrong under FT and right under FLYP: at this scale the two methods agree on the other styles.".into(),
            },
        }
    }
}

fn lesson_title(page: usize) -> &'static str {
    match page {
        0 => "in distribution against out of distribution",
        1 => "the embeddings before and after",
        2 => "mixing the weights (WiSE-FT)",
        _ => "one image the methods disagree on",
    }
}
