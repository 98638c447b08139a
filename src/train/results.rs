//! `results.json` of a run, one type for writing and reading: the recipe runner writes it into a
//! run folder (`flyp train`, `compare`, `demo`, the app's run folder), `compare` and `demo` read it
//! back, and the app's Export writes it with the WiSE-FT points it computed.

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
    /// WiSE-FT points computed for this run (the app's Export), by α.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wise: Vec<WisePoint>,
    /// The α the exported model was written at (the app's Export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_alpha: Option<f64>,
}

/// Every set's metrics of the model at one WiSE-FT α.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WisePoint {
    pub alpha: f64,
    pub sets: BTreeMap<String, Metrics>,
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
    /// 2 added `wise` and `exported_alpha` (both optional); schema 1 files read as they are.
    pub const SCHEMA: u32 = 2;

    /// Read `path` (schema 1 or 2), naming it in any error.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let results: Self = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}: not a run's results ({e})", path.display()))
        })?;
        if !(1..=Self::SCHEMA).contains(&results.schema) {
            return Err(Error::Invalid(format!(
                "{}: results schema {}, this flyp reads 1 to {}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_1_files_still_read_and_unknown_schemas_are_refused() {
        let dir = std::env::temp_dir().join(format!("flyp-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        let metrics = r#"{"images": 2, "top1": 0.5, "macro_f1": 0.4, "precision": [1.0, 0.0],
            "recall": [0.5, 0.0], "confusion": [[1, 1], [0, 0]]}"#;
        let old = format!(
            r#"{{"schema": 1, "method": "finetune", "classes": ["a", "b"], "best_epoch": 1,
            "best": {{"val": {metrics}}}, "epochs": [], "probe": null}}"#
        );
        std::fs::write(&path, &old).unwrap();
        let results = RunResults::read(&path).expect("schema 1 reads");
        assert_eq!(results.schema, 1);
        assert_eq!(results.best["val"].top1, 0.5);
        assert!(results.wise.is_empty() && results.exported_alpha.is_none());
        // Written again it is schema 2 with the same numbers.
        let mut again = results.clone();
        again.schema = RunResults::SCHEMA;
        again.exported_alpha = Some(0.5);
        again.write(&path).unwrap();
        let back = RunResults::read(&path).unwrap();
        assert_eq!((back.schema, back.exported_alpha), (2, Some(0.5)));
        std::fs::write(&path, old.replace(r#""schema": 1"#, r#""schema": 3"#)).unwrap();
        let e = RunResults::read(&path).unwrap_err().to_string();
        assert!(e.contains("schema 3") && e.contains("results.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
