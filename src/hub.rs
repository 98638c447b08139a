//! Hugging Face Hub downloads: a model id such as `openai/clip-vit-base-patch32` becomes a local
//! HF folder (`config.json`, `model.safetensors`, the tokenizer and preprocessor files) in a cache,
//! file by file with progress. Each file is written under a temporary name and renamed, and the
//! folder is marked complete last, so an interrupted download is never taken for a model. Offline,
//! the error says so in one line.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// The files of a CLIP folder: (name, required).
pub const FILES: [(&str, bool); 4] = [
    ("config.json", true),
    ("model.safetensors", true),
    ("tokenizer.json", false),
    ("preprocessor_config.json", false),
];

/// Written into a model's folder after its last file.
const COMPLETE: &str = ".flyp-download-complete";

/// The Hub's address: `HF_ENDPOINT` (as the Python tools read it), else huggingface.co.
pub fn default_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
}

/// Where downloads go: `FLYP_CACHE`, else `~/.cache/flyp/hub` (`%LOCALAPPDATA%` on Windows).
pub fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLYP_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    home.join("flyp").join("hub")
}

/// Whether `text` reads as a Hub model id (`owner/name`, letters, digits, `-`, `_`, `.`) rather
/// than a path that exists.
pub fn is_model_id(text: &str) -> bool {
    let valid = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let mut parts = text.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if valid(a) && valid(b))
        && !Path::new(text).exists()
}

/// The cache folder of model `id`.
pub fn folder(cache: &Path, id: &str) -> PathBuf {
    cache.join(id.replace('/', "--"))
}

/// How far a download is.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub file: String,
    /// Bytes of this file so far, and its size when the server said.
    pub done: u64,
    pub total: Option<u64>,
}

/// Download model `id` from `endpoint` into `cache` (nothing is fetched if a complete copy is
/// there) and return its folder. `progress` is called as bytes arrive; `stop` cancels between
/// chunks. Optional files the repository lacks are skipped.
pub fn download(
    endpoint: &str,
    id: &str,
    cache: &Path,
    progress: &mut dyn FnMut(&Progress),
    stop: Option<&AtomicBool>,
) -> Result<PathBuf> {
    if !is_model_id(id) {
        return Err(Error::Download {
            what: id.into(),
            reason: "not a Hub model id (expected owner/name, e.g. openai/clip-vit-base-patch32)"
                .into(),
        });
    }
    let dir = folder(cache, id);
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
        .timeout_recv_body(Some(std::time::Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    for (file, required) in FILES {
        let url = format!(
            "{}/{id}/resolve/main/{file}",
            endpoint.trim_end_matches('/')
        );
        let failed = |reason: String| Error::Download {
            what: format!("{id} ({file})"),
            reason,
        };
        let response = agent
            .get(&url)
            .call()
            .map_err(|e| failed(unreachable(endpoint, &e)))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            404 if !required => continue,
            404 => {
                return Err(failed(format!(
                    "not found at {url} (no such model, or it has no {file})"
                )));
            }
            401 | 403 => {
                return Err(failed(format!(
                    "{url} needs a login (a gated or private model): download it with the \
                     Hugging Face tools and choose the folder"
                )));
            }
            other => return Err(failed(format!("{url} answered HTTP {other}"))),
        }
        let total = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let target = dir.join(file);
        let tmp = dir.join(format!(".{file}.part"));
        let mut body = response.into_body();
        let mut state = Progress {
            file: file.into(),
            done: 0,
            total,
        };
        // Whatever goes wrong, the partial file goes; only a whole file is renamed into place.
        if let Err(e) = write_part(
            &mut body.as_reader(),
            &tmp,
            &mut state,
            progress,
            stop,
            &failed,
        ) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
    }
    crate::model::weights::write_atomic(&dir.join(COMPLETE), id.as_bytes())?;
    Ok(dir)
}

/// Copy a response body into `tmp` with progress, checking its length against what the server
/// announced; `failed` turns a reason into the download's error.
fn write_part(
    reader: &mut impl Read,
    tmp: &Path,
    state: &mut Progress,
    progress: &mut dyn FnMut(&Progress),
    stop: Option<&AtomicBool>,
    failed: &dyn Fn(String) -> Error,
) -> Result<()> {
    let mut out = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    let mut buffer = vec![0u8; 1 << 16];
    progress(state);
    loop {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Err(failed("download cancelled".into()));
        }
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(failed(format!(
                    "the connection broke after {} bytes: {e}",
                    state.done
                )));
            }
        };
        out.write_all(&buffer[..n]).map_err(|e| Error::io(tmp, e))?;
        state.done += n as u64;
        progress(state);
    }
    if let Some(total) = state.total
        && state.done != total
    {
        return Err(failed(format!("got {} of {total} bytes", state.done)));
    }
    out.sync_all().map_err(|e| Error::io(tmp, e))
}

/// One line for a request that got no answer.
fn unreachable(endpoint: &str, e: &ureq::Error) -> String {
    format!(
        "cannot reach {endpoint} ({e}): offline? Download the model folder on a connected \
         machine and choose it as a local folder"
    )
}

/// Whether a path names something to be found on disk rather than a Hub id: it has a `.`/`..`
/// part, is absolute, or its first part exists here.
pub fn looks_local(text: &str) -> bool {
    let path = Path::new(text);
    let mut parts = path.components();
    match parts.next() {
        Some(std::path::Component::Normal(first)) => Path::new(first).exists(),
        Some(_) => true,
        None => false,
    }
}
