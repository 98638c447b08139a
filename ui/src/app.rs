//! The application state and its screens: the run settings on the left; training curves,
//! embeddings and results in the middle; the devices in the status bar.

use std::path::{Path, PathBuf};

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use flyp::train::engine::{EpochReport, StepProgress};

use crate::compute::WindowGpu;
use crate::thumbs::Thumbnails;
use crate::worker::{Embeddings, Event, METHODS, Run, RunSpec, method_label, method_tooltip};
use flyp::DeviceChoice;
use flyp::methods::recipe::Recipe;
use flyp::report::projection::{Pca, center_groups};
use flyp::train::Metrics;

/// A bundled file of the flyp checkout this app was built from.
pub fn bundled(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// An answer to "try an image": the file, the α, and the top classes (class, probability,
/// similarity), most probable first.
pub type Classified = (PathBuf, f64, Vec<(String, f64, f64)>);

/// What a run has reported so far.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub device: String,
    pub classes: Vec<String>,
    pub sets: Vec<String>,
    /// Each evaluation set's images (path, true class), in the order of `sets`.
    pub samples: Vec<Vec<(PathBuf, usize)>>,
    pub train_images: usize,
    /// The linear probe's L2 strength and metrics (LP, LP-FT).
    pub probe: Option<(f64, Vec<(String, Metrics)>)>,
    pub steps: Vec<StepProgress>,
    pub epochs: Vec<EpochReport>,
    pub embeddings: Option<Embeddings>,
    /// The last export's outcome.
    pub exported: Option<Result<PathBuf, String>>,
    /// "Try an image": the last answer (path, α, top classes) or the error line.
    pub classified: Option<Result<Classified, String>>,
    /// WiSE-FT evaluations received, in arrival order.
    pub wise: Vec<WisePoint>,
    /// Training ended well (the WiSE-FT slider works).
    pub finished: bool,
    /// The last line: finished, stopped, or the error.
    pub outcome: Option<String>,
    pub failed: bool,
}

impl Progress {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Started {
                device,
                classes,
                sets,
                samples,
                train_images,
            } => {
                self.device = device;
                self.classes = classes;
                self.sets = sets;
                self.samples = samples;
                self.train_images = train_images;
            }
            Event::Probed { l2, sets } => self.probe = Some((l2, sets)),
            Event::Step(p) => self.steps.push(p),
            Event::Epoch(r) => self.epochs.push(r),
            Event::Embeddings(e) => self.embeddings = Some(e),
            Event::EmbeddedAt { alpha, rows } => {
                if let Some(e) = &mut self.embeddings {
                    e.insert(alpha, rows);
                }
            }
            Event::Classified { path, alpha, top } => {
                self.classified = Some(Ok((path, alpha, top)))
            }
            Event::ImageFailed(line) => self.classified = Some(Err(line)),
            Event::Exported(result) => self.exported = Some(result),
            Event::Wise {
                alpha,
                sets,
                predicted,
            } => {
                self.wise.retain(|w| w.alpha != alpha);
                self.wise.push(WisePoint {
                    alpha,
                    sets,
                    predicted,
                });
            }
            Event::Finished {
                best_epoch,
                seconds,
            } => {
                self.finished = true;
                self.outcome = Some(format!(
                    "finished in {seconds:.0} s; best epoch {best_epoch} by validation top-1"
                ))
            }
            Event::Stopped(line) => self.outcome = Some(line),
            Event::Failed(line) => {
                self.outcome = Some(format!("error: {line}"));
                self.failed = true;
            }
        }
    }

    /// The WiSE-FT points received so far as (α, ID top-1 %, mean OOD top-1 %), by α.
    pub fn id_ood_curve(&self) -> Vec<(f64, f64, f64)> {
        let mut curve: Vec<(f64, f64, f64)> = self
            .wise
            .iter()
            .filter_map(|w| w.id_ood().map(|(id, ood)| (w.alpha, id, ood)))
            .collect();
        curve.sort_by(|a, b| a.0.total_cmp(&b.0));
        curve
    }

    /// "epoch 2/10 · step 14/70 · 31 images/s · ETA 12 s"
    pub fn status_line(&self, epochs: usize) -> String {
        match self.steps.last() {
            Some(p) => format!(
                "epoch {}/{epochs} · step {}/{} · {:.0} images/s · ETA {:.0} s",
                p.epoch, p.step, p.total, p.images_per_s, p.eta_s
            ),
            None if self.device.is_empty() => "loading the data and the model…".into(),
            None if self.finished => "no training steps (this method trains no weights)".into(),
            None => format!("{} training images; first step…", self.train_images),
        }
    }
}

