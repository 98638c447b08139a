//! The application state and its screens: the run settings on the left; training curves,
//! embeddings and results in the middle; the devices in the status bar.

use std::path::{Path, PathBuf};

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use flyp::train::engine::{EpochReport, StepProgress};

mod embeddings;
mod export;
mod folders;
mod lesson;
mod progress;
mod results;
mod runs;
mod settings;
mod stored;
mod training;

pub use embeddings::EmbeddingView;
pub use embeddings::{
    Projected, TSNE_ITERATIONS, nearest_prompt_counts, place_labels, positions_at, project,
    project_tsne,
};
pub use export::ExportFolder;
pub use folders::{Browser, FolderRole};
pub use lesson::Lesson;
pub use progress::{Classified, FinishedRun, Progress, WisePoint};
pub use results::{ResultsView, cell_paths};
pub use runs::{KEPT_RUNS, PastRun};
pub use stored::Settings;

use crate::compute::WindowGpu;
use crate::thumbs::Thumbnails;
use crate::worker::{Embeddings, Event, Run};
use flyp::DeviceChoice;
use flyp::report::projection::{Pca, center_groups};
use flyp::train::Metrics;

/// The bundled demo's OOD sets (as `flyp demo`: [`flyp::methods::DEMO_OOD_SETS`]).
pub fn demo_oods() -> Vec<(String, PathBuf)> {
    flyp::methods::DEMO_OOD_SETS
        .map(|name| {
            (
                name.to_string(),
                bundled(&format!("assets/emoji-subset/{name}")),
            )
        })
        .to_vec()
}

