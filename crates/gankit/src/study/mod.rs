//! Studies: runs side by side. `runs` reads run folders, `stats` the mean ± std over seeds
//! and the loss-oscillation statistic, `compare` the table and figures, `html` the
//! self-contained report page.

pub mod compare;
mod html;
pub mod runs;
pub mod spec;
pub mod stats;
