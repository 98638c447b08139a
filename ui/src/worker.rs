//! The training worker: one named thread per run, running the library's training loop (the
//! same code as `flyp train`), talking to the UI over a channel and waking it with
//! `request_repaint`. No frame ever waits on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui;
use flyp::data::prompts::Templates;
use flyp::methods::head::ClassHead;
use flyp::methods::recipe::RunHooks;
use flyp::methods::wise_ft::WiseFt;
use flyp::methods::zeroshot::{evaluate, image_and_prompt_embeddings};
use flyp::train::Metrics;
use flyp::train::engine::{EpochReport, Hooks, StepProgress, TrainData};
use flyp::{Clip, ComputeDevice};

pub use flyp::methods::recipe::RunSpec;

/// What the worker tells the UI.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        device: String,
        classes: Vec<String>,
        /// The evaluation sets' names and their images (path, true class), in the same order.
        sets: Vec<String>,
        samples: Vec<Vec<(PathBuf, usize)>>,
        train_images: usize,
        /// The run's epochs (its settings may change on screen while it runs).
        epochs: usize,
    },
    /// The linear probe (LP, and LP-FT's first stage): its L2 strength and every set's metrics.
    Probed {
        l2: f64,
        sets: Vec<(String, Metrics)>,
    },
    /// Every set's metrics of the model before training (zero-shot): epoch 0 of the curves.
    Before(Vec<(String, Metrics)>),
    Step(StepProgress),
    Epoch(EpochReport),
    /// Image and class-prompt embeddings of the starting and the final model (sent at the end).
    Embeddings(Embeddings),
    /// The embeddings of the model at WiSE-FT `alpha` (asked with [`Run::embed`]).
    EmbeddedAt {
        alpha: f64,
        rows: Vec<Vec<f32>>,
    },
    Finished {
        /// The epoch kept (0 when the method trains no weights).
        best_epoch: usize,
        seconds: f64,
        /// What the run measured (the CLI's results.json).
        results: Box<flyp::train::RunResults>,
        /// Stopped by the user at (epoch, step): the best finished epoch is what is explored.
        stopped: Option<(usize, usize)>,
    },
    /// The top classes of one image (asked with [`Run::classify`]) at WiSE-FT's `alpha`:
    /// (class, probability, logit), best first.
    Classified {
        path: PathBuf,
        alpha: f64,
        top: Vec<(String, f64, f64)>,
    },
    /// The model at WiSE-FT α was written to this HF folder (asked with [`Run::export`]), or why not.
    Exported(Result<PathBuf, String>),
    /// A request about one image failed (the run itself is fine): the one-line reason.
    ImageFailed(String),
    /// WiSE-FT at `alpha` (asked with [`Run::wise`]): every evaluation set's metrics and each
    /// image's predicted class.
    Wise {
        alpha: f64,
        sets: Vec<(String, Metrics)>,
        predicted: Vec<Vec<usize>>,
    },
    /// Stopped by the user before any epoch finished (nothing to explore); a run folder keeps
    /// what it had.
    Stopped(String),
    /// The one-line error.
    Failed(String),
}

/// Embeddings of the test and OOD images and of the class prompts: rows `0..images.len()` are
/// images, the rest one prompt per class; one set of rows per WiSE-FT α computed so far
/// (α = 0: the starting model, α = 1: the fine-tuned one).
#[derive(Debug, Clone, Default)]
pub struct Embeddings {
    /// (class, set name) of each image row.
    pub images: Vec<(usize, String)>,
    pub paths: Vec<PathBuf>,
    pub classes: Vec<String>,
    /// (α, rows), sorted by α.
    pub frames: Vec<(f64, Vec<Vec<f32>>)>,
}

impl Embeddings {
    /// The rows at `alpha`, if computed.
    pub fn at(&self, alpha: f64) -> Option<&Vec<Vec<f32>>> {
        self.frames
            .iter()
            .find(|(a, _)| *a == alpha)
            .map(|(_, r)| r)
    }

