//! The session's runs: the one on screen and the finished ones before it, each kept with its
//! worker (which holds its models) so it stays explorable in Results and Embeddings.

use super::*;

/// How many earlier runs stay explorable (each holds two models in memory); older ones keep only
/// their curve in the ID-vs-OOD scatter.
pub const KEPT_RUNS: usize = 5;

/// A finished run of this session that is not on screen.
pub struct PastRun {
    pub label: String,
    pub run: Run,
    pub progress: Progress,
    pub embed_view: EmbeddingView,
    pub results_view: ResultsView,
}

impl Studio {
    /// The run on screen leaves it, with its screens' state: kept explorable when it finished,
    /// else stopped.
    pub(super) fn archive_current(&mut self) {
        let Some(run) = self.jobs.run.take() else {
            return;
        };
        let progress = std::mem::take(&mut self.progress);
        let embed_view = std::mem::take(&mut self.embed_view);
        let results_view = std::mem::take(&mut self.results_view);
        if !progress.finished {
            end_on_its_own_thread(run);
            return;
        }
        let curve = progress.id_ood_curve();
        if !curve.is_empty() {
            self.history.push(FinishedRun {
                label: self.run_label.clone(),
                curve,
            });
        }
        self.past.insert(
            0,
            PastRun {
                label: self.run_label.clone(),
                run,
                progress,
                embed_view,
                results_view,
            },
        );
        while self.past.len() > KEPT_RUNS {
            if let Some(old) = self.past.pop() {
                end_on_its_own_thread(old.run);
            }
        }
    }

    /// Show earlier run `k` (an index into `past`); the run on screen takes its place there.
    pub fn show_past_run(&mut self, k: usize) {
        if k >= self.past.len() || self.is_running() || !self.progress.finished {
            return;
        }
        let shown = self.past.remove(k);
        let Some(run) = self.jobs.run.replace(shown.run) else {
            return;
        };
        let current = PastRun {
            label: std::mem::replace(&mut self.run_label, shown.label),
            run,
            progress: std::mem::replace(&mut self.progress, shown.progress),
            embed_view: std::mem::replace(&mut self.embed_view, shown.embed_view),
            results_view: std::mem::replace(&mut self.results_view, shown.results_view),
        };
        self.past.insert(k, current);
    }

    /// "Run": which of the session's finished runs Results and Embeddings show.
    pub(super) fn run_picker(&mut self, ui: &mut egui::Ui) {
        if self.past.is_empty() {
            return;
        }
        let mut chosen = None;
        ui.horizontal(|ui| {
            let label = ui.label("Run");
            egui::ComboBox::from_id_salt("run")
                .selected_text(self.run_label.clone())
                .show_ui(ui, |ui| {
                    ui.add_enabled(false, egui::Button::selectable(true, &self.run_label));
                    for (k, past) in self.past.iter().enumerate() {
                        if ui.selectable_label(false, &past.label).clicked() {
                            chosen = Some(k);
                        }
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Every finished run of this session stays here to explore");
        });
        if let Some(k) = chosen {
            self.show_past_run(k);
        }
    }
}

/// Drop a run on a thread of its own: dropping joins its worker, which may be busy answering a
/// request, and no frame should wait for that.
pub(super) fn end_on_its_own_thread(run: Run) {
    run.stop();
    let _ = std::thread::Builder::new()
        .name("flyp-cleanup".into())
        .spawn(move || drop(run));
}
