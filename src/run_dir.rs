//! Run folders: the only folders the tool writes into. A folder becomes a run folder when the tool
//! finds it new or empty and writes `run.json` (the manifest: format, version, kind, settings,
//! whether the final outputs are written) into it; any other folder is refused. While a
//! [`RunDir`] lives it holds an OS advisory lock on `RUN/.lock` (released on exit and on crash),
//! so a second process is refused. A resumed run must have the saved settings (`epochs` may
//! grow). Files are written through [`write_atomic`]: a temp file created exclusively (never
//! through an existing name or link) beside its target, then renamed into place.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "run.json";
/// The manifest's format name and version.
pub const FORMAT: &str = "flyp-run";
pub const VERSION: u32 = 1;
const LOCK: &str = ".lock";
/// Present in a model folder while it is being written; [`crate::Clip::load`] refuses such a folder.
pub const PARTIAL: &str = ".flyp-partial";
/// The settings that may differ on resume (and then only grow).
const MAY_GROW: &str = "epochs";

/// A run's settings by name: what a resume must repeat.
pub type Settings = BTreeMap<String, serde_json::Value>;

/// A path as a run's settings keep it: resolved when it exists (so a resume from another
/// working directory compares equal), else as given.
pub fn path_setting(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Settings from a JSON object of them (anything else holds none).
pub fn settings_from(json: serde_json::Value) -> Settings {
    match json {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => Settings::new(),
    }
}

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// What wrote the folder: "train", "pretrain", "compare" or "demo".
    pub kind: String,
    pub settings: Settings,
    /// The final outputs (model, head, results) are written; a run killed before this is
    /// finished by `--resume`.
    pub finished: bool,
}

/// Whether an existing run in the folder may be continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Continue it (settings checked); an empty folder starts a new run.
    Continue,
    /// Refuse it unless it holds nothing to lose (the `--resume` flag was not given).
    Refuse,
}

/// An open, locked run folder.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    manifest: Manifest,
    /// Whether an earlier process left work here (a checkpoint, outputs) that this run continues.
    pub continued: bool,
    _lock: File,
}