    /// Add (or replace) the rows at `alpha`, keeping the frames sorted.
    pub fn insert(&mut self, alpha: f64, rows: Vec<Vec<f32>>) {
        self.frames.retain(|(a, _)| *a != alpha);
        self.frames.push((alpha, rows));
        self.frames.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
}

/// The UI's handles on a running worker.
#[derive(Clone, Default)]
struct Control {
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
}

/// A running (or finished) training run.
pub struct Run {
    pub events: Receiver<Event>,
    control: Control,
    /// Requests for the finished run; dropping it ends the worker.
    requests: Option<Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Run {
    /// Start `spec` on `device` on the thread "flyp-train"; `ctx` is woken after every event.
    pub fn start(
        spec: RunSpec,
        device: ComputeDevice,
        ctx: egui::Context,
    ) -> std::io::Result<Self> {
        let (tx, events) = channel();
        let (requests, request_rx) = channel::<Request>();
        let control = Control::default();
        let worker_control = control.clone();
        let thread = std::thread::Builder::new()
            .name("flyp-train".into())
            .spawn(move || {
                let send = |e: Event| {
                    let _ = tx.send(e);
                    ctx.request_repaint();
                };
                let stop = worker_control.stop.clone();
                // A panic in the library must not leave the UI waiting for an outcome.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&spec, &device, worker_control, &tx, &ctx)
                }))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(flyp::Error::Invalid(format!(
                        "internal error (a bug): {what}"
                    )))
                });
                match outcome {
                    Ok((done, finished)) => {
                        send(done);
                        // Then answer the UI's requests until the run is dropped (requests
                        // still queued then are dropped with it).
                        while let Ok(request) = request_rx.recv() {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            send(finished.answer(request));
                        }
                    }
                    Err(flyp::Error::Stopped { epoch, step }) => send(Event::Stopped(format!(
                        "stopped at epoch {epoch} step {step}; the last finished epoch is kept"
                    ))),
                    Err(e) => send(Event::Failed(e.to_string())),
                }
            })?;
        Ok(Self {
            events,
            control,
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Ask the run to stop after its current step.
    pub fn stop(&self) {
        self.control.stop.store(true, Ordering::Relaxed);
    }

    /// Hold the run after its current step (`true`) or let it go on (`false`).
    pub fn pause(&self, paused: bool) {
        self.control.pause.store(paused, Ordering::Relaxed);
    }

    /// Whether the run is held.
    pub fn is_paused(&self) -> bool {
        self.control.pause.load(Ordering::Relaxed)
    }

    fn ask(&self, request: Request) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(request);
        }
    }

    /// Ask for the finished run's WiSE-FT evaluation at `alpha` (answered by [`Event::Wise`]).
    pub fn wise(&self, alpha: f64) {
        self.ask(Request::Wise(alpha));
    }

    /// Ask for the finished run's embeddings at WiSE-FT `alpha` (answered by
    /// [`Event::EmbeddedAt`]).
    pub fn embed(&self, alpha: f64) {
        self.ask(Request::Embed(alpha));
    }

    /// Write the finished run's model at WiSE-FT `alpha` as the HF folder `dir/model` (answered
    /// by [`Event::Exported`]).
    pub fn export(&self, dir: PathBuf, alpha: f64) {
        self.ask(Request::Export(dir, alpha));
    }

    /// Ask for the top classes of the image at `path` with the finished run's model at WiSE-FT
    /// `alpha` (answered by [`Event::Classified`] or [`Event::ImageFailed`]).
    pub fn classify(&self, path: PathBuf, alpha: f64) {
        self.ask(Request::Classify(path, alpha));
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
        self.pause(false);
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the UI asks of a finished run.
enum Request {
    Wise(f64),
    Embed(f64),
    Classify(PathBuf, f64),
    Export(PathBuf, f64),
}

/// A finished run: its data, its WiSE-FT end points and the images it embeds, to answer the UI's
/// requests.
struct Finished {
    data: TrainData,
    ends: WiseFt,
    embedded: Vec<PathBuf>,
    /// WiSE-FT at α = 0 (the starting model), when it was evaluated before training.
    at_zero: Option<Vec<(String, Metrics, Vec<usize>)>>,
}

impl Finished {
    fn answer(&self, request: Request) -> Event {
        match request {
            Request::Wise(alpha) => match self.predict(alpha) {
                Ok(sets) => {
                    let (sets, predicted) = sets
                        .into_iter()
                        .map(|(name, metrics, predicted)| ((name, metrics), predicted))
                        .unzip();
                    Event::Wise {
                        alpha,
                        sets,
                        predicted,
                    }
                }
                Err(e) => Event::Failed(e.to_string()),
            },
            Request::Embed(alpha) => match self.embed(alpha) {
                Ok(rows) => Event::EmbeddedAt { alpha, rows },
                Err(e) => Event::Failed(e.to_string()),
            },
            Request::Export(dir, alpha) => Event::Exported(
                self.export(&dir, alpha)
                    .map(|()| dir.join("model"))
                    .map_err(|e| e.to_string()),
            ),
            Request::Classify(path, alpha) => match self.classify(&path, alpha) {
                Ok(top) => Event::Classified { path, alpha, top },
                Err(e) => Event::ImageFailed(e.to_string()),
            },
        }
    }

    /// Every set's metrics and predictions at `alpha` (α = 0 from before training, when kept).
    fn predict(&self, alpha: f64) -> flyp::Result<Vec<(String, Metrics, Vec<usize>)>> {
        match &self.at_zero {
            Some(sets) if alpha == 0.0 => Ok(sets.clone()),
            _ => self.ends.predict(alpha, &self.data.evals, 64),
        }
    }

    fn embed(&self, alpha: f64) -> flyp::Result<Vec<Vec<f32>>> {
        let (clip, _) = self.ends.at(alpha)?;
        image_and_prompt_embeddings(
            &clip,
            &self.embedded,
            &self.data.prompt_names,
            &self.ends.templates,
        )
    }

    /// The model at `alpha` as the HF folder `dir/model` (`flyp export`'s layout; an earlier one
    /// swapped out only once the new one is complete), with the classification head as
    /// `head.safetensors` when the method has one (FT, LP-FT, LP).
    fn export(&self, dir: &std::path::Path, alpha: f64) -> flyp::Result<()> {
        let (clip, head) = self.ends.at(alpha)?;
        flyp::run_dir::replace_dir(dir, "model", |model| {
            clip.save(model)?;
            if self.ends.heads.is_some() {
                flyp::model::weights::save_head(&model.join("head.safetensors"), &head)?;
            }
            Ok(())
        })
    }

    /// The five most probable classes of one image (the same logits as evaluation).
    fn classify(
        &self,
        path: &std::path::Path,
        alpha: f64,
    ) -> flyp::Result<Vec<(String, f64, f64)>> {
        use burn::tensor::activation::softmax;
        let (clip, head) = self.ends.at(alpha)?;
        let pixels = clip.pixels(&[path.to_path_buf()])?;
        let logits = head.logits(clip.model.encode_image(pixels)); // [1, classes]
        let probabilities = softmax(logits.clone(), 1);
        let rows = |t: burn::prelude::Tensor<2>| -> flyp::Result<Vec<f32>> {
            Ok(flyp::embed::to_rows(t)?
                .into_iter()
                .next()
                .unwrap_or_default())
        };
        let (p, s) = (rows(probabilities)?, rows(logits)?);
        let mut top: Vec<(String, f64, f64)> = self
            .data
            .prompt_names
            .iter()
            .zip(p.iter().zip(&s))
            .map(|(name, (&p, &s))| (name.clone(), p as f64, s as f64))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(5);
        Ok(top)
    }
}

fn run(
    spec: &RunSpec,
    device: &ComputeDevice,
    control: Control,
    tx: &Sender<Event>,
    ctx: &egui::Context,
) -> flyp::Result<(Event, Finished)> {
    let started = std::time::Instant::now();
    let send = |e: Event| {
        let _ = tx.send(e);
        ctx.request_repaint();
    };
    // The app has no clipping setting: each method's reference recipe.
    let spec = spec.clone().with_reference_clipping();
    let (data, _warnings) = spec.data.load(spec.hyper.seed)?;
    // The run folder, as `flyp train`'s: new, empty or ours; locked while this runs; a resume
    // must repeat the settings.
    let run_dir = spec.open_run_dir()?;
    let trains = spec.method.trains();
    // Whether the device has f16 is checked by the recipe, before anything trains.
    let mixed = trains && spec.precision == flyp::model::Precision::Mixed;
    send(Event::Started {
        device: if mixed {
            format!("{}, mixed precision (f16)", device.description)
        } else {
            device.description.clone()
        },
        classes: data.prompt_names.clone(),
        sets: data.evals.iter().map(|(n, _)| n.clone()).collect(),
        samples: data
            .evals
            .iter()
            .map(|(_, s)| s.iter().map(|s| (s.path.clone(), s.label)).collect())
            .collect(),
        train_images: data.train.len(),
        epochs: spec.hyper.epochs,
    });
    let templates = Templates::named(&spec.templates)?;
    let before = Clip::load(&spec.model, device)?;
    let zero_shot = ClassHead::zero_shot(&before, &data.prompt_names, &templates)?;
    // Epoch 0 of the curves: the model before training, with its prompt head. It is WiSE-FT at
    // α = 0 too (the same weights and head), so that answer is kept rather than computed again.
    let mut at_zero = None;
    if trains {
        let mut sets = Vec::new();
        for (name, samples) in &data.evals {
            let (metrics, predicted) = evaluate(&before, &zero_shot, samples, 64)?;
            sets.push((name.clone(), metrics, predicted));
        }
        send(Event::Before(
            sets.iter()
                .map(|(n, m, _)| (n.clone(), m.clone()))
                .collect(),
        ));
        at_zero = Some(sets);
    }
    let step_tx = std::sync::Mutex::new(tx.clone());
    let step_ctx = ctx.clone();
    let Control { stop, pause } = control;
    let stop_flag = stop.clone();
    let hooks = RunHooks {
        on_probe: Some(Box::new(|probe, sets| {
            send(Event::Probed {
                l2: probe.l2,
                sets: sets.to_vec(),
            })
        })),
        on_epoch: Some(Box::new(|report| send(Event::Epoch(report.clone())))),
        step: Hooks {
            on_step: Some(Arc::new(move |p: &StepProgress| {
                if let Ok(tx) = step_tx.lock() {
                    let _ = tx.send(Event::Step(*p));
                }
                step_ctx.request_repaint();
                // Paused: hold the training thread between steps until resumed or stopped.
                while pause.load(Ordering::Relaxed) && !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(30));
                }
            })),
            stop: Some(stop),
        },
        progress: false,
        pretrained: Some(&before),
    };
    let outcome = flyp::methods::recipe::run(&spec, &data, device, hooks)?;
    if let (Some(mut dir), None) = (run_dir, outcome.stopped) {
        dir.mark_finished()?;
    }
    let best_epoch = if trains {
        outcome.results.best_epoch
    } else {
        0
    };
    let (images, embedded) = embedded_images(&data);
    let finished = Finished {
        ends: WiseFt {
            zero_shot: before,
            fine_tuned: outcome.clip,
            // Zero-shot and the linear probe train no weights: WiSE-FT interpolates the heads.
            heads: outcome.head.map(|h| (zero_shot, h)),
            prompt_names: data.prompt_names.clone(),
            templates,
        },
        embedded,
        data,
        at_zero,
    };
    let mut embeddings = Embeddings {
        images,
        paths: finished.embedded.clone(),
        classes: finished.data.prompt_names.clone(),
        frames: Vec::new(),
    };
    for alpha in [0.0, 1.0] {
        embeddings.insert(alpha, finished.embed(alpha)?);
    }
    send(Event::Embeddings(embeddings));
    let done = Event::Finished {
        best_epoch,
        seconds: started.elapsed().as_secs_f64(),
        results: Box::new(outcome.results),
        stopped: outcome.stopped,
    };
    Ok((done, finished))
}

