//! Dataset folders as users drop them in: `DIR/<class>/<images>`, `DIR/{train,val,test}/<class>/…`,
//! or a CSV manifest (`path,label[,caption]`). Every file is decoded once while scanning (in
//! parallel), so a scan reports each unusable file with its reason; hidden files are ignored and
//! symlink loops are survived.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::transform::decode_image;
use crate::error::{Error, Result};

/// One usable image and its class index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
    /// Pixel size (width, height) as decoded.
    pub size: (u32, u32),
    /// A caption from a CSV manifest, if it had one.
    pub caption: Option<String>,
}

/// A file that was left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What a scan found.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub root: PathBuf,
    /// "class folders", "train/val/test folders" or "csv manifest".
    pub layout: String,
    /// Class names in label order (sorted folder names, or sorted CSV labels).
    pub classes: Vec<String>,
    pub train: Vec<Sample>,
    /// Present when the folder had its own validation split.
    pub val: Option<Vec<Sample>>,
    pub test: Option<Vec<Sample>>,
    pub skipped: Vec<Skipped>,
    /// Things worth knowing that are not errors (empty folders, imbalance).
    pub warnings: Vec<String>,
    /// The name each class is prompted with, in label order: from a `classnames.txt` in the
    /// dataset folder (`folder,name` per line) where it has the class, else [`prompt_name`].
    pub prompt_names: Vec<String>,
}

/// Images smaller than this many pixels on a side are named in a warning.
pub const TINY_IMAGE: u32 = 16;

/// Names a split folder may have.
const SPLITS: [(&str, &[&str]); 3] = [
    ("train", &["train", "training"]),
    ("val", &["val", "valid", "validation"]),
    ("test", &["test", "testing"]),
];

