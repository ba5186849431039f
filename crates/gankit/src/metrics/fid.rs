//! Fréchet distance between Gaussians fitted to two feature sets:
//! ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½.
//!
//! tr (Σ₁Σ₂)^½ = tr (Σ₁^½ Σ₂ Σ₁^½)^½, a symmetric positive semi-definite matrix, so both
//! square roots come from symmetric eigendecompositions (negative round-off eigenvalues
//! clamped to 0): no complex parts to discard, and as exact as SciPy's `sqrtm`.

use nalgebra::{DMatrix, DVector};

use super::linalg;

/// Mean and covariance (unbiased, n − 1) of feature rows: what FID compares, and what is
/// cached for a real data set.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianStats {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
}

impl GaussianStats {
    /// Statistics of the rows of `x` (a single row has zero covariance).
    pub fn of(x: &DMatrix<f64>) -> Self {
        let n = x.nrows() as f64;
        let mean = x.row_mean().transpose();
        let mut centred = x.clone();
        for mut row in centred.row_iter_mut() {
            row -= mean.transpose();
        }
        let cov = linalg::at_b(&centred, &centred) / (n - 1.0).max(1.0);
        GaussianStats { mean, cov }
    }
}

impl GaussianStats {
    /// Why the covariance of `n` samples is singular over the feature dimensions `live`
    /// (those that vary in either set compared: a feature constant in both, such as a
    /// dead ReLU, adds nothing to FID), if it is: no more samples than dimensions, or
    /// directions without variance (identical or collinear samples). FID stays finite
    /// (eigenvalues are clamped at 0), but such sets do not compare with full-rank ones.
    pub fn singular(&self, n: usize, live: &[usize]) -> Option<String> {
        let d = live.len();
        if d == 0 {
            return Some("no feature varies".into());
        }
        if n <= d {
            return Some(format!("{n} images for {d} varying feature dimensions"));
        }
        let sub = DMatrix::from_fn(d, d, |i, j| self.cov[(live[i], live[j])]);
        let e = linalg::symmetric_eigenvalues(&sub);
        let max = e.iter().fold(0f64, |a, &v| a.max(v));
        let tiny = e.iter().filter(|&&v| v <= 1e-12 * max).count();
        if max <= 0.0 {
            Some("all images have the same features".into())
        } else if tiny > 0 {
            Some(format!(
                "{tiny} of {d} varying feature directions have no variance in this set"
            ))
        } else {
            None
        }
    }
}

/// The feature dimensions that vary in `a` or `b`: variance above 1e-9 of the largest
/// (a unit that fires on one image in a thousand, by a hair, is as dead as one that never
/// does).
pub fn live_dimensions(a: &GaussianStats, b: &GaussianStats) -> Vec<usize> {
    let var = |i: usize| a.cov[(i, i)].max(b.cov[(i, i)]);
    let d = a.cov.nrows();
    let max = (0..d).map(var).fold(0f64, f64::max);
    (0..d).filter(|&i| var(i) > 1e-9 * max).collect()
}

/// The square root of a symmetric positive semi-definite matrix.
pub fn sqrtm_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let (values, vectors) = linalg::symmetric_eigen(m);
    // V · diag(√λ) · Vᵀ, the diagonal applied to V's columns.
    let mut scaled = vectors.clone();
    for (mut column, v) in scaled.column_iter_mut().zip(values.iter()) {
        column *= v.max(0.0).sqrt();
    }
    linalg::a_bt(&scaled, &vectors)
}

/// FID between two Gaussians.
pub fn fid_from_stats(a: &GaussianStats, b: &GaussianStats) -> f64 {
    let diff = (&a.mean - &b.mean).norm_squared();
    let s1h = sqrtm_psd(&a.cov);
    let inner = linalg::product3(&s1h, &b.cov, &s1h);
    let tr_covmean: f64 = linalg::symmetric_eigenvalues(&inner)
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    diff + a.cov.trace() + b.cov.trace() - 2.0 * tr_covmean
}

/// FID between the feature rows of `x` and `y`.
pub fn fid(x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
    fid_from_stats(&GaussianStats::of(x), &GaussianStats::of(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixtures::{assert_close, matrix, reference};

    #[test]
    fn fid_of_a_set_with_itself_is_zero() {
        let x = matrix("real");
        assert!(fid(&x, &x).abs() < 1e-6, "{}", fid(&x, &x));
    }

    #[test]
    fn fid_matches_scipy() {
        assert_close(
            "fid",
            fid(&matrix("real"), &matrix("fake")),
            reference("fid"),
        );
    }

    #[test]
    fn sqrtm_matches_scipy() {
        let s = GaussianStats::of(&matrix("real")).cov;
        let r = sqrtm_psd(&s);
        assert_close("trace", r.trace(), reference("sqrtm_trace"));
        assert_close("[0,0]", r[(0, 0)], reference("sqrtm_00"));
        assert_close("[0,1]", r[(0, 1)], reference("sqrtm_01"));
        assert!(((&r * &r) - &s).abs().max() < 1e-10);
    }

    #[test]
    fn fid_between_known_gaussians_is_the_closed_form() {
        // Diagonal covariances: Σᵢ (μ₁ᵢ − μ₂ᵢ)² + (√σ₁ᵢ − √σ₂ᵢ)².
        let a = GaussianStats {
            mean: DVector::from_vec(vec![0.0, 1.0, -2.0]),
            cov: DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 4.0, 0.25])),
        };
        let b = GaussianStats {
            mean: DVector::from_vec(vec![1.0, 1.0, 0.0]),
            cov: DMatrix::from_diagonal(&DVector::from_vec(vec![9.0, 1.0, 0.25])),
        };
        let want = (1.0 + 0.0 + 4.0) + (1.0f64 - 3.0).powi(2) + (2.0f64 - 1.0).powi(2) + 0.0;
        assert!((fid_from_stats(&a, &b) - want).abs() < 1e-9);
        // A rotated pair (non-diagonal): FID is invariant to rotating both.
        let (c, s) = (0.6f64, 0.8f64);
        let rot = DMatrix::from_row_slice(3, 3, &[c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]);
        let turn = |g: &GaussianStats| GaussianStats {
            mean: &rot * &g.mean,
            cov: &rot * &g.cov * rot.transpose(),
        };
        assert!((fid_from_stats(&turn(&a), &turn(&b)) - want).abs() < 1e-9);
    }
}
