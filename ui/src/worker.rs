//! The training worker: one named thread per run, running the library's training loop (the
//! same code as `flyp train`), talking to the UI over a channel and waking it with
//! `request_repaint`. No frame ever waits on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui;
use flyp::data::prompts::Templates;
use flyp::methods::wise_ft::WiseFt;
use flyp::methods::zeroshot::{image_and_prompt_embeddings, zero_shot_head};
use flyp::train::engine::{
    EpochReport, Hooks, Method, StepProgress, TrainConfig, TrainData, train,
};
use flyp::{Clip, ComputeDevice};

/// The methods the app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodChoice {
    Flyp,
    Finetune,
}

impl MethodChoice {
    pub const ALL: [MethodChoice; 2] = [MethodChoice::Flyp, MethodChoice::Finetune];

    pub fn label(self) -> &'static str {
        match self {
            MethodChoice::Flyp => "FLYP",
            MethodChoice::Finetune => "Fine-tune (FT)",
        }
    }

    pub fn tooltip(self) -> &'static str {
        match self {
            MethodChoice::Flyp => {
                "Finetune Like You Pretrain: the contrastive loss between each image and a caption of its class; both towers train"
            }
            MethodChoice::Finetune => {
                "Cross-entropy on the image tower with a head that starts as the zero-shot head; the text tower is frozen"
            }
        }
    }

    fn method(self) -> Method {
        match self {
            MethodChoice::Flyp => Method::Flyp {
                mask_collisions: false,
            },
            MethodChoice::Finetune => Method::Finetune,
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub method: MethodChoice,
    pub model: PathBuf,
    pub train: PathBuf,
    /// Extra (OOD) sets, NAME=DIR.
    pub evals: Vec<(String, PathBuf)>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub wd: f64,
    pub seed: u64,
    /// `openai`, `simple`, `emoji` or a file.
    pub templates: String,
    /// The run folder (checkpoints, resume); `None` = keep nothing on disk.
    pub out: Option<PathBuf>,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
}

/// What the worker tells the UI.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        device: String,
        classes: Vec<String>,
        sets: Vec<String>,
        train_images: usize,
    },
    Step(StepProgress),
    Epoch(EpochReport),
    /// Image and class-prompt embeddings before and after fine-tuning (sent after the last epoch).
    Embeddings(Embeddings),
    Finished {
        best_epoch: usize,
        seconds: f64,
    },
    /// The top classes of one image (asked with [`Run::classify`]) at WiSE-FT's `alpha`:
    /// (class, probability, similarity = normalised image · head row), best first.
    Classified {
        path: PathBuf,
        alpha: f64,
        top: Vec<(String, f64, f64)>,
    },
    /// The model at WiSE-FT α was written to this HF folder (asked with [`Run::export`]), or why not.
    Exported(Result<PathBuf, String>),
    /// A request about one image failed (the run itself is fine): the one-line reason.
    ImageFailed(String),
    /// WiSE-FT at `alpha` (asked with [`Run::wise`]): every evaluation set's metrics.
    Wise {
        alpha: f64,
        sets: Vec<(String, flyp::train::Metrics)>,
    },
    /// Stopped by the user: the last finished epoch's checkpoint is kept (resume continues it).
    Stopped(String),
    /// The one-line error.
    Failed(String),
}

/// Embeddings of the test and OOD images and of the class prompts, from the starting model and
/// from the fine-tuned one: rows `0..images.len()` are images, the rest one prompt per class.
#[derive(Debug, Clone, Default)]
pub struct Embeddings {
    /// (class, set name) of each image row.
    pub images: Vec<(usize, String)>,
    pub classes: Vec<String>,
    pub before: Vec<Vec<f32>>,
    pub after: Vec<Vec<f32>>,
}

