//! The library's one error type. Every variant names the file, key or value at fault, so the CLI
//! and the app can print it as a single line.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the library, each naming what is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a CLIP model: {reason}")]
    NotAModel { path: PathBuf, reason: String },

    #[error("{path}: invalid config: {reason}")]
    Config { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    Weights { path: PathBuf, reason: String },

    #[error("{path}: cannot read image: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("device: {0}")]
    Device(String),

    #[error("{0}")]
    Invalid(String),

    /// A Hub download failed: the model id (or file URL) and why.
    #[error("{what}: {reason}")]
    Download { what: String, reason: String },
    /// A run was stopped by its caller (the app's Stop button); its last epoch checkpoint stays.
    #[error("stopped at epoch {epoch} step {step}; the last finished epoch's checkpoint is kept")]
    Stopped { epoch: usize, step: usize },
}

/// The library's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A weights problem in `path`.
    pub fn weights(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Self::Weights {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A config problem in `path`.
    pub fn config(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Self::Config {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }
}
