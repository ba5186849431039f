//! One error type for the whole engine.
//!
//! Errors are split in two families so that a front end can map them to exit codes:
//! [`Error::is_user_error`] is true when the user can fix the problem by changing an input
//! (a config value, a path, a data file); everything else is an internal failure.

use std::path::PathBuf;

/// Result alias used across gankit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in gankit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value or file is invalid. The message says what to change.
    #[error("config: {0}")]
    Config(String),
    /// A data set could not be found or read. The message says what to change.
    #[error("data: {0}")]
    Data(String),
    /// A run directory or checkpoint is missing, incomplete or does not match.
    #[error("run: {0}")]
    Run(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}{}", path.display(), storage_hint(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tensor operation failed (a bug, or out of memory).
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Training produced a non-finite value.
    #[error("diverged: {0}")]
    Diverged(String),
}

impl Error {
    /// True when the user can fix the problem by changing an input.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::Config(_) | Error::Data(_) | Error::Run(_) | Error::Io { .. }
        )
    }

    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// What to do about a write the disk refused (full, quota, file size limit, read-only,
/// permission); nothing for other errors.
fn storage_hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match e.kind() {
        StorageFull | QuotaExceeded | FileTooLarge => {
            " (free some space, then `gankit resume RUN_DIR` continues from the last complete checkpoint, which is intact)"
        }
        PermissionDenied | ReadOnlyFilesystem => {
            " (make the run directory writable or choose another --out; nothing written before was changed)"
        }
        _ => "",
    }
}

/// Attach a path to `std::io` errors: `fs::read(&p).at(&p)?`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl AsRef<std::path::Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| Error::io(path.as_ref(), e))
    }
}
