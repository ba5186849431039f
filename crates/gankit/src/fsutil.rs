//! File writes that never leave a half-written file behind, and gankit's home folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;
use crate::error::IoContext;

/// Write `bytes` to `path` through a temporary file in the same directory, flushed to disk
/// and renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)
    })();
    if written.is_err() {
        // A full disk leaves no partial temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::rename(&tmp, path).at(path)
}

/// A temporary name beside `path`, unique to this process and call, so two processes
/// writing the same file (a shared cache) never write into each other's temporary file.
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{k}.tmp", std::process::id()))
}

/// gankit's folder for what it keeps between runs (evaluators, data caches):
/// `$GANKIT_HOME`, else `~/.local/share/gankit`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("GANKIT_HOME") {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    base.join(".local/share/gankit")
}

/// Bytes of the files under `dir`, recursively (links not followed; what cannot be read
/// counts nothing).
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
