//! Kernel Inception Distance: the unbiased estimate of MMD² with the cubic polynomial kernel
//! k(x, y) = (x·y / d + 1)³, averaged over random subsets (Bińkowski et al. 2018).

use nalgebra::DMatrix;

use crate::rng::Rng;

/// Unbiased MMD² between all rows of `x` and `y` (each at least 2 rows).
pub fn kid_unbiased(x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
    let d = x.ncols() as f64;
    let kernel =
        |a: &DMatrix<f64>, b: &DMatrix<f64>| (a * b.transpose()).map(|v| (v / d + 1.0).powi(3));
    let (m, n) = (x.nrows() as f64, y.nrows() as f64);
    let (kxx, kyy, kxy) = (kernel(x, x), kernel(y, y), kernel(x, y));
    (kxx.sum() - kxx.trace()) / (m * (m - 1.0)) + (kyy.sum() - kyy.trace()) / (n * (n - 1.0))
        - 2.0 * kxy.mean()
}

/// KID: mean and standard deviation of [`kid_unbiased`] over `subsets` random subsets of
/// `size` rows of each set (drawn without replacement from `seed`; the reference
/// implementation uses 100 subsets of 1000).
pub fn kid(
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    subsets: usize,
    size: usize,
    seed: u64,
) -> (f64, f64) {
    let size = size.min(x.nrows()).min(y.nrows());
    let mut rng = Rng::new(seed, 0);
    let mut pick = |m: &DMatrix<f64>| {
        let idx: Vec<usize> = rng.permutation(m.nrows())[..size]
            .iter()
            .map(|&i| i as usize)
            .collect();
        m.select_rows(idx.iter())
    };
    let vals: Vec<f64> = (0..subsets.max(1))
        .map(|_| kid_unbiased(&pick(x), &pick(y)))
        .collect();
    super::mean_std(&vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixtures::{assert_close, matrix, reference};

    #[test]
    fn kid_matches_numpy_and_is_near_zero_for_one_distribution() {
        let (x, y) = (matrix("real"), matrix("fake"));
        assert_close("kid", kid_unbiased(&x, &y), reference("kid"));
        // Subsets as large as both sets are permutations of them: the same value every time.
        let x90 = x.rows(0, 90).into_owned();
        let (mean, std) = kid(&x90, &y, 3, 1000, 1);
        let full = kid_unbiased(&x90, &y);
        assert!(
            (mean - full).abs() < 1e-9 * full.abs() && std < 1e-9 * full.abs(),
            "{mean} {std} {full}"
        );
        // Two draws of one Gaussian: the unbiased estimate is near zero; shift one and it is not.
        let mut rng = Rng::new(9, 9);
        let mut draw = |shift: f64| {
            let v: Vec<f64> = rng
                .normal_vec(1500 * 4, 0.0, 1.0)
                .into_iter()
                .map(|v| v as f64 + shift)
                .collect();
            DMatrix::from_row_slice(1500, 4, &v)
        };
        let (a, b, c) = (draw(0.0), draw(0.0), draw(0.5));
        let same = kid_unbiased(&a, &b);
        let shifted = kid_unbiased(&a, &c);
        assert!(
            same.abs() < 0.05 * shifted,
            "same {same}, shifted {shifted}"
        );
    }
}