impl Scan {
    /// Scan `path`: a folder of class folders, a folder with train/val/test folders, or a CSV file.
    pub fn folder(path: &Path) -> Result<Self> {
        let not_found = |reason: &str| Error::Invalid(format!("{}: {reason}", path.display()));
        if !path.exists() {
            return Err(not_found("no such file or directory"));
        }
        if path.is_file() {
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                return Self::csv(path);
            }
            return Err(not_found("not a folder or a .csv manifest"));
        }
        let subdirs = visible_dirs(path)?;
        let split_dir = |names: &[&str]| {
            subdirs.iter().find(|d| {
                d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| names.iter().any(|s| n.eq_ignore_ascii_case(s)))
            })
        };
        let splits: Vec<(&str, Option<&PathBuf>)> = SPLITS
            .iter()
            .map(|(name, names)| (*name, split_dir(names)))
            .collect();
        if let Some(train) = splits[0].1 {
            let mut scan = class_folders(train, path, "train/val/test folders")?;
            for (name, dir) in &splits[1..] {
                if let Some(dir) = dir {
                    let part = class_folders(dir, path, "")?;
                    let samples = relabel(part.train, &part.classes, &scan.classes, dir)?;
                    scan.skipped.extend(part.skipped);
                    scan.warnings.extend(part.warnings);
                    if *name == "val" {
                        scan.val = Some(samples);
                    } else {
                        scan.test = Some(samples);
                    }
                }
            }
            scan.check_classes()?;
            scan.read_classnames(path)?;
            return Ok(scan);
        }
        let mut scan = class_folders(path, path, "class folders")?;
        scan.check_classes()?;
        scan.read_classnames(path)?;
        Ok(scan)
    }

    /// A CSV manifest: `path,label[,caption]` per line, an optional header, paths relative to the
    /// manifest's folder.
    pub fn csv(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // Spreadsheet programs often save UTF-8 with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let base = path.parent().unwrap_or(Path::new("."));
        let mut rows = Vec::new();
        // The first line of each (path, caption), and the lines that repeat one. An image listed
        // once per caption (pretraining pairs) is not a repeat.
        let mut first_line: HashMap<(PathBuf, Option<String>), usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let fields = split_csv_line(line);
            if fields.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if n == 0
                && fields
                    .first()
                    .is_some_and(|f| f.trim().eq_ignore_ascii_case("path"))
            {
                continue; // header
            }
            if fields.len() < 2 || fields[1].trim().is_empty() {
                return Err(Error::Invalid(format!(
                    "{} line {}: expected `path,label[,caption]`, got {line:?}",
                    path.display(),
                    n + 1
                )));
            }
            let caption = fields
                .get(2)
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty());
            let file = base.join(fields[0].trim());
            let key = (file.clone(), caption.clone());
            if let Some(&first) = first_line.get(&key) {
                // A repeated row would put one image in both training and validation.
                repeats.push((n + 1, first));
                continue;
            }
            first_line.insert(key, n + 1);
            rows.push((file, fields[1].trim().to_string(), caption));
        }
        let classes: Vec<String> = rows
            .iter()
            .map(|(_, l, _)| l.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let files: Vec<(PathBuf, usize, Option<String>)> = rows
            .into_iter()
            .map(|(p, l, c)| {
                let label = classes.iter().position(|x| *x == l).unwrap_or(0);
                (p, label, c)
            })
            .collect();
        let (train, skipped) = decode_all(files);
        let mut scan = Scan {
            root: path.to_path_buf(),
            layout: "csv manifest".into(),
            classes,
            train,
            val: None,
            test: None,
            skipped,
            warnings: Vec::new(),
            prompt_names: Vec::new(),
        };
        if let Some((line, first)) = repeats.first() {
            scan.warnings.push(format!(
                "{}: {} row(s) repeat an earlier row's path and caption and were dropped (line {line} repeats \
                 line {first})",
                path.display(),
                repeats.len()
            ));
        }
        scan.check_classes()?;
        scan.read_classnames(base)?;
        Ok(scan)
    }

    /// Prompt names from `dir/classnames.txt` (`folder,name` per line; `#` comments), falling back
    /// to the folder name with underscores as spaces. A line naming no class is a warning.
    fn read_classnames(&mut self, dir: &Path) -> Result<()> {
        self.prompt_names = self.classes.iter().map(|c| prompt_name(c)).collect();
        let file = dir.join("classnames.txt");
        if !file.is_file() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((folder, name)) = line.split_once(',') else {
                return Err(Error::Invalid(format!(
                    "{} line {}: expected `folder,name`, got {line:?}",
                    file.display(),
                    n + 1
                )));
            };
            match self.classes.iter().position(|c| c == folder.trim()) {
                Some(i) => self.prompt_names[i] = name.trim().to_string(),
                None => self.warnings.push(format!(
                    "{} line {}: '{}' is not a class here",
                    file.display(),
                    n + 1,
                    folder.trim()
                )),
            }
        }
        Ok(())
    }

    /// Usable images per class, in label order.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in &self.train {
            counts[s.label] += 1;
        }
        counts
    }

    /// The errors that make a folder unusable for training, and the imbalance warning.
    fn check_classes(&mut self) -> Result<()> {
        let root = self.root.display();
        if self.train.is_empty() {
            return Err(Error::Invalid(format!(
                "{root}: no usable image ({} file(s) skipped); expected class folders of images",
                self.skipped.len()
            )));
        }
        let counts = self.counts();
        if let Some(empty) = counts.iter().position(|&c| c == 0) {
            return Err(Error::Invalid(format!(
                "{root}: class '{}' has no usable image (see the skipped files)",
                self.classes[empty]
            )));
        }
        if self.classes.len() < 2 {
            return Err(Error::Invalid(format!(
                "{root}: only one class ('{}'); a classifier needs at least two",
                self.classes.first().map(String::as_str).unwrap_or("")
            )));
        }
        let (min, max) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        if max >= 3 * min.max(1) {
            let small = self.classes[counts.iter().position(|&c| c == min).unwrap_or(0)].clone();
            let large = self.classes[counts.iter().position(|&c| c == max).unwrap_or(0)].clone();
            self.warnings.push(format!(
                "imbalanced: '{large}' has {max} images, '{small}' only {min}"
            ));
        }
        let all = self
            .train
            .iter()
            .chain(self.val.iter().flatten())
            .chain(self.test.iter().flatten());
        let tiny: Vec<&Sample> = all
            .filter(|s| s.size.0.min(s.size.1) < TINY_IMAGE)
            .collect();
        if let Some(first) = tiny.first() {
            self.warnings.push(format!(
                "{} image(s) smaller than {TINY_IMAGE}×{TINY_IMAGE} pixels (e.g. {}, {}×{}): they are enlarged to the model's input size and show little",
                tiny.len(),
                first.path.display(),
                first.size.0,
                first.size.1
            ));
        }
        Ok(())
    }

    /// Check an extra evaluation set against the training classes: classes the training set lacks
    /// are an error naming them; fewer classes are a warning. Returns the set relabelled to the
    /// training classes' order.
    pub fn align_to(&self, train_classes: &[String]) -> Result<(Vec<Sample>, Vec<String>)> {
        let unknown: Vec<&String> = self
            .classes
            .iter()
            .filter(|c| !train_classes.contains(c))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: classes not in the training set: {}",
                self.root.display(),
                unknown
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut warnings = Vec::new();
        if self.classes.len() < train_classes.len() {
            warnings.push(format!(
                "{}: has {} of the {} training classes",
                self.root.display(),
                self.classes.len(),
                train_classes.len()
            ));
        }
        let samples = relabel(self.train.clone(), &self.classes, train_classes, &self.root)?;
        Ok((samples, warnings))
    }
}