impl RunDir {
    /// Open `path` as a run folder of `kind`, creating it if needed.
    ///
    /// Refused: a folder that is neither new, empty, nor a run folder of this kind; `path` equal
    /// to, inside, or holding one of `inputs` (flag, path); a symbolic link anywhere in it; a
    /// folder another process holds; an existing run when `existing` is `Refuse`; a continued run
    /// whose settings differ from `settings` (each field named with both values).
    pub fn open(
        path: &Path,
        kind: &str,
        settings: Settings,
        inputs: &[(&str, &Path)],
        existing: Existing,
    ) -> Result<Self> {
        check_overlap(path, inputs)?;
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Invalid(format!(
                    "{}: a symbolic link; give the folder it points to as --out",
                    path.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::Invalid(format!(
                    "{}: not a folder; --out must be a new or empty folder, or a run folder",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?,
        }
        // Ownership before the lock: the lock file is the first thing written into the folder.
        owned_or_empty(path, kind)?;
        let lock = lock(path)?;
        let saved = owned_or_empty(path, kind)?;
        refuse_links(path, 0)?;
        remove_stale_temps(path)?;
        let has_work = saved.is_some() && holds_work(path)?;
        let manifest = match saved {
            Some(saved) if has_work => {
                if existing == Existing::Refuse {
                    return Err(Error::Invalid(format!(
                        "{} already holds a run: add --resume to continue it, or choose another --out",
                        path.display()
                    )));
                }
                check_settings(path, &saved.settings, &settings)?;
                let finished = saved.finished && grows_nothing(&saved.settings, &settings);
                Manifest {
                    settings,
                    finished,
                    ..saved
                }
            }
            _ => Manifest {
                format: FORMAT.into(),
                version: VERSION,
                kind: kind.into(),
                settings,
                finished: false,
            },
        };
        let dir = Self {
            path: path.to_path_buf(),
            manifest,
            continued: has_work,
            _lock: lock,
        };
        dir.write_manifest()?;
        Ok(dir)
    }

    /// Open a finished run folder of `kind` to add to it (`flyp wise` writes `wise.json`).
    pub fn existing(path: &Path, kind: &str) -> Result<Self> {
        let not_a_run = || {
            Error::Invalid(format!(
                "{}: not a run folder of `flyp {kind}` (no {MANIFEST})",
                path.display()
            ))
        };
        if !path.join(MANIFEST).is_file() {
            return Err(not_a_run());
        }
        let lock = lock(path)?;
        let manifest = owned_or_empty(path, kind)?.ok_or_else(not_a_run)?;
        refuse_links(path, 0)?;
        if !manifest.finished {
            return Err(Error::Invalid(format!(
                "{}: the run is not finished; finish it with `flyp {kind} --resume` (same settings)",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
            continued: true,
            _lock: lock,
        })
    }

    /// `RUN/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether the final outputs were written (and the settings did not grow since).
    pub fn finished(&self) -> bool {
        self.manifest.finished
    }

    /// Record that the final outputs are written.
    pub fn mark_finished(&mut self) -> Result<()> {
        self.manifest.finished = true;
        self.write_manifest()
    }

    fn write_manifest(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| Error::Invalid(format!("{MANIFEST}: {e}")))?;
        write_atomic(&self.path.join(MANIFEST), &json)
    }
}

/// The settings equal except `epochs`, which grew.
fn grows_nothing(saved: &Settings, now: &Settings) -> bool {
    saved.get(MAY_GROW) == now.get(MAY_GROW)
}

/// Every difference between the saved settings and these, as one error.
fn check_settings(path: &Path, saved: &Settings, now: &Settings) -> Result<()> {
    let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let null = serde_json::Value::Null;
    let mut differences = Vec::new();
    for key in keys {
        let (a, b) = (
            saved.get(key).unwrap_or(&null),
            now.get(key).unwrap_or(&null),
        );
        let allowed =
            key == MAY_GROW && matches!((a.as_u64(), b.as_u64()), (Some(a), Some(b)) if b >= a);
        if a != b && !allowed {
            differences.push(format!("{key}: saved {a}, now {b}"));
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{}: holds a run with other settings ({}); continue it with the saved settings \
         (see {MANIFEST}; epochs may grow) or choose another --out",
        path.display(),
        differences.join("; ")
    )))
}

/// `None` for an empty folder (or one holding only our lock), the manifest for a run folder of
/// `kind`, an error for anything else.
fn owned_or_empty(path: &Path, kind: &str) -> Result<Option<Manifest>> {
    let manifest_path = path.join(MANIFEST);
    if std::fs::symlink_metadata(&manifest_path).is_ok() {
        let not_ours = |why: String| {
            Error::Invalid(format!(
                "{}: {why}; --out must be a new or empty folder, or a run folder flyp wrote",
                manifest_path.display()
            ))
        };
        let text = read_regular(&manifest_path)?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| not_ours(format!("not a flyp run manifest ({e})")))?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(not_ours(format!(
                "format {} version {}, expected {FORMAT} version {VERSION}",
                manifest.format, manifest.version
            )));
        }
        if manifest.kind != kind {
            return Err(not_ours(format!(
                "a run of `flyp {}`, not of `flyp {kind}`",
                manifest.kind
            )));
        }
        return Ok(Some(manifest));
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        if entry.file_name() != LOCK {
            // Runs of flyp versions before run.json: say so, rather than only "not ours".
            let old_run = ["checkpoint", "runs", "compare.json"]
                .iter()
                .any(|n| path.join(n).exists());
            let hint = if old_run {
                " (a run of a flyp version before run folders had run.json is not continued: \
                 move it aside)"
            } else {
                ""
            };
            return Err(Error::Invalid(format!(
                "{}: not empty and not a flyp run folder (no {MANIFEST}; it holds {}); \
                 --out must be a new or empty folder, or a run folder flyp wrote{hint}",
                path.display(),
                entry.file_name().to_string_lossy()
            )));
        }
    }
    Ok(None)
}

/// Whether the folder holds anything beyond the manifest, lock and config a start writes first.
fn holds_work(path: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        let name = entry.file_name();
        if ![MANIFEST, LOCK, "config.json"].iter().any(|n| name == *n)
            && !is_temp_name(&name.to_string_lossy())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A file read whole, refusing a link or anything but a regular file.
fn read_regular(path: &Path) -> Result<String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Take the folder's lock, or say which process holds it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
        return Err(Error::Invalid(format!(
            "{}: not a regular file (a link?); flyp keeps its lock there",
            path.display()
        )));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.is_empty() {
                "another process".to_string()
            } else {
                format!("another flyp process (PID {pid})")
            };
            return Err(Error::Invalid(format!(
                "{}: in use by {holder}; wait for it to end or choose another --out",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    file.set_len(0).map_err(|e| Error::io(&path, e))?;
    file.write_all(std::process::id().to_string().as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

/// Refuse any symbolic link inside the folder (writes must not leave it).
fn refuse_links(dir: &Path, depth: usize) -> Result<()> {
    if depth > 16 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_symlink() {
            return Err(Error::Invalid(format!(
                "{}: a symbolic link inside the run folder; flyp does not write through links \
                 (remove it, or choose another --out)",
                entry.path().display()
            )));
        }
        if kind.is_dir() {
            refuse_links(&entry.path(), depth + 1)?;
        }
    }
    Ok(())
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Temp files a killed process left (ours by name; regular files only).
fn remove_stale_temps(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && is_temp_name(&entry.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// `path` made absolute with every existing part resolved (the rest appended as given).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return absolute,
        }
    }
}

/// Refuse an output folder equal to, inside, or holding an input.
pub fn check_overlap(out: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    let out_real = resolved(out);
    for (flag, input) in inputs {
        let Ok(input_real) = input.canonicalize() else {
            continue;
        };
        let inside = if input_real.is_dir() {
            out_real.starts_with(&input_real)
        } else {
            out_real == input_real
        };
        if inside {
            return Err(Error::Invalid(format!(
                "--out {} is inside {flag} {}: write the run to a folder of its own",
                out.display(),
                input.display()
            )));
        }
        if input_real.starts_with(&out_real) {
            return Err(Error::Invalid(format!(
                "--out {} holds {flag} {}: write the run to a folder of its own",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Write `bytes` to `path` through a temp file created exclusively beside it (an existing file or
/// link of the temp's name is never opened), then renamed into place: a reader sees the old file
/// or the whole new one, and a link at `path` is replaced, not followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if written.is_err() {
        // Our own temp (created exclusively above): never leave it behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Write a folder's files into `NAME.new/`, then swap it in for `NAME/` (the old one kept as
/// `NAME.old/` until the new one is in place). For the run's own folders only.
pub fn replace_dir(dir: &Path, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let new = dir.join(format!("{name}.new"));
    let old = dir.join(format!("{name}.old"));
    let target = dir.join(name);
    // remove_dir_all removes a link itself, never what it points to.
    let _ = std::fs::remove_dir_all(&new);
    std::fs::create_dir(&new).map_err(|e| Error::io(&new, e))?;
    write(&new)?;
    let _ = std::fs::remove_dir_all(&old);
    if std::fs::symlink_metadata(&target).is_ok() {
        std::fs::rename(&target, &old).map_err(|e| Error::io(&target, e))?;
    }
    std::fs::rename(&new, &target).map_err(|e| Error::io(&new, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Make `dir` for a model about to be written: it must be new or empty. Returns after writing the
/// [`PARTIAL`] marker, which [`finish_partial`] removes once every file is in place.
pub fn start_partial(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(Error::Invalid(format!(
                "{}: exists and is not a folder; write the model to a new or empty folder",
                dir.display()
            )));
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            if let Some(entry) = entries.next() {
                let entry = entry.map_err(|e| Error::io(dir, e))?;
                return Err(Error::Invalid(format!(
                    "{}: not empty (it holds {}); write the model to a new or empty folder",
                    dir.display(),
                    entry.file_name().to_string_lossy()
                )));
            }
        }
        Err(_) => std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?,
    }
    let marker = dir.join(PARTIAL);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .map_err(|e| Error::io(&marker, e))?;
    Ok(())
}

/// The model folder is complete: remove its [`PARTIAL`] marker.
pub fn finish_partial(dir: &Path) -> Result<()> {
    let marker = dir.join(PARTIAL);
    std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))
}
