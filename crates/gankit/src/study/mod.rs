//! Studies: runs side by side. `runs` reads run folders, `stats` the mean ± std over seeds
//! and the loss-oscillation statistic, `compare` the table and figures, `html` the
//! self-contained report page.

pub mod compare;
mod html;
pub mod runs;
pub mod settings;
pub mod spec;
pub mod stats;

/// Bytes a study folder (or any folder) takes on disk, for `gankit sweep`'s last line.
pub fn disk_usage(dir: &std::path::Path) -> u64 {
    crate::fsutil::tree_size(dir)
}