/// The name a class is prompted with: folder name with underscores as spaces.
pub fn prompt_name(class: &str) -> String {
    class
        .replace('_', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A seeded, stratified split of `samples` into (train, val) with `fraction` of each class (at
/// least one image per class when it has two or more) going to val.
pub fn stratified_split(
    samples: &[Sample],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<Sample>, Vec<Sample>) {
    let mut rng = crate::data::SplitMix64::new(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut items: Vec<&Sample> = samples.iter().filter(|s| s.label == class).collect();
        rng.shuffle(&mut items);
        let n_val = if items.len() >= 2 {
            ((items.len() as f64 * fraction).round() as usize).clamp(1, items.len() - 1)
        } else {
            0
        };
        val.extend(items[..n_val].iter().map(|s| (*s).clone()));
        train.extend(items[n_val..].iter().map(|s| (*s).clone()));
    }
    (train, val)
}

fn relabel(
    samples: Vec<Sample>,
    from: &[String],
    to: &[String],
    dir: &Path,
) -> Result<Vec<Sample>> {
    samples
        .into_iter()
        .map(|mut s| {
            let name = &from[s.label];
            s.label = to.iter().position(|c| c == name).ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: class '{name}' is not a training class",
                    dir.display()
                ))
            })?;
            Ok(s)
        })
        .collect()
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn visible_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !is_hidden(p))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Every visible file below `dir`, following symlinks but never the same folder twice.
fn files_below(dir: &Path, skipped: &mut Vec<Skipped>) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        match std::fs::canonicalize(&d) {
            Ok(real) if !seen.insert(real.clone()) => {
                skipped.push(Skipped {
                    path: d,
                    reason: "symlink loop (folder already visited)".into(),
                });
                continue;
            }
            Err(e) => {
                skipped.push(Skipped {
                    path: d,
                    reason: format!("cannot open folder: {e}"),
                });
                continue;
            }
            _ => {}
        }
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) => {
                skipped.push(Skipped {
                    path: d,
                    reason: format!("cannot list folder: {e}"),
                });
                continue;
            }
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if is_hidden(&path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                files.push(path);
            } else {
                skipped.push(Skipped {
                    path,
                    reason: "broken link or not a regular file".into(),
                });
            }
        }
    }
    files.sort();
    files
}

/// Decode every file (in parallel); usable ones become samples, the rest are skipped with reasons.
fn decode_all(files: Vec<(PathBuf, usize, Option<String>)>) -> (Vec<Sample>, Vec<Skipped>) {
    let results: Vec<std::result::Result<Sample, Skipped>> = files
        .into_par_iter()
        .map(|(path, label, caption)| match decode_image(&path) {
            Ok(img) => Ok(Sample {
                size: (img.width(), img.height()),
                path,
                label,
                caption,
            }),
            Err(e) => Err(Skipped {
                reason: short_reason(&e, &path),
                path,
            }),
        })
        .collect();
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for r in results {
        match r {
            Ok(s) => samples.push(s),
            Err(s) => skipped.push(s),
        }
    }
    (samples, skipped)
}

/// The error without the path (the report already names the file).
fn short_reason(error: &Error, path: &Path) -> String {
    let text = error.to_string();
    let prefix = format!("{}: ", path.display());
    let text = text.strip_prefix(&prefix).unwrap_or(&text);
    text.strip_prefix("cannot read image: ")
        .unwrap_or(text)
        .to_string()
}

fn class_folders(dir: &Path, root: &Path, layout: &str) -> Result<Scan> {
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut by_class: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for class_dir in visible_dirs(dir)? {
        let name = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = files_below(&class_dir, &mut skipped);
        if files.is_empty() {
            warnings.push(format!("{}: empty folder, ignored", class_dir.display()));
            continue;
        }
        by_class.insert(name, files);
    }
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
    {
        let path = entry.path();
        if path.is_file() && !is_hidden(&path) {
            skipped.push(Skipped {
                path,
                reason: "file outside any class folder".into(),
            });
        }
    }
    let classes: Vec<String> = by_class.keys().cloned().collect();
    let files = by_class
        .into_values()
        .enumerate()
        .flat_map(|(label, files)| files.into_iter().map(move |p| (p, label, None)))
        .collect();
    let (train, decode_skipped) = decode_all(files);
    skipped.extend(decode_skipped);
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Scan {
        root: root.to_path_buf(),
        layout: layout.into(),
        classes,
        train,
        val: None,
        test: None,
        skipped,
        warnings,
        prompt_names: Vec::new(),
    })
}

/// Split one CSV line on commas, honouring double quotes.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(f) = fields.last_mut() {
                    f.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_honour_quotes() {
        assert_eq!(
            split_csv_line(r#"a.png,cat,"a ""big"", cat""#),
            vec!["a.png", "cat", r#"a "big", cat"#]
        );
        assert_eq!(prompt_name("golden_retriever"), "golden retriever");
    }
}
