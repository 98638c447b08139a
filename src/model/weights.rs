//! Hugging Face safetensors ↔ [`ClipModel`]: loading is a walk over the module tree, each
//! parameter's path *is* its HF key, with two remapping rules:
//! - burn's `LayerNorm` names its parameters `gamma`/`beta`; HF says `weight`/`bias`;
//! - burn's `Linear` stores its weight `[in, out]`; PyTorch stores `[out, in]` (transposed here).
//!
//! HF's rank-0 `logit_scale` loads into our `[1]` parameter. Old checkpoints' `position_ids`
//! buffers are skipped. Anything else missing, unexpected or mis-shaped is an error naming the key
//! and both shapes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use super::{ClipConfig, ClipModel};
use crate::error::{Error, Result};
use crate::methods::head::ClassHead;

/// One tensor read from a checkpoint, converted to f32.
struct StoredTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
    file: PathBuf,
}

/// Every tensor of a checkpoint (one file or the shards of an index), by key.
pub struct Checkpoint {
    tensors: HashMap<String, StoredTensor>,
}

impl Checkpoint {
    /// Read `model.safetensors`, the shards listed in `model.safetensors.index.json`, or one
    /// `.safetensors` file. f32, f16, bf16 and f64 tensors are converted to f32.
    pub fn read(path: &Path) -> Result<Self> {
        let files = if path.is_dir() {
            let single = path.join("model.safetensors");
            let index = path.join("model.safetensors.index.json");
            if single.is_file() {
                vec![single]
            } else if index.is_file() {
                shard_files(&index)?
            } else {
                return Err(Error::NotAModel {
                    path: path.to_path_buf(),
                    reason: "no model.safetensors or model.safetensors.index.json in it".into(),
                });
            }
        } else {
            vec![path.to_path_buf()]
        };
        let mut tensors = HashMap::new();
        for file in files {
            read_file(&file, &mut tensors)?;
        }
        Ok(Self { tensors })
    }

    /// Refuse a config whose sizes describe far more parameters than these weights hold (more
    /// than twice as many, plus 10⁶), before a model of those sizes is allocated: a
    /// `num_hidden_layers` of 4 000 000 000 must be an error, not an abort.
    pub fn check_config(&self, config: &ClipConfig, config_path: &Path) -> Result<()> {
        let stored: u128 = self
            .tensors
            .iter()
            .filter(|(key, _)| !is_ignored_buffer(key))
            .map(|(_, t)| t.shape.iter().map(|&d| d as u128).product::<u128>())
            .sum();
        let described = config.num_params();
        // A small difference is left to the key-by-key check, which names each missing or
        // misshaped tensor; only what would allocate far more than the weights is refused here.
        if described <= stored.saturating_mul(2) + 1_000_000 {
            return Ok(());
        }
        let layers = |prefix: &str| {
            (0..)
                .take_while(|i| {
                    self.tensors
                        .contains_key(&format!("{prefix}.encoder.layers.{i}.layer_norm1.weight"))
                })
                .count()
        };
        let (text, vision) = (layers("text_model"), layers("vision_model"));
        Err(Error::config(
            config_path,
            format!(
                "describes {described} parameters, far more than the {stored} the weights in {} hold \
                 (text layers: config {}, weights {text}; vision layers: config {}, weights {vision}); \
                 the config does not belong to these weights",
                self.origin().display(),
                config.text_config.num_hidden_layers,
                config.vision_config.num_hidden_layers,
            ),
        ))
    }

    /// The keys and HF shapes, sorted (for shape-based config inference and diagnostics).
    pub fn shapes(&self) -> BTreeMap<&str, &[usize]> {
        self.tensors
            .iter()
            .map(|(k, t)| (k.as_str(), t.shape.as_slice()))
            .collect()
    }

    /// Build `config`'s model on `device` and fill every parameter from this checkpoint.
    pub fn load_model(&self, config: &ClipConfig, device: &Device) -> Result<ClipModel> {
        let mut loader = Loader {
            checkpoint: self,
            device: device.clone(),
            stack: Vec::new(),
            used: HashSet::new(),
            errors: Vec::new(),
        };
        let model = ClipModel::new(config, device).map(&mut loader);
        let unexpected: Vec<String> = self
            .tensors
            .iter()
            .filter(|(key, _)| !loader.used.contains(key.as_str()) && !is_ignored_buffer(key))
            .map(|(key, t)| format!("unexpected key {key} {:?} in {}", t.shape, t.file.display()))
            .collect();
        let mut errors = loader.errors;
        errors.extend(unexpected);
        errors.sort();
        match errors.first() {
            None => Ok(model),
            Some(first) => {
                let more = match errors.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more problem{})", if n == 1 { "" } else { "s" }),
                };
                Err(Error::Weights {
                    path: self.origin(),
                    reason: format!("{first}{more}"),
                })
            }
        }
    }

    fn origin(&self) -> PathBuf {
        self.tensors
            .values()
            .next()
            .map(|t| t.file.clone())
            .unwrap_or_default()
    }
}

/// Buffers that older transformers versions persisted and that carry no learned values.
fn is_ignored_buffer(key: &str) -> bool {
    key.ends_with("embeddings.position_ids")
}

