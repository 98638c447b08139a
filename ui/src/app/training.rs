//! The Training screen: live loss and per-set accuracy curves.

use super::*;

impl Studio {
    pub(super) fn training_screen(&mut self, ui: &mut egui::Ui) {
        let p = &self.progress;
        if self.jobs.run.is_none() && p.outcome.is_none() {
            ui.label("Choose a dataset and a model, then Start.");
            return;
        }
        let paused = if self.is_paused() { " · paused" } else { "" };
        ui.label(format!(
            "{}{paused}",
            p.status_line(self.settings.spec.hyper.epochs)
        ));
        if let Some(outcome) = &p.outcome {
            let colour = if p.failed {
                ui.visuals().error_fg_color
            } else {
                ui.visuals().text_color()
            };
            ui.colored_label(colour, outcome);
        }
        if let Some((l2, sets)) = &p.probe {
            ui.label(format!(
                "linear probe (L2 {l2:e}, chosen on val): {}",
                sets.iter()
                    .map(|(n, m)| format!("{n} {:.1} %", 100.0 * m.top1))
                    .collect::<Vec<_>>()
                    .join(" · ")
            ));
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
