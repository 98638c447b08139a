//! Per-epoch checkpoints of a run folder, for `--resume`: `checkpoint/` holds the model, the head
//! (FT), the optimizer state and `state.json` (epoch, step, generator state, best epoch, reports);
//! `best/` holds the best epoch's model and head. A checkpoint is written into `checkpoint.new/`
//! and swapped in by renames, so a crash never leaves a half-written one: at worst the previous
//! checkpoint is found in `checkpoint.old/`.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::engine::EpochReport;
use crate::error::{Error, Result};
use crate::methods::head::Head;
use crate::model::ClipModel;

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The template generator's state.
    pub rng: u64,
    pub best_epoch: usize,
    pub best_score: f64,
    pub reports: Vec<EpochReport>,
}

/// A model, head and optimizer read back from a checkpoint.
pub struct Saved {
    pub model: ClipModel,
    pub head: Option<Head>,
    pub optim: ModuleOptimizer,
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {e}", path.display()))
}

/// The checkpoint folder to read: `checkpoint/`, else a `checkpoint.old/` left by a crash.
fn current(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.old"))]
        .into_iter()
        .find(|p| p.join("state.json").is_file() || p.join("model.bpk").is_file())
}

/// Whether `dir` holds a checkpoint a run can continue from (looks at files only).
pub fn exists(dir: &Path) -> bool {
    current(dir, "checkpoint").is_some()
}

/// The state of the last checkpoint, if there is one.
pub fn read_state(dir: &Path) -> Result<Option<State>> {
    let Some(folder) = current(dir, "checkpoint") else {
        return Ok(None);
    };
    let path = folder.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

use crate::run_dir::replace_dir as write_swapped;

fn save_model(folder: &Path, model: &ClipModel, head: Option<&Head>) -> Result<()> {
    let path = folder.join("model.bpk");
    model
        .clone()
        .save_file(&path)
        .map_err(|e| record_error(&path, e))?;
    if let Some(head) = head {
        let path = folder.join("head.bpk");
        head.clone()
            .save_file(&path)
            .map_err(|e| record_error(&path, e))?;
    }
    Ok(())
}

/// Save the end-of-epoch checkpoint.
pub fn save(
    dir: &Path,
    model: &ClipModel,
    head: Option<&Head>,
    optim: &ModuleOptimizer,
    state: &State,
) -> Result<()> {
    write_swapped(dir, "checkpoint", |folder| {
        save_model(folder, model, head)?;
        let path = folder.join("optimizer.bpk");
        optim.save(&path).map_err(|e| record_error(&path, e))?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::model::weights::write_atomic(&folder.join("state.json"), &json)
    })
}

/// Save the best epoch's model (and head).
pub fn save_best(dir: &Path, model: &ClipModel, head: Option<&Head>) -> Result<()> {
    write_swapped(dir, "best", |folder| save_model(folder, model, head))
}

fn load_model(
    folder: &Path,
    model: ClipModel,
    head: Option<Head>,
) -> Result<(ClipModel, Option<Head>)> {
    let path = folder.join("model.bpk");
    let model = model
        .try_load_file(&path)
        .map_err(|e| record_error(&path, e))?;
    let head = match head {
        Some(h) => {
            let path = folder.join("head.bpk");
            Some(h.try_load_file(&path).map_err(|e| record_error(&path, e))?)
        }
        None => None,
    };
    Ok((model, head))
}

/// Read the last checkpoint into `model`, `head` and `optim` (which give structure and devices).
pub fn load(
    dir: &Path,
    model: ClipModel,
    head: Option<Head>,
    optim: ModuleOptimizer,
) -> Result<Saved> {
    let folder = current(dir, "checkpoint").ok_or_else(|| {
        Error::Invalid(format!("{}: no checkpoint to resume from", dir.display()))
    })?;
    let (model, head) = load_model(&folder, model, head)?;
    let path = folder.join("optimizer.bpk");
    let optim = optim.load(&path).map_err(|e| record_error(&path, e))?;
    Ok(Saved { model, head, optim })
}

/// Read the best epoch's model and head.
pub fn load_best(
    dir: &Path,
    model: ClipModel,
    head: Option<Head>,
) -> Result<(ClipModel, Option<Head>)> {
    let folder = current(dir, "best")
        .ok_or_else(|| Error::Invalid(format!("{}: no best/ model", dir.display())))?;
    load_model(&folder, model, head)
}
