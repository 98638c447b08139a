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
        ui.label(format!("{}{paused}", p.status_line()));
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
        // A resumed run: the checkpoint's epochs as their mean loss at their last step, so the
        // curve goes on where it left off.
        let mut done = 0;
        let resumed = p.resumed_epochs();
        let earlier: PlotPoints = p.epochs[..resumed]
            .iter()
            .map(|r| {
                done += r.steps;
                [done as f64, r.mean_loss]
            })
            .collect();
        Plot::new("loss")
            .height(height)
            .legend(Legend::default())
            .x_axis_label("step")
            .y_axis_label("loss")
            .show(ui, |plot| {
                if resumed > 0 {
                    plot.line(Line::new("epoch means before the resume", earlier));
                }
                plot.line(Line::new("loss", loss));
            });
        ui.strong("Top-1 accuracy per set (per epoch, %; epoch 0 = before training, zero-shot)");
        Plot::new("accuracy")
            .height(height)
            .legend(Legend::default().position(egui_plot::Corner::RightBottom)) // accuracy rises: the lower right stays free
            .x_axis_label("epoch")
            .y_axis_label("top-1 (%)")
            .show(ui, |plot| {
                for (i, set) in p.sets.iter().enumerate() {
                    // Epoch 0: the model before training (zero-shot).
                    let before = p
                        .before
                        .as_ref()
                        .and_then(|b| b.get(i))
                        .map(|(_, m)| [0.0, 100.0 * m.top1]);
                    let points: PlotPoints = before
                        .into_iter()
                        .chain(p.epochs.iter().filter_map(|r| {
                            r.evals
                                .get(i)
                                .map(|(_, m)| [r.epoch as f64, 100.0 * m.top1])
                        }))
                        .collect();
                    plot.line(Line::new(set.clone(), points));
                }
            });
    }
}