/// A running (or finished) training run.
pub struct Run {
    pub events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    /// Requests for the finished run; dropping it ends the worker.
    requests: Option<Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Run {
    /// Start `spec` on the thread "flyp-train"; `ctx` is woken after every event.
    pub fn start(spec: RunSpec, ctx: egui::Context) -> std::io::Result<Self> {
        let (tx, events) = channel();
        let (requests, request_rx) = channel::<Request>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flyp-train".into())
            .spawn(move || {
                let send = |e: Event| {
                    let _ = tx.send(e);
                    ctx.request_repaint();
                };
                match run(&spec, flag, &tx, &ctx) {
                    Ok((done, wise)) => {
                        send(done);
                        // Then answer WiSE-FT requests until the run is dropped.
                        // (The UI asks once per α, and only when the slider is let go.)
                        while let Ok(request) = request_rx.recv() {
                            send(match request {
                                Request::Wise(alpha) => match wise.evaluate(alpha) {
                                    Ok(sets) => Event::Wise { alpha, sets },
                                    Err(e) => Event::Failed(e.to_string()),
                                },
                                Request::Export(dir, alpha) => Event::Exported(
                                    wise.export(&dir, alpha)
                                        .map(|()| dir)
                                        .map_err(|e| e.to_string()),
                                ),
                                Request::Classify(path, alpha) => {
                                    match wise.classify(&path, alpha) {
                                        Ok(top) => Event::Classified { path, alpha, top },
                                        Err(e) => Event::ImageFailed(e.to_string()),
                                    }
                                }
                            });
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
            stop,
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Ask the run to stop after its current step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Ask for the finished run's WiSE-FT evaluation at `alpha` (answered by [`Event::Wise`]).
    pub fn wise(&self, alpha: f64) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(Request::Wise(alpha));
        }
    }

    /// Write the finished run's model at WiSE-FT `alpha` as an HF folder `dir` (answered by
    /// [`Event::Exported`]).
    pub fn export(&self, dir: PathBuf, alpha: f64) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(Request::Export(dir, alpha));
        }
    }

    /// Ask for the top classes of the image at `path` with the finished run's model at WiSE-FT
    /// `alpha` (answered by [`Event::Classified`] or [`Event::ImageFailed`]).
    pub fn classify(&self, path: PathBuf, alpha: f64) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(Request::Classify(path, alpha));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the UI asks of a finished run.
enum Request {
    Wise(f64),
    Classify(PathBuf, f64),
    Export(PathBuf, f64),
}

/// A finished run: its data and its WiSE-FT end points, to answer the UI's requests.
struct Wise {
    data: TrainData,
    ends: WiseFt,
}

impl Wise {
    /// The model at `alpha` as an HF folder (`flyp export`'s layout; FT's head as head.safetensors
    /// is not written yet).
    fn export(&self, dir: &std::path::Path, alpha: f64) -> flyp::Result<()> {
        let (clip, _) = self.ends.at(alpha)?;
        clip.save(dir)
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
        let image = flyp::model::l2_normalize(clip.model.encode_image(pixels));
        let similarity = image.matmul(head.transpose()); // [1, classes]
        let scale = clip.model.logit_scale.val().exp().unsqueeze::<2>();
        let probabilities = softmax(similarity.clone() * scale, 1);
        let rows = |t: burn::prelude::Tensor<2>| -> flyp::Result<Vec<f32>> {
            Ok(flyp::embed::to_rows(t)?
                .into_iter()
                .next()
                .unwrap_or_default())
        };
        let (p, s) = (rows(probabilities)?, rows(similarity)?);
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

    fn evaluate(&self, alpha: f64) -> flyp::Result<Vec<(String, flyp::train::Metrics)>> {
        self.ends.evaluate(alpha, &self.data.evals, 64)
    }
}

fn run(
    spec: &RunSpec,
    stop: Arc<AtomicBool>,
    tx: &Sender<Event>,
    ctx: &egui::Context,
) -> flyp::Result<(Event, Wise)> {
    let started = std::time::Instant::now();
    let (data, _warnings) =
        TrainData::from_folders(&spec.train, None, None, &spec.evals, spec.seed)?;
    // The CPU backend: sharing eframe's wgpu device with burn is the next step (see README).
    let device = ComputeDevice::flex();
    let _ = tx.send(Event::Started {
        device: device.description.clone(),
        classes: data.prompt_names.clone(),
        sets: data.evals.iter().map(|(n, _)| n.clone()).collect(),
        train_images: data.train.len(),
    });
    ctx.request_repaint();
    let step_tx = std::sync::Mutex::new(tx.clone());
    let step_ctx = ctx.clone();
    let config = TrainConfig {
        method: spec.method.method(),
        epochs: spec.epochs,
        batch_size: spec.batch,
        lr: spec.lr,
        weight_decay: spec.wd,
        seed: spec.seed,
        templates: Templates::named(&spec.templates)?,
        run_dir: spec.out.clone(),
        resume: spec.resume,
        hooks: Hooks {
            on_step: Some(Arc::new(move |p: &StepProgress| {
                if let Ok(tx) = step_tx.lock() {
                    let _ = tx.send(Event::Step(*p));
                }
                step_ctx.request_repaint();
            })),
            stop: Some(stop),
        },
        ..TrainConfig::flyp()
    };
    let clip = Clip::load(&spec.model, &device.autodiff())?;
    let trained = train(clip, &data, &config, |report| {
        let _ = tx.send(Event::Epoch(report.clone()));
        ctx.request_repaint();
    })?;
    let tuned = Clip {
        model: burn::module::Module::valid(&trained.best_model),
        ..trained.clip.for_inference()
    };
    let before = Clip::load(&spec.model, &device)?;
    let _ = tx.send(Event::Embeddings(embeddings(
        &data,
        &config.templates,
        &before,
        &tuned,
    )?));
    ctx.request_repaint();
    let heads = match &trained.best_head {
        Some(h) => Some((
            zero_shot_head(&before, &data.prompt_names, &config.templates)?,
            h.weight.val().without_autodiff(),
        )),
        None => None,
    };
    let done = Event::Finished {
        best_epoch: trained.best_epoch,
        seconds: started.elapsed().as_secs_f64(),
    };
    let wise = Wise {
        ends: WiseFt {
            zero_shot: before,
            fine_tuned: tuned,
            heads,
            prompt_names: data.prompt_names.clone(),
            templates: config.templates.clone(),
        },
        data,
    };
    Ok((done, wise))
}

/// The test (else validation) and OOD images and the class prompts through both models.
fn embeddings(
    data: &TrainData,
    templates: &Templates,
    before: &Clip,
    after: &Clip,
) -> flyp::Result<Embeddings> {
    let wanted = |name: &str| name == "test" || name == "ood";
    let has_test = data.evals.iter().any(|(n, _)| n == "test");
    let mut images = Vec::new();
    let mut paths = Vec::new();
    for (name, samples) in &data.evals {
        if wanted(name) || (!has_test && name == "val") {
            for s in samples {
                images.push((s.label, name.clone()));
                paths.push(s.path.clone());
            }
        }
    }
    let rows =
        |clip: &Clip| image_and_prompt_embeddings(clip, &paths, &data.prompt_names, templates);
    Ok(Embeddings {
        images,
        classes: data.prompt_names.clone(),
        before: rows(before)?,
        after: rows(after)?,
    })
}

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
