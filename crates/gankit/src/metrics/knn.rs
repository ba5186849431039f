//! k-nearest-neighbour metrics: improved precision and recall (Kynkäänniemi et al. 2019)
//! and density and coverage (Naeem et al. 2020). Each real (or fake) sample gets a ball whose
//! radius is the distance to its k-th nearest neighbour in its own set; distances are
//! computed in blocks, so 10k × 10k sets never hold a full distance matrix.

use nalgebra::DMatrix;

const BLOCK: usize = 512;

/// Visit squared Euclidean distances between the rows of `a` and `b`, one block of rows of
/// `a` at a time: `f(first_row, block)` with `block` (rows × b.nrows()).
fn distance_blocks(a: &DMatrix<f64>, b: &DMatrix<f64>, mut f: impl FnMut(usize, &DMatrix<f64>)) {
    let bn: Vec<f64> = b.row_iter().map(|r| r.norm_squared()).collect();
    let mut start = 0;
    while start < a.nrows() {
        let rows = BLOCK.min(a.nrows() - start);
        let blk = a.rows(start, rows);
        let mut d = &blk * b.transpose() * -2.0;
        for (i, r) in blk.row_iter().enumerate() {
            let an = r.norm_squared();
            for j in 0..b.nrows() {
                d[(i, j)] = (d[(i, j)] + an + bn[j]).max(0.0);
            }
        }
        f(start, &d);
        start += rows;
    }
}

/// Distance from each row of `x` to its k-th nearest other row.
pub fn knn_radii(x: &DMatrix<f64>, k: usize) -> Vec<f64> {
    let k = k.min(x.nrows() - 1);
    let mut out = vec![0.0; x.nrows()];
    distance_blocks(x, x, |start, d| {
        for i in 0..d.nrows() {
            let mut row: Vec<f64> = d.row(i).iter().copied().collect();
            // Index 0 after selection is the point itself (distance 0).
            let (_, kth, _) = row.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
            out[start + i] = kth.sqrt();
        }
    });
    out
}

/// Fraction of rows of `query` inside at least one ball (centre row of `centres`, radius).
fn inside_any(query: &DMatrix<f64>, centres: &DMatrix<f64>, radii: &[f64]) -> f64 {
    let r2: Vec<f64> = radii.iter().map(|r| r * r).collect();
    let mut hits = 0usize;
    distance_blocks(query, centres, |_, d| {
        hits += (0..d.nrows())
            .filter(|&i| (0..d.ncols()).any(|j| d[(i, j)] <= r2[j]))
            .count();
    });
    hits as f64 / query.nrows() as f64
}

/// (precision, recall) with k-NN balls: precision is the fraction of fakes inside the real
/// manifold, recall the fraction of reals inside the fake manifold.
pub fn precision_recall(real: &DMatrix<f64>, fake: &DMatrix<f64>, k: usize) -> (f64, f64) {
    let precision = inside_any(fake, real, &knn_radii(real, k));
    let recall = inside_any(real, fake, &knn_radii(fake, k));
    (precision, recall)
}

/// For each row of `query`, the index of its nearest row of `reference` (Euclidean).
pub fn nearest_rows(query: &DMatrix<f64>, reference: &DMatrix<f64>) -> Vec<usize> {
    let mut out = vec![0; query.nrows()];
    distance_blocks(query, reference, |start, d| {
        for i in 0..d.nrows() {
            out[start + i] = d
                .row(i)
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(j, _)| j);
        }
    });
    out
}

/// (density, coverage) with k-NN balls around the real samples only: density counts how many
/// real balls each fake falls in (divided by k), coverage the fraction of real balls that
/// hold at least one fake.
pub fn density_coverage(real: &DMatrix<f64>, fake: &DMatrix<f64>, k: usize) -> (f64, f64) {
    let r2: Vec<f64> = knn_radii(real, k).iter().map(|r| r * r).collect();
    let mut count = 0usize;
    let mut covered = vec![false; real.nrows()];
    distance_blocks(real, fake, |start, d| {
        for i in 0..d.nrows() {
            let n = d.row(i).iter().filter(|&&v| v <= r2[start + i]).count();
            count += n;
            covered[start + i] = n > 0;
        }
    });
    let density = count as f64 / (k as f64 * fake.nrows() as f64);
    let coverage = covered.iter().filter(|&&c| c).count() as f64 / real.nrows() as f64;
    (density, coverage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixtures::{assert_close, matrix, reference};

    #[test]
    fn match_the_numpy_reference() {
        let (x, y) = (matrix("real"), matrix("fake"));
        let (p, r) = precision_recall(&x, &y, 3);
        assert_close("precision", p, reference("precision"));
        assert_close("recall", r, reference("recall"));
        let (d, c) = density_coverage(&x, &y, 5);
        assert_close("density", d, reference("density"));
        assert_close("coverage", c, reference("coverage"));
    }

    #[test]
    fn identical_and_disjoint_sets_give_the_known_answers() {
        let x = matrix("real");
        assert_eq!(precision_recall(&x, &x, 3), (1.0, 1.0));
        let (_, c) = density_coverage(&x, &x, 5);
        assert_eq!(c, 1.0);
        let far = x.map(|v| v + 1e6);
        assert_eq!(precision_recall(&x, &far, 3), (0.0, 0.0));
        assert_eq!(density_coverage(&x, &far, 5), (0.0, 0.0));
    }

    #[test]
    fn nearest_rows_on_a_line() {
        let r = DMatrix::from_row_slice(3, 1, &[0.0, 5.0, 9.0]);
        let q = DMatrix::from_row_slice(4, 1, &[1.0, 4.0, 8.0, -3.0]);
        assert_eq!(nearest_rows(&q, &r), vec![0, 1, 2, 0]);
    }

    #[test]
    fn radii_on_a_line() {
        let x = DMatrix::from_row_slice(4, 1, &[0.0, 1.0, 3.0, 7.0]);
        assert_eq!(knn_radii(&x, 1), vec![1.0, 1.0, 2.0, 4.0]);
        assert_eq!(knn_radii(&x, 2), vec![3.0, 2.0, 3.0, 6.0]);
    }
}