/// WiSE-FT at one α: every set's metrics and each image's predicted class.
#[derive(Debug, Clone)]
pub struct WisePoint {
    pub alpha: f64,
    pub sets: Vec<(String, Metrics)>,
    pub predicted: Vec<Vec<usize>>,
}

impl WisePoint {
    /// (ID top-1, mean OOD top-1) in %: ID is the test set (else validation), OOD every other
    /// named set.
    pub fn id_ood(&self) -> Option<(f64, f64)> {
        let top1 = |name: &str| {
            self.sets
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, m)| m.top1)
        };
        let id = top1("test").or_else(|| top1("val"))?;
        let ood: Vec<f64> = self
            .sets
            .iter()
            .filter(|(n, _)| n != "val" && n != "test")
            .map(|(_, m)| m.top1)
            .collect();
        (!ood.is_empty()).then(|| {
            (
                100.0 * id,
                100.0 * ood.iter().sum::<f64>() / ood.len() as f64,
            )
        })
    }
}

/// A finished run of this session, for the ID-vs-OOD scatter: its method and its WiSE-FT curve
/// (α, ID top-1 %, OOD top-1 %).
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub label: String,
    pub curve: Vec<(f64, f64, f64)>,
}

/// The app: settings, the current run and what it reported.
pub struct Studio {
    /// The GPU adapter eframe draws with, e.g. "llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan)".
    pub adapter: Option<String>,
    /// The window's wgpu device, which training can share.
    pub gpu: Option<WindowGpu>,
    /// Where to train ("Compute" in the settings).
    pub compute: DeviceChoice,
    /// The run's settings; `spec.evals` are the OOD sets (name, folder).
    pub spec: RunSpec,
    /// The OOD folder being typed, before "Add".
    pub new_ood: PathBuf,
    /// A folder dropped on the window, waiting for the user to say what it is.
    pub dropped_folder: Option<PathBuf>,
    /// The open folder picker.
    pub browser: Option<Browser>,
    pub run: Option<Run>,
    /// Earlier finished runs of this session (for the ID-vs-OOD scatter).
    pub history: Vec<FinishedRun>,
    pub progress: Progress,
    pub view: View,
    /// Embedding view: remove each modality's mean (hides the modality gap).
    pub center_modalities: bool,
    /// Embedding view: the WiSE-FT α whose embeddings are shown (0 = before fine-tuning, 1 = after).
    pub embed_alpha: f64,
    /// Embedding view: α is playing from 0 to 1.
    pub playing: bool,
    /// Embedding view: the image row under the pointer, and each image's place on screen.
    pub hovered: Option<usize>,
    pub embed_points: Vec<egui::Pos2>,
    /// Results: the confusion cell (set, true class, predicted class) whose images are shown.
    pub open_cell: Option<(usize, usize, usize)>,
    pub thumbs: Thumbnails,
    /// WiSE-FT α of the Results view (0 = the starting weights, 1 = the fine-tuned ones).
    pub alpha: f64,
    /// α values asked of the worker (each is evaluated once, in order), and embedded.
    requested: Vec<f64>,
    embed_requested: Vec<f64>,
    /// The α slider is being dragged: ask only when it is let go.
    alpha_dragging: bool,
    /// Where "Export" writes (`model/` at the current α and `results.json`).
    pub export_dir: PathBuf,
    /// "Try an image": the image to classify with the finished run's model at the current α.
    pub try_image: PathBuf,
    /// "Hub model id" and its download: the last progress, then the outcome.
    pub hub_id: String,
    /// The Hub's address (`HF_ENDPOINT`, else huggingface.co).
    pub hub_endpoint: String,
    pub download: Option<Result<PathBuf, String>>,
    pub download_progress: Option<flyp::hub::Progress>,
    download_rx: Option<std::sync::mpsc::Receiver<crate::worker::Fetch>>,
    /// The training folder's scan report (or the error), and a scan in flight.
    pub scan: Option<Result<flyp::data::Scan, String>>,
    scan_rx: Option<std::sync::mpsc::Receiver<Result<flyp::data::Scan, String>>>,
    /// Embedding view: PCA or t-SNE.
    pub projection: Projection,
    /// The projected frames and what they were made from (centring, number of frames, method),
    /// and a t-SNE being fitted.
    projected: Option<(ProjectionKey, Projected)>,
    tsne_rx: Option<(ProjectionKey, std::sync::mpsc::Receiver<Option<Projected>>)>,
}

