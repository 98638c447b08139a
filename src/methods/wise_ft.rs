//! WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022): interpolate
//! every parameter between the zero-shot and the fine-tuned model, θ(α) = (1−α)·θ₀ + α·θ₁, and
//! evaluate along α. Head-based methods interpolate their head too, from the zero-shot head at α=0.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::model::ClipModel;

/// The default α grid: 0, 0.1, …, 1.
pub fn default_alphas() -> Vec<f64> {
    (0..=10).map(|i| i as f64 / 10.0).collect()
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

/// (1−α)·zero_shot + α·fine_tuned for heads.
pub fn interpolate_head(
    zero_shot: &Tensor<2>,
    fine_tuned: &Tensor<2>,
    alpha: f64,
) -> Result<Tensor<2>> {
    if zero_shot.dims() != fine_tuned.dims() {
        return Err(Error::Invalid(format!(
            "WiSE-FT: head shapes {:?} and {:?} differ",
            zero_shot.dims(),
            fine_tuned.dims()
        )));
    }
    Ok(zero_shot.clone() * (1.0 - alpha) + fine_tuned.clone() * alpha)
}
