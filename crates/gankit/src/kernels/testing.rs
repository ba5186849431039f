//! Helpers shared by the kernel tests.

use candle_core::{DType, Device, Tensor};

/// A normal(0, 1) tensor of `shape`, seeded.
pub(crate) fn rand(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let v = crate::rng::Rng::new(seed, 9).normal_vec(n, 0.0, 1.0);
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// max |a − b| / max |b|.
pub(crate) fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let v = |t: &Tensor| {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let (a, b) = (v(a), v(b));
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}