fn shard_files(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::weights(index, e.to_string()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::weights(index, "no \"weight_map\" object"))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(|name| dir.join(name))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

fn read_file(file: &Path, into: &mut HashMap<String, StoredTensor>) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::weights(file, format!("not a safetensors file: {e}")))?;
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            other => {
                if is_ignored_buffer(&name) {
                    continue;
                }
                return Err(Error::weights(
                    file,
                    format!(
                        "key {name}: unsupported dtype {other:?} (f32, f16, bf16 or f64 expected)"
                    ),
                ));
            }
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::weights(
                file,
                format!("key {name}: contains NaN or infinite values"),
            ));
        }
        into.insert(
            name,
            StoredTensor {
                shape: view.shape().to_vec(),
                values,
                file: file.to_path_buf(),
            },
        );
    }
    Ok(())
}

/// How a burn parameter path becomes an HF key, and whether its matrix is transposed.
fn hf_key(stack: &[(String, String)]) -> (String, bool) {
    let n = stack.len();
    let mut parts: Vec<&str> = stack.iter().map(|(name, _)| name.as_str()).collect();
    let parent = if n >= 1 { stack[n - 1].1.as_str() } else { "" };
    let mut transpose = false;
    if n >= 1 {
        match (parent, parts[n - 1]) {
            // burn LayerNorm's gamma/beta are HF's weight/bias.
            ("Struct:LayerNorm", "gamma") => parts[n - 1] = "weight",
            ("Struct:LayerNorm", "beta") => parts[n - 1] = "bias",
            // burn Linear stores [in, out]; PyTorch [out, in].
            ("Struct:Linear", "weight") => transpose = true,
            _ => {}
        }
    }
    (parts.join("."), transpose)
}

