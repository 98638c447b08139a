//! A run's data: the classes, the training images and the named evaluation sets, built from
//! folders the same way for `flyp train`, `flyp compare`, `flyp demo` and the app.

use std::path::{Path, PathBuf};

use crate::data::folder::stratified_split;
use crate::data::{Sample, Scan};
use crate::error::{Error, Result};

/// The classes and the image sets of a run.
pub struct TrainData {
    pub classes: Vec<String>,
    pub prompt_names: Vec<String>,
    pub train: Vec<Sample>,
    /// Evaluation sets by name ("val", "test", OOD sets), evaluated every epoch.
    pub evals: Vec<(String, Vec<Sample>)>,
}

impl TrainData {
    /// The data of a run from folders: the training folder (any layout `flyp scan` reads), its
    /// validation set (`val`, else the folder's val split, else a seeded stratified 10 % of the
    /// training images), its test set (`test`, else the folder's test split, if any) and extra
    /// named sets, all aligned to the training classes. Returns the scans' warnings too.
    pub fn from_folders(
        train: &Path,
        val: Option<&Path>,
        test: Option<&Path>,
        evals: &[(String, PathBuf)],
        seed: u64,
    ) -> Result<(Self, Vec<String>)> {
        check_eval_names(evals)?;
        let scan = Scan::folder(train)?;
        let mut warnings = scan.warnings.clone();
        if !scan.skipped.is_empty() {
            warnings.push(format!(
                "{}: skipped {} file(s) that are not usable images (`flyp scan {}` lists each and why)",
                train.display(),
                scan.skipped.len(),
                train.display()
            ));
        }
        let mut aligned = |dir: &Path| -> Result<Vec<Sample>> {
            let (samples, w) = Scan::folder(dir)?.align_to(&scan.classes)?;
            warnings.extend(w);
            Ok(samples)
        };
        let (train_samples, val_samples) = match (val, &scan.val) {
            (Some(dir), _) => (scan.train.clone(), aligned(dir)?),
            (None, Some(v)) => (scan.train.clone(), v.clone()),
            (None, None) => stratified_split(&scan.train, scan.classes.len(), 0.1, seed),
        };
        let mut sets = vec![("val".to_string(), val_samples)];
        match (test, &scan.test) {
            (Some(dir), _) => sets.push(("test".into(), aligned(dir)?)),
            (None, Some(t)) => sets.push(("test".into(), t.clone())),
            _ => {}
        }
        let (named, w) = named_sets(evals, &scan.classes)?;
        sets.extend(named);
        warnings.extend(w);
        let data = Self {
            classes: scan.classes.clone(),
            prompt_names: scan.prompt_names.clone(),
            train: train_samples,
            evals: sets,
        };
        Ok((data, warnings))
    }
}

/// An evaluation set: its name and images.
pub type NamedSet = (String, Vec<Sample>);

/// Named extra sets (`--eval NAME=DIR`) scanned and aligned to `classes` (the names checked by
/// [`check_eval_names`]), and the scans' warnings: `flyp train`, `flyp eval` and `flyp pretrain`
/// all read them so.
pub fn named_sets(
    evals: &[(String, PathBuf)],
    classes: &[String],
) -> Result<(Vec<NamedSet>, Vec<String>)> {
    check_eval_names(evals)?;
    let mut warnings = Vec::new();
    let mut sets = Vec::new();
    for (name, dir) in evals {
        let (samples, w) = Scan::folder(dir)?.align_to(classes)?;
        warnings.extend(w);
        sets.push((name.clone(), samples));
    }
    Ok((sets, warnings))
}

/// Refuse `--eval` names that would overwrite another set's results (which are keyed by name):
/// a name used twice, or one of the run's own sets (`train`, `val`, `test`, `all`).
pub fn check_eval_names(evals: &[(String, PathBuf)]) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for (name, dir) in evals {
        if ["train", "val", "test", "all"].contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "--eval {name}={}: \"{name}\" names one of the run's own sets; choose another name",
                dir.display()
            )));
        }
        if names.contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "--eval {name}={}: a second set named \"{name}\"; give each --eval its own name",
                dir.display()
            )));
        }
        names.push(name);
    }
    Ok(())
}