/// The images the embedding view shows: the test (else validation) set and every OOD set (up to
/// [`MAP_IMAGES_PER_SET`] each), as
/// ((class, set name), path).
fn embedded_images(data: &TrainData) -> (Vec<(usize, String)>, Vec<PathBuf>) {
    let has_test = data.evals.iter().any(|(n, _)| n == "test");
    data.evals
        .iter()
        .filter(|(name, _)| name != "val" || !has_test)
        .flat_map(|(name, samples)| {
            // At most MAP_IMAGES_PER_SET of each set, evenly through it (the sets are ordered
            // by class, so every class keeps its share): the map stays readable and t-SNE over
            // all α frames stays quick.
            let every = samples.len().div_ceil(MAP_IMAGES_PER_SET).max(1);
            samples
                .iter()
                .step_by(every)
                .map(move |s| ((s.label, name.clone()), s.path.clone()))
        })
        .unzip()
}

/// The most images of one evaluation set the embedding map shows.
pub const MAP_IMAGES_PER_SET: usize = 100;

/// Scan a dataset folder on the thread "flyp-scan" (every file is decoded once, so it can take
/// seconds); the answer arrives on the returned channel and wakes `ctx`.
pub fn scan(
    path: PathBuf,
    ctx: egui::Context,
) -> std::io::Result<Receiver<Result<flyp::data::Scan, String>>> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("flyp-scan".into())
        .spawn(move || {
            let _ = tx.send(flyp::data::Scan::folder(&path).map_err(|e| e.to_string()));
            ctx.request_repaint();
        })?;
    Ok(rx)
}

/// What the download thread reports.
#[derive(Debug, Clone)]
pub enum Fetch {
    Progress(flyp::hub::Progress),
    /// The model's local folder, or the one-line reason.
    Done(Result<PathBuf, String>),
}

/// Download Hub model `id` (`owner/name`) from `endpoint` into the cache on the thread
/// "flyp-download"; progress and the outcome arrive on the returned channel and wake `ctx`.
pub fn download(
    id: String,
    endpoint: String,
    ctx: egui::Context,
) -> std::io::Result<Receiver<Fetch>> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("flyp-download".into())
        .spawn(move || {
            let mut last = std::time::Instant::now();
            let result = flyp::hub::download(
                &endpoint,
                &id,
                &flyp::hub::default_cache(),
                &mut |p| {
                    // A few updates a second are enough for a progress bar.
                    if last.elapsed().as_millis() > 100 || p.total == Some(p.done) {
                        last = std::time::Instant::now();
                        let _ = tx.send(Fetch::Progress(p.clone()));
                        ctx.request_repaint();
                    }
                },
                None,
            );
            let _ = tx.send(Fetch::Done(result.map_err(|e| e.to_string())));
            ctx.request_repaint();
        })?;
    Ok(rx)
}