fn transpose_2d(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

struct Loader<'a> {
    checkpoint: &'a Checkpoint,
    device: Device,
    stack: Vec<(String, String)>,
    used: HashSet<String>,
    errors: Vec<String>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (key, transpose) = hf_key(&self.stack);
        let ours: Vec<usize> = param.lazy_shape().dims::<D>().to_vec();
        let expected: Vec<usize> = if transpose {
            ours.iter().rev().copied().collect()
        } else {
            ours.clone()
        };
        let Some(stored) = self.checkpoint.tensors.get(&key) else {
            self.errors.push(format!(
                "missing key {key} (model expects shape {expected:?})"
            ));
            return param;
        };
        self.used.insert(key.clone());
        // HF stores logit_scale as a rank-0 tensor; ours is [1].
        let same_shape = stored.shape == expected
            || (expected == [1] && stored.shape.is_empty() && stored.values.len() == 1);
        if !same_shape {
            self.errors.push(format!(
                "key {key}: checkpoint has shape {:?}, model expects {expected:?} (config.json and weights disagree)",
                stored.shape
            ));
            return param;
        }
        let values = if transpose {
            transpose_2d(&stored.values, expected[0], expected[1])
        } else {
            stored.values.clone()
        };
        let tensor = Tensor::<D>::from_data(TensorData::new(values, ours), &self.device);
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

struct Saver {
    stack: Vec<(String, String)>,
    entries: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Saver {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (key, transpose) = hf_key(&self.stack);
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values: Vec<f32> = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        let (shape, values) = if transpose {
            (
                vec![shape[1], shape[0]],
                transpose_2d(&values, shape[0], shape[1]),
            )
        } else if key == "logit_scale" {
            (Vec::new(), values) // rank 0, as transformers expects
        } else {
            (shape, values)
        };
        self.entries.push((key, shape, values));
    }
}

/// Write `model` as `config.json` + `model.safetensors` in HF layout into `dir` (created if
/// needed). Each file is written to a temporary name and renamed, so a crash never leaves a
/// half-written model.
pub fn save_hf(model: &ClipModel, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut saver = Saver {
        stack: Vec::new(),
        entries: Vec::new(),
    };
    model.visit(&mut saver);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = saver
        .entries
        .into_iter()
        .map(|(key, shape, values)| {
            (
                key,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(key, shape, data)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|view| (key.clone(), view))
                .map_err(|e| Error::weights(dir, format!("key {key}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let serialized = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::weights(dir, e.to_string()))?;
    write_atomic(&dir.join("model.safetensors"), &serialized)?;
    let config = serde_json::to_vec_pretty(&model.config.to_hf_json())
        .map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomic(&dir.join("config.json"), &config)
}

/// A classification head as safetensors, written atomically: `weight` `[classes, projection_dim]`
/// and `bias` `[classes]`, f32, logits = normalise(image)·weightᵀ + bias (the logit scale is in
/// the weight: see [`crate::methods::head`]).
pub fn save_head(path: &Path, head: &ClassHead) -> Result<()> {
    let mut buffers = Vec::new();
    for (name, data) in [
        ("weight", head.weight.clone().into_data()),
        ("bias", head.bias.clone().into_data()),
    ] {
        let shape = data.shape().to_vec();
        let values: Vec<f32> = data
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::weights(path, format!("reading the head back: {e:?}")))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name, shape, bytes));
    }
    let mut views = Vec::new();
    for (name, shape, bytes) in &buffers {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::weights(path, e.to_string()))?;
        views.push((name.to_string(), view));
    }
    let metadata = HashMap::from([(
        "logits".to_string(),
        "normalise(image) @ weight.T + bias".to_string(),
    )]);
    let data = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::weights(path, e.to_string()))?;
    write_atomic(path, &data)
}

/// Read a head written by [`save_head`], in any float dtype the checkpoints may use. A head
/// without `bias` is refused: flyp wrote those before the logit scale moved into the weight
/// (2026-12), and they would read as a head s times too flat.
pub fn load_head(path: &Path, device: &Device) -> Result<ClassHead> {
    let checkpoint = Checkpoint::read(path)?;
    let get = |name: &str| {
        checkpoint.tensors.get(name).ok_or_else(|| {
            Error::weights(
                path,
                format!(
                    "no \"{name}\" tensor (a head needs weight [classes, dim] and bias [classes]; \
                     heads without a bias are from an older flyp: train again)"
                ),
            )
        })
    };
    let (weight, bias) = (get("weight")?, get("bias")?);
    let [rows, cols] = weight.shape[..] else {
        return Err(Error::weights(
            path,
            format!("weight has shape {:?}, expected 2 dimensions", weight.shape),
        ));
    };
    if bias.shape != [rows] {
        return Err(Error::weights(
            path,
            format!("bias has shape {:?}, expected [{rows}]", bias.shape),
        ));
    }
    Ok(ClassHead {
        weight: Tensor::from_data(TensorData::new(weight.values.clone(), [rows, cols]), device),
        bias: Tensor::from_data(TensorData::new(bias.values.clone(), [rows]), device),
    })
}

pub use crate::run_dir::write_atomic;

/// Guess a config from tensor shapes, for a bare `.safetensors` without a `config.json` beside it.
/// Heads are taken as width / 64 (every OpenAI and LAION CLIP); the activation is quick_gelu.
pub fn infer_config(checkpoint: &Checkpoint, path: &Path) -> Result<ClipConfig> {
    let shapes = checkpoint.shapes();
    let get = |key: &str| -> Result<Vec<usize>> {
        shapes.get(key).map(|s| s.to_vec()).ok_or_else(|| {
            Error::weights(
                path,
                format!("missing key {key}: cannot infer the model's sizes without a config.json"),
            )
        })
    };
    let count_layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                shapes.contains_key(
                    format!("{prefix}.encoder.layers.{i}.layer_norm1.weight").as_str(),
                )
            })
            .count()
    };
    let token = get("text_model.embeddings.token_embedding.weight")?;
    let text_pos = get("text_model.embeddings.position_embedding.weight")?;
    let text_fc1 = get("text_model.encoder.layers.0.mlp.fc1.weight")?;
    let patch = get("vision_model.embeddings.patch_embedding.weight")?;
    let vis_pos = get("vision_model.embeddings.position_embedding.weight")?;
    let vis_fc1 = get("vision_model.encoder.layers.0.mlp.fc1.weight")?;
    let proj = get("visual_projection.weight")?;
    let side = ((vis_pos[0].saturating_sub(1)) as f64).sqrt().round() as usize;
    let mut config = ClipConfig {
        projection_dim: proj[0],
        ..ClipConfig::default()
    };
    let t = &mut config.text_config;
    t.vocab_size = token[0];
    t.hidden_size = token[1];
    t.max_position_embeddings = text_pos[0];
    t.intermediate_size = text_fc1[0];
    t.num_hidden_layers = count_layers("text_model");
    t.num_attention_heads = (token[1] / 64).max(1);
    let v = &mut config.vision_config;
    v.hidden_size = patch[0];
    v.num_channels = patch[1];
    v.patch_size = patch[2];
    v.image_size = side * patch[2];
    v.intermediate_size = vis_fc1[0];
    v.num_hidden_layers = count_layers("vision_model");
    v.num_attention_heads = (patch[0] / 64).max(1);
    config
        .validate()
        .map_err(|reason| Error::config(path, reason))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_hf_names() {
        let stack = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let s = stack(&[
            ("vision_model", "Struct:ClipModel"),
            ("pre_layrnorm", "Struct:VisionTransformer"),
            ("gamma", "Struct:LayerNorm"),
        ]);
        assert_eq!(
            hf_key(&s),
            ("vision_model.pre_layrnorm.weight".to_string(), false)
        );
        let s = stack(&[
            ("text_projection", "Struct:ClipModel"),
            ("weight", "Struct:Linear"),
        ]);
        assert_eq!(hf_key(&s), ("text_projection.weight".to_string(), true));
        let s = stack(&[("logit_scale", "Struct:ClipModel")]);
        assert_eq!(hf_key(&s), ("logit_scale".to_string(), false));
    }

    #[test]
    fn transpose_moves_every_element() {
        let m: Vec<f32> = (0..6).map(|x| x as f32).collect(); // [[0,1,2],[3,4,5]]
        assert_eq!(transpose_2d(&m, 2, 3), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
