//! What the current run reported: the worker's events folded into one state the screens read.

use super::*;

/// An answer to "try an image": the file, the α, and the top classes (class, probability,
/// logit), most probable first.
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
    /// The run's epochs.
    pub epoch_count: usize,
    /// What the finished run measured (written by Export).
    pub results: Option<flyp::train::RunResults>,
    /// The linear probe's L2 strength and metrics (LP, LP-FT).
    pub probe: Option<(f64, Vec<(String, Metrics)>)>,
    /// Every set's metrics before training (zero-shot): epoch 0 of the accuracy curves.
    pub before: Option<Vec<(String, Metrics)>>,
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
    pub(crate) fn apply(&mut self, event: Event) {
        match event {
            Event::Started {
                device,
                classes,
                sets,
                samples,
                train_images,
                epochs,
            } => {
                self.epoch_count = epochs;
                self.device = device;
                self.classes = classes;
                self.sets = sets;
                self.samples = samples;
                self.train_images = train_images;
            }
            Event::Probed { l2, sets } => self.probe = Some((l2, sets)),
            Event::Before(sets) => self.before = Some(sets),
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
                results,
                stopped,
            } => {
                self.finished = true;
                let probed = results.probe.is_some();
                self.results = Some(*results);
                self.outcome = Some(match stopped {
                    Some((epoch, step)) => format!(
                        "stopped at epoch {epoch} step {step}; exploring epoch {best_epoch}, the best finished one by validation top-1 (a run folder keeps the checkpoint to continue)"
                    ),
                    None if best_epoch == 0 && probed => format!(
                        "finished in {seconds:.0} s; no epochs: the linear probe's head on the pretrained model"
                    ),
                    None if best_epoch == 0 => format!(
                        "finished in {seconds:.0} s; nothing trained: the pretrained model with its class prompts"
                    ),
                    None => format!(
                        "finished in {seconds:.0} s; best epoch {best_epoch} by validation top-1"
                    ),
                });
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

    /// How many of `epochs` came from a resumed run's checkpoint: those before the epoch of the
    /// first step seen (all of them when no step was seen).
    pub fn resumed_epochs(&self) -> usize {
        let first = self.steps.first().map_or(usize::MAX, |s| s.epoch);
        self.epochs.iter().take_while(|r| r.epoch < first).count()
    }

    /// "epoch 2/10 · step 14/70 · 31 images/s · ETA 12 s"
    pub fn status_line(&self) -> String {
        let epochs = self.epoch_count;
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
