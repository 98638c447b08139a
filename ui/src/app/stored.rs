//! The settings the app keeps between sessions in eframe's storage, as egui's demo app keeps its
//! state: the run's settings, where to train and the Hub id. The run folder and "continue" are
//! not kept: a new session never continues or overwrites a run by itself.

use std::path::PathBuf;

use flyp::DeviceChoice;
use flyp::methods::Method;
use flyp::methods::recipe::{DataPaths, RunSpec};
use flyp::model::Precision;
use flyp::train::engine::Hyper;
use serde::{Deserialize, Serialize};

use super::{bundled, demo_oods};

/// What the settings panel edits.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where to train ("Compute").
    pub compute: DeviceChoice,
    /// The run's settings; `spec.data.evals` are the OOD sets (name, folder).
    pub spec: RunSpec,
    /// "Hub model id".
    pub hub_id: String,
    /// The Hub's address (`HF_ENDPOINT`, else huggingface.co); not kept.
    pub hub_endpoint: String,
    /// egui's zoom factor ("Zoom", Ctrl + / −, `flyp-studio --scale`).
    pub zoom: f32,
}

/// The stored form (every field optional: a setting this version does not know, or one that no
/// longer parses, falls back to the bundled demo's).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Stored {
    compute: Option<DeviceChoice>,
    method: Option<String>,
    model: Option<PathBuf>,
    train: Option<PathBuf>,
    evals: Option<Vec<(String, PathBuf)>>,
    epochs: Option<usize>,
    batch: Option<usize>,
    lr: Option<f64>,
    wd: Option<f64>,
    seed: Option<u64>,
    templates: Option<String>,
    precision: Option<String>,
    hub_id: Option<String>,
    zoom: Option<f32>,
}

impl Settings {
    /// The key in eframe's storage.
    pub const KEY: &'static str = "flyp-studio settings";
    /// The zoom factors offered.
    pub const ZOOM: std::ops::RangeInclusive<f32> = 0.5..=3.0;

    /// `--scale F` of the command line (a zoom factor in [`Settings::ZOOM`]), or why not.
    pub fn scale_arg(args: &[String]) -> Result<Option<f32>, String> {
        let Some(k) = args.iter().position(|a| a == "--scale") else {
            return Ok(None);
        };
        let value = args
            .get(k + 1)
            .ok_or("--scale: give a zoom factor, e.g. --scale 1.5")?;
        match value.parse::<f32>() {
            Ok(z) if Self::ZOOM.contains(&z) => Ok(Some(z)),
            _ => Err(format!(
                "--scale {value}: a zoom factor from {} to {}, e.g. 1.5 for a projector",
                Self::ZOOM.start(),
                Self::ZOOM.end()
            )),
        }
    }

    /// The bundled demo: its model, data, OOD sets and FLYP at the demo's lr.
    pub fn demo() -> Self {
        let flyp = &flyp::methods::flyp::Flyp;
        let data = DataPaths {
            train: bundled("assets/emoji-subset/twemoji"),
            evals: demo_oods(),
            ..Default::default()
        };
        Self {
            compute: DeviceChoice::Auto,
            spec: RunSpec {
                hyper: Hyper {
                    epochs: 10,
                    batch: 32,
                    lr: flyp.demo_lr(),
                    wd: 0.1,
                    ..Hyper::default()
                },
                templates: "emoji".into(),
                ..RunSpec::new(flyp, bundled("assets/demo-model"), data)
            },
            hub_id: String::new(),
            hub_endpoint: flyp::hub::default_endpoint(),
            zoom: 1.0,
        }
    }

    /// The stored settings over the demo's, each kept only when it is valid.
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        let mut settings = Self::demo();
        let Some(stored) = storage.and_then(|s| eframe::get_value::<Stored>(s, Self::KEY)) else {
            return settings;
        };
        let spec = &mut settings.spec;
        if let Some(m) = stored.method.and_then(|m| flyp::methods::by_name(&m).ok())
            && m.in_app()
        {
            spec.method = m;
        }
        spec.model = stored.model.unwrap_or(spec.model.clone());
        spec.data.train = stored.train.unwrap_or(spec.data.train.clone());
        spec.data.evals = stored.evals.unwrap_or(spec.data.evals.clone());
        spec.hyper.epochs = stored
            .epochs
            .filter(|&e| e >= 1)
            .unwrap_or(spec.hyper.epochs);
        spec.hyper.batch = stored.batch.filter(|&b| b >= 1).unwrap_or(spec.hyper.batch);
        spec.hyper.lr = stored
            .lr
            .filter(|&l| l > 0.0 && l.is_finite())
            .unwrap_or(spec.hyper.lr);
        spec.hyper.wd = stored
            .wd
            .filter(|&w| w >= 0.0 && w.is_finite())
            .unwrap_or(spec.hyper.wd);
        spec.hyper.seed = stored.seed.unwrap_or(spec.hyper.seed);
        spec.templates = stored.templates.unwrap_or(spec.templates.clone());
        if let Some(p) = stored.precision.as_deref().and_then(Precision::from_name) {
            spec.precision = p;
        }
        settings.compute = stored.compute.unwrap_or(settings.compute);
        settings.hub_id = stored.hub_id.unwrap_or_default();
        settings.zoom = stored
            .zoom
            .filter(|z| Self::ZOOM.contains(z))
            .unwrap_or(1.0);
        settings
    }

    /// Keep the settings in `storage`.
    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        let spec = &self.spec;
        let stored = Stored {
            compute: Some(self.compute),
            method: Some(spec.method.name().into()),
            model: Some(spec.model.clone()),
            train: Some(spec.data.train.clone()),
            evals: Some(spec.data.evals.clone()),
            epochs: Some(spec.hyper.epochs),
            batch: Some(spec.hyper.batch),
            lr: Some(spec.hyper.lr),
            wd: Some(spec.hyper.wd),
            seed: Some(spec.hyper.seed),
            templates: Some(spec.templates.clone()),
            precision: Some(spec.precision.name().into()),
            hub_id: Some(self.hub_id.clone()),
            zoom: Some(self.zoom),
        };
        eframe::set_value(storage, Self::KEY, &stored);
    }
}
