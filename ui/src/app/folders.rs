//! Folders chosen by hand: the folder picker's state, what a chosen or dropped folder becomes,
//! and the question a dropped folder asks.

use super::*;

/// What a chosen folder becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRole {
    Train,
    Ood,
    Model,
    /// Where checkpoints go (and a stopped run continues from).
    Run,
}

/// The in-app folder picker ("Browse…"): works the same on every platform and under Wayland, where
/// winit delivers no dropped files.
#[derive(Debug, Clone)]
pub struct Browser {
    pub role: FolderRole,
    pub dir: PathBuf,
    /// The sub-folders of `dir`, sorted (read once per folder, not per frame), or why not.
    pub entries: Result<Vec<PathBuf>, String>,
}

impl Browser {
    pub fn open(role: FolderRole, dir: PathBuf) -> Self {
        let entries = list_folders(&dir);
        Self { role, dir, entries }
    }
}

/// The sub-folders of `dir`, by name (hidden ones left out).
fn list_folders(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    folders.sort();
    Ok(folders)
}

/// How the embedding view maps embeddings to 2-D.
impl Studio {
    /// Use `dir` as the training set (and scan it), an OOD set, or the model.
    pub fn use_folder(&mut self, role: FolderRole, dir: PathBuf, ctx: &egui::Context) {
        match role {
            FolderRole::Train => {
                self.settings.spec.data.train = dir;
                self.start_scan(ctx);
            }
            FolderRole::Ood => self.add_ood(dir),
            FolderRole::Model => self.settings.spec.model = dir,
            FolderRole::Run => self.settings.spec.out = Some(dir),
        }
    }

    /// A folder was dropped: ask whether it is the training set or an OOD set.
    pub(super) fn dropped_folder_question(&mut self, ctx: &egui::Context) {
        let Some(dir) = self.dropped_folder.clone() else {
            return;
        };
        let mut answer = None;
        egui::Window::new("A folder was dropped")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                ui.label(dir.display().to_string());
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(
                            !self.is_running(),
                            egui::Button::new("Use as the training set"),
                        )
                        .clicked()
                    {
                        answer = Some(1);
                    }
                    if ui
                        .add_enabled(!self.is_running(), egui::Button::new("Add as an OOD set"))
                        .clicked()
                    {
                        answer = Some(2);
                    }
                    if dir.join("config.json").is_file()
                        && ui
                            .add_enabled(!self.is_running(), egui::Button::new("Use as the model"))
                            .clicked()
                    {
                        answer = Some(3);
                    }
                    if ui.button("Cancel").clicked() {
                        answer = Some(0);
                    }
                });
            });
        match answer {
            Some(1) => self.use_folder(FolderRole::Train, dir, ctx),
            Some(2) => self.use_folder(FolderRole::Ood, dir, ctx),
            Some(3) => self.use_folder(FolderRole::Model, dir, ctx),
            Some(_) => {}
            None => return,
        }
        self.dropped_folder = None;
    }
}
