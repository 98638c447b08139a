//! Export: the finished run's model at the current α (`model/`, HF layout) and its
//! `results.json` into a folder the user names. A folder that is not empty is asked about first,
//! and flyp never removes or replaces a file it did not write: an export leaves a `.flyp-export`
//! marker, and only a folder holding that marker is overwritten.

use super::*;

/// The marker an export leaves in its folder.
pub const MARKER: &str = ".flyp-export";

/// The names an export writes (or moves through) in its folder.
const WRITES: [&str; 5] = [MARKER, "results.json", "model", "model.new", "model.old"];

/// What the export folder holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportFolder {
    /// Absent or empty: export at once.
    Empty,
    /// An earlier export (its marker is there): ask before overwriting it.
    Earlier,
    /// Other files, none with a name the export writes (`first` names one): ask before adding.
    Others { first: String },
    /// A file the export would replace that flyp did not write: choose another folder.
    Collides { name: String },
}

impl ExportFolder {
    /// Look at `dir`; an error line names what is wrong (a file, a link, unreadable).
    pub fn of(dir: &Path) -> Result<Self, String> {
        let at = |e: std::io::Error| format!("{}: {e}", dir.display());
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::Empty),
            Err(e) => return Err(at(e)),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{}: a link; export into a folder", dir.display()));
            }
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "{}: a file, not a folder; choose a folder to export into",
                    dir.display()
                ));
            }
            Ok(_) => {}
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(at)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(at)?;
        names.sort();
        if names.is_empty() {
            Ok(Self::Empty)
        } else if names.iter().any(|n| n == MARKER) {
            Ok(Self::Earlier)
        } else if let Some(name) = names.iter().find(|n| WRITES.contains(&n.as_str())) {
            Ok(Self::Collides { name: name.clone() })
        } else {
            Ok(Self::Others {
                first: names[0].clone(),
            })
        }
    }
}

impl Studio {
    /// The Export button: export at once into a new or empty folder, else ask.
    pub fn export(&mut self) {
        self.progress.exported = None;
        match ExportFolder::of(&self.export_dir) {
            Ok(ExportFolder::Empty) => self.write_export(),
            Ok(question) => self.results_view.export_question = Some(question),
            Err(line) => self.progress.exported = Some(Err(line)),
        }
    }

    /// Write the export: the marker, results.json, then `model/` on the worker.
    fn write_export(&mut self) {
        self.results_view.export_question = None;
        let Some(run) = &self.jobs.run else { return };
        let p = &self.progress;
        let Some(mut results) = p.results.clone() else {
            return;
        };
        results.wise = p
            .wise
            .iter()
            .map(|w| flyp::train::WisePoint {
                alpha: w.alpha,
                sets: w.sets.iter().cloned().collect(),
            })
            .collect();
        results.wise.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        results.exported_alpha = Some(self.results_view.alpha);
        let dir = self.export_dir.clone();
        let written = std::fs::create_dir_all(&dir)
            .map_err(|e| flyp::Error::io(&dir, e))
            .and_then(|()| {
                flyp::run_dir::write_atomic(
                    &dir.join(MARKER),
                    b"written by flyp-studio's Export; a later export may overwrite this folder\n",
                )
            })
            .and_then(|()| results.write(&dir.join("results.json")));
        match written {
            Ok(()) => run.export(dir, self.results_view.alpha),
            Err(e) => self.progress.exported = Some(Err(e.to_string())),
        }
    }

    /// The question about a folder that is not empty, until it is answered.
    pub(super) fn export_question(&mut self, ctx: &egui::Context) {
        let Some(question) = self.results_view.export_question.clone() else {
            return;
        };
        let dir = self.export_dir.display().to_string();
        let (text, write) = match &question {
            ExportFolder::Earlier => (
                format!("{dir} holds an earlier export. Overwrite its model/ and results.json?"),
                Some("Overwrite the earlier export"),
            ),
            ExportFolder::Others { first } => (
                format!(
                    "{dir} is not empty (it holds {first}, …). Export adds model/, results.json and {MARKER} there and changes nothing else."
                ),
                Some("Write into it"),
            ),
            ExportFolder::Collides { name } => (
                format!(
                    "{dir} holds {name}, which flyp did not write: export into another folder."
                ),
                None,
            ),
            ExportFolder::Empty => (String::new(), Some("Export")),
        };
        let mut answer = None;
        egui::Window::new("Export into a folder that is not empty")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                ui.label(text);
                ui.horizontal(|ui| {
                    if let Some(write) = write
                        && ui.button(write).clicked()
                    {
                        answer = Some(true);
                    }
                    if ui.button("Choose another folder").clicked() {
                        answer = Some(false);
                    }
                });
            });
        match answer {
            Some(true) => self.write_export(),
            Some(false) => self.results_view.export_question = None,
            None => {}
        }
    }
}