/// A bundled file of the flyp checkout this app was built from.
pub fn bundled(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// The worker threads of the app and the channels their answers arrive on.
#[derive(Default)]
pub struct Jobs {
    /// The run whose results are on screen (its worker stays to answer WiSE-FT requests after
    /// training).
    pub run: Option<Run>,
    /// A run started but not yet training (loading, probing the data), with what it reported:
    /// it takes the screen only once it trains, so a Start that fails loses nothing.
    pub next: Option<(Run, Progress)>,
    pub(crate) download_rx: Option<std::sync::mpsc::Receiver<crate::worker::Fetch>>,
    pub(crate) scan_rx: Option<std::sync::mpsc::Receiver<Result<flyp::data::Scan, String>>>,
}

/// The app: settings, the current run and what it reported.
pub struct Studio {
    /// What the settings panel edits, kept between sessions.
    pub settings: Settings,
    /// "Show me FLYP": its runs and pages.
    pub lesson: Lesson,
    /// The zoom factor last given to egui.
    zoom_applied: f32,
    /// Why the last Start did not start a run (shown under Start until the next one).
    pub start_error: Option<String>,
    /// The GPU adapter eframe draws with, e.g. "llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan)".
    pub adapter: Option<String>,
    /// The window's wgpu device, which training can share.
    pub gpu: Option<WindowGpu>,
    /// The OOD folder being typed, before "Add".
    pub new_ood: PathBuf,
    /// A folder dropped on the window, waiting for the user to say what it is.
    pub dropped_folder: Option<PathBuf>,
    /// The open folder picker.
    pub browser: Option<Browser>,
    /// Earlier finished runs of this session (for the ID-vs-OOD scatter).
    pub history: Vec<FinishedRun>,
    /// Earlier finished runs still explorable, newest first (at most [`KEPT_RUNS`]).
    pub past: Vec<PastRun>,
    /// The name of the run on screen ("run 2: FLYP"), and how many runs this session trained.
    pub run_label: String,
    runs_started: usize,
    pub progress: Progress,
    /// The worker threads and their channels.
    pub jobs: Jobs,
    /// Where "Export" writes (`model/` at the current α and `results.json`), for every run.
    pub export_dir: PathBuf,
    /// Per-run state of the Embeddings and Results screens.
    pub embed_view: EmbeddingView,
    pub results_view: ResultsView,
    /// The screen shown (an index into [`SCREENS`]).
    pub view: usize,
    pub thumbs: Thumbnails,
    pub download: Option<Result<PathBuf, String>>,
    pub download_progress: Option<flyp::hub::Progress>,
    /// The training folder's scan report (or the error), and a scan in flight.
    pub scan: Option<Result<flyp::data::Scan, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Principal components of the starting model's embeddings, applied to every α.
    Pca,
    /// One t-SNE of every α's embeddings together (fitted on a worker thread).
    Tsne,
}

/// A screen of the central panel: its tab's name and what draws it.
pub struct Screen {
    pub name: &'static str,
    pub show: fn(&mut Studio, &mut egui::Ui),
}

/// The screens, in tab order: a new screen is one file (a `Studio` method that draws it) and one
/// line here.
pub const SCREENS: [Screen; 3] = [
    Screen {
        name: "Training",
        show: Studio::training_screen,
    },
    Screen {
        name: "Embeddings",
        show: Studio::embeddings_screen,
    },
    Screen {
        name: "Results",
        show: Studio::results_screen,
    },
];

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
            gpu: cc.wgpu_render_state.as_ref().map(WindowGpu::new),
            settings: Settings::load(cc.storage),
            start_error: None,
            zoom_applied: 1.0,
            lesson: Lesson::default(),
            new_ood: PathBuf::new(),
            dropped_folder: None,
            browser: None,
            history: Vec::new(),
            past: Vec::new(),
            run_label: String::new(),
            runs_started: 0,
            progress: Progress::default(),
            jobs: Jobs::default(),
            embed_view: EmbeddingView::default(),
            results_view: ResultsView::default(),
            export_dir: PathBuf::from("flyp-studio-export"),
            view: 0,
            thumbs: Thumbnails::new(&cc.egui_ctx),
            download: None,
            download_progress: None,
            scan: None,
        }
    }

    /// A run is training (its worker stays to answer WiSE-FT requests afterwards).
    pub fn is_running(&self) -> bool {
        self.jobs.next.is_some() || (self.jobs.run.is_some() && self.progress.outcome.is_none())
    }

    /// The run that Pause and Stop act on: the one starting, else the one training.
    pub fn active_run(&self) -> Option<&Run> {
        match &self.jobs.next {
            Some((run, _)) => Some(run),
            None => self.jobs.run.as_ref().filter(|_| self.is_running()),
        }
    }

    /// The running run is held between steps.
    pub fn is_paused(&self) -> bool {
        self.active_run().is_some_and(Run::is_paused)
    }

    /// Start a run with the current settings (the Start button), on the device "Compute" names.
    pub fn start(&mut self, ctx: &egui::Context) {
        self.start_error = None;
        if let Some(reason) = self.cannot_start() {
            return self.start_error = Some(reason);
        }
        let spec = &self.settings.spec;
        if let Some(dir) = &spec.out
            && !spec.resume
            && flyp::train::checkpoint::exists(dir)
        {
            return self.start_error = Some(format!(
                "{} already holds a run: tick \"Continue the run saved there\" or choose another run folder",
                dir.display()
            ));
        }
        let device = match crate::compute::resolve(self.settings.compute, self.gpu.as_mut()) {
            Ok(device) => device,
            Err(e) => return self.start_error = Some(e.to_string()),
        };
        match Run::start(self.settings.spec.clone(), device, ctx.clone()) {
            Ok(run) => self.jobs.next = Some((run, Progress::default())),
            Err(e) => self.start_error = Some(format!("cannot start the worker thread: {e}")),
        }
    }

    /// Why Start cannot run now (its tooltip), if it cannot.
    pub fn cannot_start(&self) -> Option<String> {
        if self.is_running() {
            return Some("A run is in progress: Stop it first".into());
        }
        match &self.scan {
            Some(Err(e)) => Some(format!("The training folder cannot be used: {e}")),
            _ => None,
        }
    }

    /// The started run trains (or finished, or stopped with an epoch to show): it takes the
    /// screen, and the run that was there joins the session's earlier runs.
    fn promote(&mut self, run: Run, progress: Progress) {
        self.archive_current();
        self.runs_started += 1;
        self.run_label = format!(
            "run {}: {}",
            self.runs_started,
            self.settings.spec.method.label()
        );
        self.jobs.run = Some(run);
        self.progress = progress;
    }

    /// Add an OOD set (named after its folder; a number is added to repeated names).
    pub fn add_ood(&mut self, dir: PathBuf) {
        if dir.as_os_str().is_empty()
            || self.settings.spec.data.evals.iter().any(|(_, d)| *d == dir)
        {
            return;
        }
        let base = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "ood".into());
        let taken = |name: &str| {
            ["train", "val", "test"].contains(&name)
                || self.settings.spec.data.evals.iter().any(|(n, _)| n == name)
        };
        let mut name = base.clone();
        let mut k = 2;
        while taken(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        self.settings.spec.data.evals.push((name, dir));
    }

    /// Scan the training folder on a worker thread (the Scan button; also after a drop).
    pub fn start_scan(&mut self, ctx: &egui::Context) {
        match crate::worker::scan(self.settings.spec.data.train.clone(), ctx.clone()) {
            Ok(rx) => {
                self.scan = None;
                self.jobs.scan_rx = Some(rx);
            }
            Err(e) => self.scan = Some(Err(format!("cannot start the scan thread: {e}"))),
        }
    }

    /// Classify `try_image` with the finished run's model at the current α.
    pub fn classify(&mut self) {
        if let Some(run) = &self.jobs.run {
            self.progress.classified = None;
            run.classify(self.results_view.try_image.clone(), self.results_view.alpha);
        }
    }

    /// Download `hub_id` from the Hub on a worker thread (the Download button); the model folder
    /// becomes the run's model when it is complete.
    pub fn start_download(&mut self, ctx: &egui::Context) {
        self.download = None;
        self.download_progress = None;
        match crate::worker::download(
            self.settings.hub_id.trim().to_string(),
            self.settings.hub_endpoint.clone(),
            ctx.clone(),
        ) {
            Ok(rx) => self.jobs.download_rx = Some(rx),
            Err(e) => self.download = Some(Err(format!("cannot start the download thread: {e}"))),
        }
    }

    /// Whether a download is running.
    pub fn is_downloading(&self) -> bool {
        self.jobs.download_rx.is_some()
    }

    /// Whether a scan is running.
    pub fn is_scanning(&self) -> bool {
        self.jobs.scan_rx.is_some()
    }

    /// Take what the workers sent since the last frame (never blocks).
    fn drain(&mut self, ctx: &egui::Context) {
        self.thumbs.receive(ctx);
        if let Some(rx) = &self.jobs.scan_rx
            && let Ok(result) = rx.try_recv()
        {
            self.scan = Some(result);
            self.jobs.scan_rx = None;
        }
        if let Some(rx) = &self.jobs.download_rx {
            while let Ok(fetch) = rx.try_recv() {
                match fetch {
                    crate::worker::Fetch::Progress(p) => self.download_progress = Some(p),
                    crate::worker::Fetch::Done(result) => {
                        if let Ok(dir) = &result {
                            self.settings.spec.model = dir.clone();
                            self.settings.spec.templates = "openai".into();
                        }
                        self.download = Some(result);
                    }
                }
            }
            if self.download.is_some() {
                self.jobs.download_rx = None;
            }
        }
        if let Some((run, progress)) = &mut self.jobs.next {
            while let Ok(event) = run.events.try_recv() {
                progress.apply(event);
            }
            let trains = !progress.steps.is_empty()
                || !progress.epochs.is_empty()
                || progress.probe.is_some()
                || progress.finished;
            if trains {
                if let Some((run, progress)) = self.jobs.next.take() {
                    self.promote(run, progress);
                }
            } else if let Some(line) = progress.outcome.clone() {
                // It ended before training (bad data, a refused run folder, stopped while
                // loading): say why; what was on screen stays.
                self.start_error = Some(line.trim_start_matches("error: ").to_string());
                if let Some((run, _)) = self.jobs.next.take() {
                    runs::end_on_its_own_thread(run);
                }
            }
        }
        let Some(run) = &self.jobs.run else { return };
        while let Ok(event) = run.events.try_recv() {
            self.progress.apply(event);
        }
        if !self.progress.finished {
            return;
        }
        // The slider's α first, then the whole curve (0, 0.1, …, 1) in the background, then
        // the embeddings along the same grid (for the embedding view's α).
        let grid: Vec<f64> = (0..=10).map(|k| k as f64 / 10.0).collect();
        let first = self.results_view.requested.is_empty();
        let wanted: Vec<f64> = if first {
            std::iter::once(self.results_view.alpha)
                .chain(grid.clone())
                .collect()
        } else if !self.results_view.alpha_dragging {
            vec![self.results_view.alpha]
        } else {
            Vec::new()
        };
        for alpha in wanted {
            if !self.results_view.requested.contains(&alpha) {
                run.wise(alpha);
                self.results_view.requested.push(alpha);
            }
        }
        if self.embed_view.requested.is_empty() {
            for alpha in grid.into_iter().filter(|a| *a != 0.0 && *a != 1.0) {
                run.embed(alpha);
                self.embed_view.requested.push(alpha);
            }
        }
    }

    /// Draw the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.drain(ui.ctx());
        self.lesson_step(ui.ctx());
        self.apply_zoom(ui.ctx());
        let dropped = ui.ctx().input(|i| i.raw.dropped_files.clone());
        if let Some(dir) = dropped
            .iter()
            .map(|f| f.path().to_path_buf())
            .find(|p| p.is_dir())
        {
            self.dropped_folder = Some(dir);
        }
        // A dropped file, once a run has finished: "try an image".
        if let Some(file) = dropped
            .iter()
            .map(|f| f.path().to_path_buf())
            .find(|p| p.is_file())
            && self.progress.finished
        {
            self.results_view.try_image = file;
            self.classify();
        }
        self.dropped_folder_question(ui.ctx());
        self.export_question(ui.ctx());
        self.lesson_window(ui.ctx());
        self.browser_window(ui.ctx());
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                let compute = if self.progress.device.is_empty() {
                    crate::compute::label(self.settings.compute, self.gpu.as_ref())
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
        // The settings take a third of a narrow window (900 px: 315), 360 px of a wider one.
        let settings_width = (ui.available_width() * 0.35).clamp(280.0, 360.0);
        egui::Panel::left("settings")
            .resizable(false)
            .exact_size(settings_width)
            .show(ui, |ui| {
                ui.heading("flyp-studio");
                ui.label("Fine-tune CLIP like you pretrain");
                // The run's controls stay in view above the scrolling settings.
                self.controls(ui);
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| self.settings(ui));
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                for (k, screen) in SCREENS.iter().enumerate() {
                    ui.selectable_value(&mut self.view, k, screen.name);
                }
            });
            ui.separator();
            if let Some(screen) = SCREENS.get(self.view) {
                (screen.show)(self, ui);
            }
        });
    }

    /// Keep egui's zoom and the "Zoom" setting one: a change by Ctrl + / − becomes the setting, a
    /// change of the setting becomes egui's.
    fn apply_zoom(&mut self, ctx: &egui::Context) {
        let now = ctx.zoom_factor();
        if (now - self.zoom_applied).abs() > 1e-4 {
            self.settings.zoom = now.clamp(*Settings::ZOOM.start(), *Settings::ZOOM.end());
        }
        if (self.settings.zoom - now).abs() > 1e-4 {
            ctx.set_zoom_factor(self.settings.zoom);
        }
        self.zoom_applied = self.settings.zoom;
    }

    /// Start with zoom factor `zoom` (`flyp-studio --scale`), whatever was kept.
    pub fn with_zoom(mut self, zoom: Option<f32>) -> Self {
        if let Some(zoom) = zoom {
            self.settings.zoom = zoom;
        }
        self
    }
}

/// A labelled path field as wide as the row allows, leaving `buttons` points for the buttons after
/// it, at most 200 (long paths scroll).
fn path_row(ui: &mut egui::Ui, label: &str, path: &mut PathBuf, buttons: f32) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        let mut text = path.display().to_string();
        let width = (ui.available_width() - buttons).clamp(80.0, 200.0);
        if ui
            .add(egui::TextEdit::singleline(&mut text).desired_width(width))
            .labelled_by(label.id)
            .changed()
        {
            *path = PathBuf::from(text);
        }
    })
    .response
}

impl eframe::App for Studio {
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.save(storage);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
