//! WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022): interpolate
//! every parameter between the zero-shot and the fine-tuned model, θ(α) = (1−α)·θ₀ + α·θ₁, and
//! evaluate along α. Head-based methods interpolate their head too, from the zero-shot head at α=0.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::data::Sample;
use crate::data::prompts::Templates;
use crate::embed::Clip;
use crate::error::{Error, Result};
use crate::methods::head::ClassHead;
use crate::methods::zeroshot::evaluate;
use crate::model::ClipModel;
use crate::train::Metrics;

/// The default α grid: 0, 0.1, …, 1.
pub fn default_alphas() -> Vec<f64> {
    (0..=10).map(|i| i as f64 / 10.0).collect()
}

/// A run's two end points, evaluated at any α (what `flyp wise` and the app's α slider use).
pub struct WiseFt {
    pub zero_shot: Clip,
    pub fine_tuned: Clip,
    /// FT: (zero-shot head, fine-tuned head), interpolated too; `None` (FLYP): the head is
    /// rebuilt from the interpolated text tower.
    pub heads: Option<(ClassHead, ClassHead)>,
    pub prompt_names: Vec<String>,
    pub templates: Templates,
}

impl WiseFt {
    /// The model (on the plain device) and classification head at `alpha`.
    pub fn at(&self, alpha: f64) -> Result<(Clip, ClassHead)> {
        let clip = Clip {
            model: interpolate(&self.zero_shot.model, &self.fine_tuned.model, alpha)?,
            ..self.fine_tuned.for_inference()
        };
        let head = match &self.heads {
            Some((zs, ft)) => zs.lerp(ft, alpha)?,
            None => ClassHead::zero_shot(&clip, &self.prompt_names, &self.templates)?,
        };
        Ok((clip, head))
    }

    /// Every set's metrics at `alpha`, `batch` images per forward pass.
    pub fn evaluate(
        &self,
        alpha: f64,
        sets: &[(String, Vec<Sample>)],
        batch: usize,
    ) -> Result<Vec<(String, Metrics)>> {
        Ok(self
            .predict(alpha, sets, batch)?
            .into_iter()
            .map(|(name, metrics, _)| (name, metrics))
            .collect())
    }

    /// Every set's metrics at `alpha` with each image's predicted class (in the set's order).
    pub fn predict(
        &self,
        alpha: f64,
        sets: &[(String, Vec<Sample>)],
        batch: usize,
    ) -> Result<Vec<(String, Metrics, Vec<usize>)>> {
        let (clip, head) = self.at(alpha)?;
        sets.iter()
            .map(|(name, samples)| {
                let (metrics, predicted) = evaluate(&clip, &head, samples, batch)?;
                Ok((name.clone(), metrics, predicted))
            })
            .collect()
    }
}

struct Collect {
    path: Vec<String>,
    tensors: HashMap<String, (Vec<usize>, Tensor<1>)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let n: usize = shape.iter().product();
        self.tensors
            .insert(self.path.join("."), (shape, t.reshape([n])));
    }
}

struct Blend {
    path: Vec<String>,
    other: HashMap<String, (Vec<usize>, Tensor<1>)>,
    alpha: f64,
    errors: Vec<String>,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.join(".");
        let Some((shape, other)) = self.other.remove(&key) else {
            self.errors.push(format!(
                "parameter {key} is missing from the fine-tuned model"
            ));
            return param;
        };
        let ours = param.lazy_shape().dims::<D>().to_vec();
        if ours != shape {
            self.errors.push(format!(
                "parameter {key}: shapes {ours:?} and {shape:?} differ"
            ));
            return param;
        }
        let alpha = self.alpha;
        param.map(|t| t * (1.0 - alpha) + other.reshape(ours_array::<D>(&shape)) * alpha)
    }
}

fn ours_array<const D: usize>(shape: &[usize]) -> [usize; D] {
    let mut out = [0; D];
    out.copy_from_slice(shape);
    out
}

/// θ(α) = (1−α)·zero_shot + α·fine_tuned over every parameter; both must have the same keys and
/// shapes (an error names the first that differs).
pub fn interpolate(zero_shot: &ClipModel, fine_tuned: &ClipModel, alpha: f64) -> Result<ClipModel> {
    let mut collect = Collect {
        path: Vec::new(),
        tensors: HashMap::new(),
    };
    fine_tuned.visit(&mut collect);
    let mut blend = Blend {
        path: Vec::new(),
        other: collect.tensors,
        alpha,
        errors: Vec::new(),
    };
    let model = zero_shot.clone().map(&mut blend);
    if let Some(extra) = blend.other.keys().next() {
        blend.errors.push(format!(
            "parameter {extra} exists only in the fine-tuned model"
        ));
    }
    match blend.errors.first() {
        None => Ok(model),
        Some(e) => Err(Error::Invalid(format!("WiSE-FT: {e}"))),
    }
}
