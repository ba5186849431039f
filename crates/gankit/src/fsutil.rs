//! File writes that never leave a half-written file behind.

use std::io::Write;
use std::path::Path;

use crate::Result;
use crate::error::IoContext;

/// Write `bytes` to `path` through a temporary file in the same directory, flushed to disk
/// and renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
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
