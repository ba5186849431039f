//! The dense linear algebra of the feature statistics at Inception's 2048 dimensions,
//! through `faer` (blocked algorithms): covariance products and symmetric
//! eigendecompositions. nalgebra's unblocked eigendecomposition took 10–19 s at 2048,
//! faer's 1.8 s (eigenvalues alone 1.0 s). faer runs on one thread (built without its
//! `rayon` feature): its parallel reductions would change the last bits of an FID from
//! run to run. Matrices stay nalgebra's `DMatrix` outside this module.

use faer::{Mat, MatRef, Side};
use nalgebra::{DMatrix, DVector};

fn view(m: &DMatrix<f64>) -> MatRef<'_, f64> {
    // nalgebra stores column-major with contiguous columns, as faer's column-major view.
    MatRef::from_column_major_slice(m.as_slice(), m.nrows(), m.ncols())
}

fn back(m: &Mat<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)])
}

/// aᵀ · b.
pub fn at_b(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    back(&(view(a).transpose() * view(b)))
}

/// a · bᵀ.
pub fn a_bt(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    back(&(view(a) * view(b).transpose()))
}

/// a · b · c.
pub fn product3(a: &DMatrix<f64>, b: &DMatrix<f64>, c: &DMatrix<f64>) -> DMatrix<f64> {
    back(&(view(a) * view(b) * view(c)))
}

/// (a + aᵀ) / 2, the symmetric part of a square matrix.
fn symmetric(m: &DMatrix<f64>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| 0.5 * (m[(i, j)] + m[(j, i)]))
}

/// Eigenvalues of the symmetric part of `m`, in ascending order.
pub fn symmetric_eigenvalues(m: &DMatrix<f64>) -> Vec<f64> {
    symmetric(m)
        .self_adjoint_eigenvalues(Side::Lower)
        .expect("the eigenvalues of a finite symmetric matrix converge")
}

/// Eigenvalues and eigenvectors (columns) of the symmetric part of `m`.
pub fn symmetric_eigen(m: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let e = symmetric(m)
        .self_adjoint_eigen(Side::Lower)
        .expect("the eigendecomposition of a finite symmetric matrix converges");
    let s = e.S();
    let values = DVector::from_fn(m.nrows(), |i, _| s[i]);
    let u = e.U();
    let vectors = DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| u[(i, j)]);
    (values, vectors)
}
