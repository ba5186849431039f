//! What a run writes for people and other tools: metrics.csv, the loss-curve PNG, sample
//! grids and their GIF, weight histograms, TensorBoard event files and NumPy arrays.
//! (Evaluation metrics such as FID plug in beside these.)

pub mod attention;
pub mod gif;
pub mod grid;
pub mod histogram;
pub mod metrics;
pub mod npy;
pub mod plot;
pub mod tensorboard;

/// `v` with `decimals` decimals, or in scientific notation (two significant digits) where
/// those decimals would show a value that is not zero as zero: an FID of 4.6e-5 (an
/// untrained network's small features) is not "0.0000".
pub fn decimal(v: f64, decimals: usize) -> String {
    if v != 0.0 && v.is_finite() && v.abs() < 0.5 * 10f64.powi(-(decimals as i32)) {
        format!("{v:.1e}")
    } else {
        format!("{v:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_value_is_not_shown_as_zero() {
        assert_eq!(super::decimal(4.555e-5, 4), "4.6e-5");
        assert_eq!(super::decimal(0.0, 4), "0.0000");
        assert_eq!(super::decimal(25.871, 2), "25.87");
        assert_eq!(super::decimal(0.004, 2), "4.0e-3");
        assert_eq!(super::decimal(0.005, 2), "0.01");
    }
}
