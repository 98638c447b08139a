//! `results.json` of a `flyp train` run, one type for writing and reading: the CLI's `train`
//! writes it, `compare` and `demo` read it back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Metrics;
use super::engine::EpochReport;
use crate::error::{Error, Result};

/// What a finished run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    /// [`RunResults::SCHEMA`].
    pub schema: u32,
    pub method: String,
    pub classes: Vec<String>,
    /// The epoch kept (best validation top-1); 1 for the linear probe, which has no epochs.
    pub best_epoch: usize,
    /// Every evaluation set's metrics at the best epoch, by set name.
    pub best: BTreeMap<String, Metrics>,
    pub epochs: Vec<EpochReport>,
    /// The linear probe (the linear-probe method and LP-FT's first stage).
    #[serde(default)]
    pub probe: Option<ProbeResults>,
}

/// The linear probe's choice and metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResults {
    /// The L2 strength chosen on validation.
    pub l2: f64,
    /// (L2, validation top-1) of every strength tried.
    pub sweep: Vec<(f64, f64)>,
    pub evals: Vec<(String, Metrics)>,
}

impl RunResults {
    pub const SCHEMA: u32 = 1;

    /// Read `path`, naming it in any error.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let results: Self = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}: not a run's results ({e})", path.display()))
        })?;
        if results.schema != Self::SCHEMA {
            return Err(Error::Invalid(format!(
                "{}: results schema {}, this flyp reads {}",
                path.display(),
                results.schema,
                Self::SCHEMA
            )));
        }
        Ok(results)
    }

    /// Write `path` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        crate::run_dir::write_atomic(path, &text)
    }

    /// Top-1 of set `name` at every epoch, as (epoch, top-1); NaN where the set is missing.
    pub fn top1_by_epoch(&self, name: &str) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .map(|e| {
                let top1 = e
                    .evals
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(f64::NAN, |(_, m)| m.top1);
                (e.epoch, top1)
            })
            .collect()
    }
}