/// What a chosen folder becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRole {
    Train,
    Ood,
    Model,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Principal components of the starting model's embeddings, applied to every α.
    Pca,
    /// One t-SNE of every α's embeddings together (fitted on a worker thread).
    Tsne,
}

/// The central panel's screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Training,
    Embeddings,
    Results,
}

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
            compute: DeviceChoice::Auto,
            spec: RunSpec {
                method: Recipe::Flyp {
                    mask_collisions: false,
                },
                model: bundled("assets/demo-model"),
                train: bundled("assets/emoji-subset/twemoji"),
                evals: vec![("noto".into(), bundled("assets/emoji-subset/noto"))],
                epochs: 10,
                batch: 32,
                lr: 1e-4,
                wd: 0.1,
                seed: 0,
                templates: "emoji".into(),
                out: None,
                resume: false,
            },
            new_ood: PathBuf::new(),
            dropped_folder: None,
            browser: None,
            run: None,
            history: Vec::new(),
            progress: Progress::default(),
            view: View::Training,
            center_modalities: false,
            embed_alpha: 1.0,
            playing: false,
            hovered: None,
            embed_points: Vec::new(),
            open_cell: None,
            thumbs: Thumbnails::new(&cc.egui_ctx),
            alpha: 1.0,
            requested: Vec::new(),
            embed_requested: Vec::new(),
            alpha_dragging: false,
            hub_id: String::new(),
            hub_endpoint: flyp::hub::default_endpoint(),
            download: None,
            download_progress: None,
            download_rx: None,
            scan: None,
            scan_rx: None,
            try_image: PathBuf::new(),
            export_dir: PathBuf::from("flyp-studio-export"),
            projection: Projection::Pca,
            projected: None,
            tsne_rx: None,
        }
    }

    /// A run is training (its worker stays to answer WiSE-FT requests afterwards).
    pub fn is_running(&self) -> bool {
        self.run.is_some() && self.progress.outcome.is_none()
    }

    /// The running run is held between steps.
    pub fn is_paused(&self) -> bool {
        self.is_running() && self.run.as_ref().is_some_and(Run::is_paused)
    }

    /// Start a run with the current settings (the Start button), on the device "Compute" names.
    pub fn start(&mut self, ctx: &egui::Context) {
        self.remember_finished_run();
        // The previous run's worker may be answering a request: let it end on its own thread
        // (dropping a run joins its worker) so this frame does not wait for it.
        if let Some(old) = self.run.take() {
            old.stop();
            let _ = std::thread::Builder::new()
                .name("flyp-cleanup".into())
                .spawn(move || drop(old));
        }
        self.progress = Progress::default();
        self.projected = None;
        self.requested.clear();
        self.embed_requested.clear();
        self.open_cell = None;
        self.hovered = None;
        let device = match crate::compute::resolve(self.compute, self.gpu.as_mut()) {
            Ok(device) => device,
            Err(e) => return self.fail(e.to_string()),
        };
        match Run::start(self.spec.clone(), device, ctx.clone()) {
            Ok(run) => self.run = Some(run),
            Err(e) => self.fail(format!("cannot start the worker thread: {e}")),
        }
    }

    fn fail(&mut self, line: String) {
        self.progress.outcome = Some(format!("error: {line}"));
        self.progress.failed = true;
    }

    /// Keep the finished run's WiSE-FT curve for the ID-vs-OOD scatter of later runs.
    fn remember_finished_run(&mut self) {
        let curve = self.progress.id_ood_curve();
        if self.progress.finished && !curve.is_empty() {
            let label = format!(
                "run {}: {}",
                self.history.len() + 1,
                method_label(self.spec.method)
            );
            self.history.push(FinishedRun { label, curve });
        }
    }

    /// Add an OOD set (named after its folder; a number is added to repeated names).
    pub fn add_ood(&mut self, dir: PathBuf) {
        if dir.as_os_str().is_empty() || self.spec.evals.iter().any(|(_, d)| *d == dir) {
            return;
        }
        let base = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "ood".into());
        let taken = |name: &str| {
            ["train", "val", "test"].contains(&name)
                || self.spec.evals.iter().any(|(n, _)| n == name)
        };
        let mut name = base.clone();
        let mut k = 2;
        while taken(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        self.spec.evals.push((name, dir));
    }

    /// Scan the training folder on a worker thread (the Scan button; also after a drop).
    pub fn start_scan(&mut self, ctx: &egui::Context) {
        match crate::worker::scan(self.spec.train.clone(), ctx.clone()) {
            Ok(rx) => {
                self.scan = None;
                self.scan_rx = Some(rx);
            }
            Err(e) => self.scan = Some(Err(format!("cannot start the scan thread: {e}"))),
        }
    }

    /// Classify `try_image` with the finished run's model at the current α.
    pub fn classify(&mut self) {
        if let Some(run) = &self.run {
            self.progress.classified = None;
            run.classify(self.try_image.clone(), self.alpha);
        }
    }

    /// Export the finished run: `export_dir/results.json` now (epochs, WiSE-FT points so far) and
    /// `export_dir/model/` at the current α on the worker.
    pub fn export(&mut self) {
        let Some(run) = &self.run else { return };
        self.progress.exported = None;
        let p = &self.progress;
        let results = serde_json::json!({
            "schema": 1,
            "method": self.spec.method.name(),
            "model": self.spec.model, "train": self.spec.train,
            "evals": self.spec.evals,
            "device": p.device,
            "classes": p.classes,
            "alpha": self.alpha,
            "probe": p.probe.as_ref().map(|(l2, sets)| serde_json::json!({"l2": l2, "sets": sets})),
            "epochs": p.epochs,
            "wise": p.wise.iter().map(|w| serde_json::json!({"alpha": w.alpha, "sets": w.sets})).collect::<Vec<_>>(),
        });
        let written = std::fs::create_dir_all(&self.export_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| serde_json::to_vec_pretty(&results).map_err(|e| e.to_string()))
            .and_then(|bytes| {
                flyp::model::weights::write_atomic(&self.export_dir.join("results.json"), &bytes)
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => run.export(self.export_dir.join("model"), self.alpha),
            Err(e) => {
                self.progress.exported = Some(Err(format!("{}: {e}", self.export_dir.display())))
            }
        }
    }

    /// Download `hub_id` from the Hub on a worker thread (the Download button); the model folder
    /// becomes the run's model when it is complete.
    pub fn start_download(&mut self, ctx: &egui::Context) {
        self.download = None;
        self.download_progress = None;
        match crate::worker::download(
            self.hub_id.trim().to_string(),
            self.hub_endpoint.clone(),
            ctx.clone(),
        ) {
            Ok(rx) => self.download_rx = Some(rx),
            Err(e) => self.download = Some(Err(format!("cannot start the download thread: {e}"))),
        }
    }

    /// Whether a download is running.
    pub fn is_downloading(&self) -> bool {
        self.download_rx.is_some()
    }

    /// Whether a scan is running.
    pub fn is_scanning(&self) -> bool {
        self.scan_rx.is_some()
    }

    /// Take what the workers sent since the last frame (never blocks).
    fn drain(&mut self, ctx: &egui::Context) {
        self.thumbs.receive(ctx);
        if let Some(rx) = &self.scan_rx
            && let Ok(result) = rx.try_recv()
        {
            self.scan = Some(result);
            self.scan_rx = None;
        }
        if let Some(rx) = &self.download_rx {
            while let Ok(fetch) = rx.try_recv() {
                match fetch {
                    crate::worker::Fetch::Progress(p) => self.download_progress = Some(p),
                    crate::worker::Fetch::Done(result) => {
                        if let Ok(dir) = &result {
                            self.spec.model = dir.clone();
                            self.spec.templates = "openai".into();
                        }
                        self.download = Some(result);
                    }
                }
            }
            if self.download.is_some() {
                self.download_rx = None;
            }
        }
        let Some(run) = &self.run else { return };
        while let Ok(event) = run.events.try_recv() {
            self.progress.apply(event);
        }
        if !self.progress.finished {
            return;
        }
        // The slider's α first, then the whole curve (0, 0.1, …, 1) in the background, then
        // the embeddings along the same grid (for the embedding view's α).
        let grid: Vec<f64> = (0..=10).map(|k| k as f64 / 10.0).collect();
        let first = self.requested.is_empty();
        let wanted: Vec<f64> = if first {
            std::iter::once(self.alpha).chain(grid.clone()).collect()
        } else if !self.alpha_dragging {
            vec![self.alpha]
        } else {
            Vec::new()
        };
        for alpha in wanted {
            if !self.requested.contains(&alpha) {
                run.wise(alpha);
                self.requested.push(alpha);
            }
        }
        if self.embed_requested.is_empty() {
            for alpha in grid.into_iter().filter(|a| *a != 0.0 && *a != 1.0) {
                run.embed(alpha);
                self.embed_requested.push(alpha);
            }
        }
    }

    /// Draw the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.drain(ui.ctx());
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
            self.try_image = file;
            self.classify();
        }
        self.dropped_folder_question(ui.ctx());
        self.browser_window(ui.ctx());
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                let compute = if self.progress.device.is_empty() {
                    crate::compute::label(self.compute, self.gpu.as_ref())
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
        egui::Panel::left("settings")
            .resizable(false)
            .exact_size(360.0)
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
                ui.selectable_value(&mut self.view, View::Training, "Training");
                ui.selectable_value(&mut self.view, View::Embeddings, "Embeddings");
                ui.selectable_value(&mut self.view, View::Results, "Results");
            });
            ui.separator();
            match self.view {
                View::Training => self.curves(ui),
                View::Embeddings => self.embedding_view(ui),
                View::Results => self.results_view(ui),
            }
        });
    }

    /// The method of the projection the embedding view shows now (`None` before the first).
    pub fn shown_projection(&self) -> Option<Projection> {
        self.projected.as_ref().map(|p| p.0.2)
    }

    /// Take a finished t-SNE, or start one for `key` on the thread "flyp-tsne" (one at a time).
    fn fit_tsne(&mut self, e: &Embeddings, key: ProjectionKey, ctx: &egui::Context) {
        if let Some((asked, rx)) = &self.tsne_rx {
            match rx.try_recv() {
                Ok(result) => {
                    let asked = *asked;
                    self.tsne_rx = None;
                    if let Some(frames) = result {
                        self.projected = Some((asked, frames));
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.tsne_rx = None,
            }
        }
        if self.projected.as_ref().is_some_and(|p| p.0 == key) || self.tsne_rx.is_some() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (e, center, ctx) = (e.clone(), key.0, ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("flyp-tsne".into())
            .spawn(move || {
                let _ = tx.send(project_tsne(&e, center));
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.tsne_rx = Some((key, rx));
        }
    }

    /// Use `dir` as the training set (and scan it), an OOD set, or the model.
    pub fn use_folder(&mut self, role: FolderRole, dir: PathBuf, ctx: &egui::Context) {
        match role {
            FolderRole::Train => {
                self.spec.train = dir;
                self.start_scan(ctx);
            }
            FolderRole::Ood => self.add_ood(dir),
            FolderRole::Model => self.spec.model = dir,
        }
    }

    /// The folder picker's window.
    fn browser_window(&mut self, ctx: &egui::Context) {
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

    /// A folder was dropped: ask whether it is the training set or an OOD set.
    fn dropped_folder_question(&mut self, ctx: &egui::Context) {
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

    /// The finished run: the table at the slider's α, the ID-vs-OOD scatter, accuracy along α,
    /// the confusion matrices (a cell shows its images), try an image, export.
    fn results_view(&mut self, ui: &mut egui::Ui) {
        if !self.progress.finished {
            ui.label("Results appear here when a run has finished.");
            return;
        }
        egui::ScrollArea::vertical().show(ui, |ui| self.results(ui));
    }

    fn results(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui
                .label("WiSE-FT α")
                .on_hover_text("θ(α) = (1 - α)·θ_start + α·θ_fine-tuned, every weight: 0 = the starting model, 1 = the fine-tuned one");
            let slider = ui
                .add(egui::Slider::new(&mut self.alpha, 0.0..=1.0).step_by(0.05))
                .labelled_by(label.id);
            self.alpha_dragging = slider.dragged();
        });
        let alpha_now = self.alpha;
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
                ui.label(format!("evaluating α = {:.2}…", self.alpha));
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
            path_row(ui, "Try an image", &mut self.try_image).on_hover_text(
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
                            ui.strong("similarity");
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
            path_row(ui, "Export to", &mut self.export_dir)
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
                                        self.open_cell = Some((set, t, q));
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
        let Some((set, t, q)) = self.open_cell else {
            return;
        };
        let images = cell_paths(&self.progress, w, set, t, q);
        let class = |k: usize| self.progress.classes.get(k).cloned().unwrap_or_default();
        let set_name = self.progress.sets.get(set).cloned().unwrap_or_default();
        let title = format!(
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
            self.open_cell = None;
        }
    }

    /// This run's WiSE-FT curve and earlier runs' curves: mean OOD top-1 against ID top-1.
    fn id_ood_scatter(&self, ui: &mut egui::Ui) {
        let current = self.progress.id_ood_curve();
        if current.is_empty() {
            ui.label("Needs a test set and an OOD set.");
            return;
        }
        let label = format!("this run: {}", method_label(self.spec.method));
        let alpha = self.alpha;
        Plot::new("id-ood")
            .height(260.0)
            // Curves run from lower left to upper right: the upper left stays free.
            .legend(Legend::default().position(egui_plot::Corner::LeftTop))
            .x_axis_label("ID (test) top-1 (%)")
            .y_axis_label("OOD top-1 (%)")
            .show(ui, |plot| {
                let runs = self.history.iter().map(|r| (r.label.clone(), &r.curve));
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
            .legend(Legend::default())
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
                plot.vline(egui_plot::VLine::new("α", self.alpha));
            });
    }

    /// Image embeddings (colour = class; marker = set) and class prompts (labelled stars) in one
    /// 2-D PCA fitted once on the starting model's embeddings and reused for every α; α plays
    /// from the starting model (0) to the fine-tuned one (1); hovering an image shows it.
    fn embedding_view(&mut self, ui: &mut egui::Ui) {
        let Some(e) = self.progress.embeddings.clone() else {
            ui.label("The embeddings appear here when a run has finished.");
            return;
        };
        ui.horizontal(|ui| {
            let label = ui.label("Projection");
            egui::ComboBox::from_id_salt("projection")
                .selected_text(match self.projection {
                    Projection::Pca => "PCA",
                    Projection::Tsne => "t-SNE",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.projection, Projection::Pca, "PCA")
                        .on_hover_text("Linear: the two directions of largest spread of the starting model's embeddings, kept for every α");
                    ui.selectable_value(&mut self.projection, Projection::Tsne, "t-SNE")
                        .on_hover_text("Non-linear: keeps neighbours together; fitted once on every α's embeddings at once");
                })
                .response
                .labelled_by(label.id);
            ui.checkbox(&mut self.center_modalities, "Center each modality")
                .on_hover_text("Subtract the mean image and the mean prompt: hides the gap between the two modalities");
            let label = ui
                .label("WiSE-FT α (0 = before, 1 = after fine-tuning)")
                .on_hover_text("The embeddings of the model at this α; between computed α values, positions are blended");
            ui.add(egui::Slider::new(&mut self.embed_alpha, 0.0..=1.0))
                .labelled_by(label.id);
            let play = if self.playing { "Stop playing" } else { "Play" };
            if ui
                .button(play)
                .on_hover_text("Move α from 0 to 1 over four seconds")
                .clicked()
            {
                if !self.playing && self.embed_alpha >= 1.0 {
                    self.embed_alpha = 0.0;
                }
                self.playing = !self.playing;
            }
        });
        if self.playing {
            let dt = ui.ctx().input(|i| i.stable_dt).min(0.1) as f64;
            self.embed_alpha = (self.embed_alpha + dt / 4.0).min(1.0);
            self.playing = self.embed_alpha < 1.0;
            ui.ctx().request_repaint();
        }
        let key = (self.center_modalities, e.frames.len(), self.projection);
        if self.projected.as_ref().is_none_or(|p| p.0 != key) {
            match self.projection {
                Projection::Pca => {
                    self.projected = project(&e, self.center_modalities).map(|p| (key, p));
                }
                Projection::Tsne => self.fit_tsne(&e, key, ui.ctx()),
            }
        }
        if self.tsne_rx.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("fitting t-SNE on every α's embeddings…");
            });
        }
        let Some((shown, frames)) = &self.projected else {
            ui.label("No embeddings to show.");
            return;
        };
        if shown.2 != self.projection {
            return;
        }
        let positions = positions_at(frames, self.embed_alpha);
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
        let response = Plot::new("embeddings")
            .legend(Legend::default())
            .data_aspect(1.0)
            .x_axis_label("component 1")
            .y_axis_label("component 2")
            .show(ui, |plot| {
                for (class, name) in e.classes.iter().enumerate() {
                    for set in &sets {
                        let points: PlotPoints = (0..n)
                            .filter(|&i| e.images[i].0 == class && e.images[i].1 == *set)
                            .map(|i| positions[i])
                            .collect();
                        let (shape, filled) = marker(set);
                        // One legend entry per class: its images, prompt and label share the name.
                        plot.points(
                            egui_plot::Points::new(name.clone(), points)
                                .color(class_colour(class))
                                .shape(shape)
                                .filled(filled)
                                .radius(3.0),
                        );
                    }
                    let star = positions[n + class];
                    plot.points(
                        egui_plot::Points::new(name.clone(), vec![star])
                            .color(class_colour(class))
                            .shape(egui_plot::MarkerShape::Asterisk)
                            .radius(9.0),
                    );
                    plot.text(
                        egui_plot::Text::new(
                            name.clone(),
                            egui_plot::PlotPoint::new(star[0], star[1]),
                            egui::RichText::new(format!("   {name}")).strong(),
                        )
                        .color(class_colour(class)),
                    );
                }
            });
        // Where each image is on screen; the one under the pointer (within 8 points) is shown.
        self.embed_points = (0..n)
            .map(|i| {
                let [x, y] = positions[i];
                response
                    .transform
                    .position_from_point(&egui_plot::PlotPoint::new(x, y))
            })
            .collect();
        self.hovered = response.response.hover_pos().and_then(|pointer| {
            self.embed_points
                .iter()
                .enumerate()
                .map(|(i, at)| (i, at.distance(pointer)))
                .filter(|(_, d)| *d < 8.0)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        });
        if let Some(i) = self.hovered {
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

    fn settings(&mut self, ui: &mut egui::Ui) {
        let running = self.is_running();
        ui.add_enabled_ui(!running, |ui| {
            ui.strong("Data");
            ui.horizontal(|ui| {
                path_row(ui, "Training set", &mut self.spec.train)
                    .on_hover_text("A folder of class folders, or train/val/test folders: drop one on the window");
                if ui.button("Browse…").clicked() {
                    let start = self.spec.train.clone();
                    self.browse(FolderRole::Train, &start);
                }
            });
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
            for (k, (name, dir)) in self.spec.evals.iter().enumerate() {
                ui.horizontal(|ui| {
                    if ui.small_button("Remove").clicked() {
                        remove = Some(k);
                    }
                    ui.add(egui::Label::new(format!("{name}: {}", dir.display())).truncate())
                        .on_hover_text(dir.display().to_string());
                });
            }
            if let Some(k) = remove {
                self.spec.evals.remove(k);
            }
            ui.horizontal(|ui| {
                let mut path = std::mem::take(&mut self.new_ood);
                path_row(ui, "OOD folder", &mut path)
                    .on_hover_text("Another folder of the same class folders (or drop one on the window)");
                if ui.button("Add").clicked() {
                    self.add_ood(std::mem::take(&mut path));
                }
                if ui.button("Browse…").clicked() {
                    self.browse(FolderRole::Ood, &self.spec.train.clone());
                }
                self.new_ood = path;
            });
            if ui.button("Use the bundled demo data").clicked() {
                self.spec.train = bundled("assets/emoji-subset/twemoji");
                self.spec.evals = vec![("noto".into(), bundled("assets/emoji-subset/noto"))];
                self.spec.model = bundled("assets/demo-model");
                self.spec.templates = "emoji".into();
                self.start_scan(ui.ctx());
            }
            ui.separator();
            ui.strong("Model");
            ui.horizontal(|ui| {
                path_row(ui, "CLIP folder", &mut self.spec.model)
                    .on_hover_text("A Hugging Face CLIP folder (config.json + model.safetensors): drop one on the window");
                if ui.button("Browse…").clicked() {
                    let start = self.spec.model.clone();
                    self.browse(FolderRole::Model, &start);
                }
            });
            if ui
                .button("Use the bundled demo model")
                .on_hover_text("A 4-million-parameter CLIP this project pretrained on emoji captions")
                .clicked()
            {
                self.spec.model = bundled("assets/demo-model");
                self.spec.templates = "emoji".into();
            }
            self.hub_row(ui);
            ui.horizontal(|ui| {
                let label = ui.label("Prompts").on_hover_text(
                    "The templates that turn a class name into captions: openai (CLIP's 80 ImageNet templates), simple (\"a photo of a {}.\"), emoji (the demo model's)",
                );
                egui::ComboBox::from_id_salt("templates")
                    .selected_text(self.spec.templates.clone())
                    .show_ui(ui, |ui| {
                        for t in ["openai", "simple", "emoji"] {
                            ui.selectable_value(&mut self.spec.templates, t.to_string(), t);
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
            ui.separator();
            let label = ui.strong("Method");
            egui::ComboBox::from_id_salt("method")
                .selected_text(method_label(self.spec.method))
                .show_ui(ui, |ui| {
                    for m in METHODS {
                        ui.selectable_value(&mut self.spec.method, m, method_label(m))
                            .on_hover_text(method_tooltip(m));
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(method_tooltip(self.spec.method));
            egui::Grid::new("hyper").num_columns(2).show(ui, |ui| {
                let label = ui.label("Epochs").on_hover_text("Passes over the training set");
                ui.add(egui::DragValue::new(&mut self.spec.epochs).range(1..=1000)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Batch").on_hover_text("Images per step (FLYP's default: 256)");
                ui.add(egui::DragValue::new(&mut self.spec.batch).range(1..=4096)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Learning rate")
                    .on_hover_text("AdamW peak rate after warmup; cosine decay (FLYP's default for CLIP ViT-B: 1e-5)");
                ui.add(egui::DragValue::new(&mut self.spec.lr).speed(1e-6).range(1e-8..=1.0)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Weight decay").on_hover_text("Decoupled (AdamW), FLYP's default 0.1");
                ui.add(egui::DragValue::new(&mut self.spec.wd).speed(0.01).range(0.0..=10.0)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut self.spec.seed)).labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Compute").on_hover_text(
                    "Auto: the window's GPU when it is a hardware GPU (shared with the window, no second device), else the CPU backend",
                );
                egui::ComboBox::from_id_salt("compute")
                    .selected_text(crate::compute::label(self.compute, self.gpu.as_ref()))
                    .show_ui(ui, |ui| {
                        for choice in [DeviceChoice::Auto, DeviceChoice::Gpu, DeviceChoice::Cpu] {
                            let text = crate::compute::label(choice, self.gpu.as_ref());
                            ui.selectable_value(&mut self.compute, choice, text);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
            });
        });
    }

    /// Start, Pause / Resume, Stop.
    fn controls(&mut self, ui: &mut egui::Ui) {
        let running = self.is_running();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!running, egui::Button::new("Start"))
                .clicked()
            {
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
                && let Some(run) = &self.run
            {
                run.pause(!paused);
            }
            if ui
                .add_enabled(running, egui::Button::new("Stop"))
                .on_hover_text("End the run after its current step")
                .clicked()
                && let Some(run) = &self.run
            {
                run.stop();
            }
        });
    }

    /// "Hub model id" with Download, a progress bar while it runs, and its outcome.
    fn hub_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Hub model id");
            ui.add(
                egui::TextEdit::singleline(&mut self.hub_id)
                    .hint_text("openai/clip-vit-base-patch32")
                    .desired_width(160.0),
            )
            .labelled_by(label.id);
            let ready = flyp::hub::is_model_id(self.hub_id.trim()) && !self.is_downloading();
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

    fn curves(&mut self, ui: &mut egui::Ui) {
        let p = &self.progress;
        if self.run.is_none() && p.outcome.is_none() {
            ui.label("Choose a dataset and a model, then Start.");
            return;
        }
        let paused = if self.is_paused() { " · paused" } else { "" };
        ui.label(format!("{}{paused}", p.status_line(self.spec.epochs)));
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

/// 2-D positions of every row of [`Embeddings`] for each computed α: (α, positions).
pub type Projected = Vec<(f64, Vec<[f64; 2]>)>;

/// What a projection was made from: (centred per modality, number of α frames, method).
type ProjectionKey = (bool, usize, Projection);

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
    let xy = flyp::report::projection::tsne(&rows, 30.0, 500);
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
    ui.strong(format!("{set}: rows true, columns predicted"));
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

/// A label and an editable path.
fn path_row(ui: &mut egui::Ui, label: &str, path: &mut PathBuf) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        let mut text = path.display().to_string();
        // Narrow enough for a button beside it in the settings panel; long paths scroll.
        if ui
            .add(egui::TextEdit::singleline(&mut text).desired_width(160.0))
            .labelled_by(label.id)
            .changed()
        {
            *path = PathBuf::from(text);
        }
    })
    .response
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
