//! The Inception Score, exp(E_x KL(p(y|x) ‖ p(y))), on any classifier's class probabilities.

use nalgebra::DMatrix;

/// Mean and standard deviation of the score over `splits` consecutive parts of `probs`
/// (rows: samples, columns: classes, each row summing to 1).
pub fn inception_score(probs: &DMatrix<f64>, splits: usize) -> (f64, f64) {
    let splits = splits.clamp(1, probs.nrows());
    let part = probs.nrows() / splits;
    let scores: Vec<f64> = (0..splits)
        .map(|s| {
            let p = probs.rows(s * part, part);
            let py = p.row_mean();
            let kl: f64 = p
                .row_iter()
                .map(|r| {
                    r.iter()
                        .zip(py.iter())
                        .filter(|(v, _)| **v > 0.0)
                        .map(|(v, m)| v * (v.ln() - m.ln()))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / part as f64;
            kl.exp()
        })
        .collect();
    super::mean_std(&scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixtures::{assert_close, matrix, reference};

    #[test]
    fn matches_numpy_and_the_extremes() {
        assert_close(
            "IS",
            inception_score(&matrix("probs"), 1).0,
            reference("inception_score"),
        );
        // Confident and uniform over 4 classes: the maximum, 4. One class only: 1.
        let eye = DMatrix::<f64>::identity(4, 4);
        assert!((inception_score(&eye, 1).0 - 4.0).abs() < 1e-12);
        let same = DMatrix::from_fn(4, 4, |_, j| if j == 0 { 1.0 } else { 0.0 });
        assert!((inception_score(&same, 1).0 - 1.0).abs() < 1e-12);
    }
}
