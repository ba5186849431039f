//! Sample-quality metrics: pure functions over feature matrices (one row per image), in f64.
//!
//! | metric | reference |
//! |---|---|
//! | [`fid()`] | Heusel et al. 2017 (pytorch-fid's formula, SciPy-exact matrix square root) |
//! | [`kid()`] | Bińkowski et al. 2018: unbiased MMD², kernel (x·y/d + 1)³, averaged over subsets |
//! | [`precision_recall`] | Kynkäänniemi et al. 2019, k = 3 |
//! | [`density_coverage`] | Naeem et al. 2020, k = 5 |
//! | [`inception_score`] | Salimans et al. 2016, on any classifier's probabilities |
//! | [`modes`] | class histogram and classes covered (a mode-collapse detector) |
//!
//! Features come from an extractor (a classifier's penultimate layer, later Inception-v3);
//! these functions do not care which.

pub mod assignment;
mod fid;
mod kid;
mod knn;
mod linalg;
pub mod lipschitz;
pub mod modes;
pub mod probe;
mod score;

pub use fid::{GaussianStats, fid, fid_from_stats, live_dimensions, sqrtm_psd};
pub use kid::{kid, kid_unbiased};
pub use knn::{density_coverage, knn_radii, nearest_rows, precision_recall};
pub use score::inception_score;

use nalgebra::DMatrix;

/// The most probable class of each row of probabilities (n, classes).
pub fn argmax_rows(probs: &DMatrix<f64>) -> Vec<usize> {
    probs
        .row_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect()
}

/// Feature rows (n, d) from a row-major slice.
pub fn features(data: &[f64], n: usize, d: usize) -> DMatrix<f64> {
    DMatrix::from_row_slice(n, d, data)
}

/// Mean and (population) standard deviation of repeated estimates, as the reference
/// implementations report KID and IS over subsets / splits.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The small fixture scripts/reference_metrics.py writes, and its reference values.
    use super::*;
    use std::path::PathBuf;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/metrics/fixtures")
    }

    pub fn matrix(name: &str) -> DMatrix<f64> {
        let a = crate::report::npy::read(&dir().join(format!("{name}.npy"))).unwrap();
        features(&a.to_f64(), a.shape[0], a.shape[1])
    }

    pub fn reference(key: &str) -> f64 {
        let text = std::fs::read_to_string(dir().join("reference.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key} in reference.json"))
    }

    /// |got − want| ≤ 1e-6 · max(1, |want|).
    pub fn assert_close(name: &str, got: f64, want: f64) {
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{name}: {got} vs reference {want}"
        );
    }
}
