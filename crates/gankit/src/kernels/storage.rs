//! Plumbing between candle's CPU storage and gankit's kernels: contiguous f32 / f64 slices
//! in, a vector out, on candle's thread pool.

use candle_core::{CpuStorage, Layout, Result, Shape};

use super::cpu::Element;

/// The contiguous elements of one CPU tensor.
pub(crate) fn slice<'a, T: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("gankit kernels need contiguous inputs"),
    }
}

/// A kernel on one tensor, written once for both float types.
pub(crate) trait Kernel1: Sync {
    fn run<T: Element>(&self, a: &[T], shape: &Shape) -> Result<(Vec<T>, Shape)>;
}

/// A kernel on two tensors of the same float type.
pub(crate) trait Kernel2: Sync {
    fn run<T: Element>(&self, a: &[T], sa: &Shape, b: &[T], sb: &Shape) -> Result<(Vec<T>, Shape)>;
}

/// A kernel on three tensors of the same float type.
pub(crate) trait Kernel3: Sync {
    #[allow(clippy::too_many_arguments)]
    fn run<T: Element>(
        &self,
        a: &[T],
        sa: &Shape,
        b: &[T],
        sb: &Shape,
        c: &[T],
        sc: &Shape,
    ) -> Result<(Vec<T>, Shape)>;
}

fn wrap<T: Element>(
    r: Result<(Vec<T>, Shape)>,
    to: fn(Vec<T>) -> CpuStorage,
) -> Result<(CpuStorage, Shape)> {
    r.map(|(v, s)| (to(v), s))
}

/// Run `k` on `s` as f32 or f64 (its parallel loops share candle's threads: [`super::parallel`]).
pub(crate) fn apply1(k: &impl Kernel1, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let sh = l.shape();
    match s {
        CpuStorage::F32(_) => wrap(k.run(slice::<f32>(s, l)?, sh), CpuStorage::F32),
        CpuStorage::F64(_) => wrap(k.run(slice::<f64>(s, l)?, sh), CpuStorage::F64),
        _ => candle_core::bail!("gankit kernels run on f32 or f64"),
    }
}

pub(crate) fn apply2(
    k: &impl Kernel2,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let (h1, h2) = (l1.shape(), l2.shape());
    match (s1, s2) {
        (CpuStorage::F32(_), CpuStorage::F32(_)) => wrap(
            k.run(slice::<f32>(s1, l1)?, h1, slice::<f32>(s2, l2)?, h2),
            CpuStorage::F32,
        ),
        (CpuStorage::F64(_), CpuStorage::F64(_)) => wrap(
            k.run(slice::<f64>(s1, l1)?, h1, slice::<f64>(s2, l2)?, h2),
            CpuStorage::F64,
        ),
        _ => candle_core::bail!("gankit kernels: inputs must be all f32 or all f64"),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn apply3(
    k: &impl Kernel3,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let (h1, h2, h3) = (l1.shape(), l2.shape(), l3.shape());
    match (s1, s2, s3) {
        (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => wrap(
            k.run(
                slice::<f32>(s1, l1)?,
                h1,
                slice::<f32>(s2, l2)?,
                h2,
                slice::<f32>(s3, l3)?,
                h3,
            ),
            CpuStorage::F32,
        ),
        (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => wrap(
            k.run(
                slice::<f64>(s1, l1)?,
                h1,
                slice::<f64>(s2, l2)?,
                h2,
                slice::<f64>(s3, l3)?,
                h3,
            ),
            CpuStorage::F64,
        ),
        _ => candle_core::bail!("gankit kernels: inputs must be all f32 or all f64"),
    }
}

/// A tensor seen as (n, c, s): rank 2 (n, c) has s = 1, rank 4 (n, c, h, w) has s = h·w.
pub(crate) fn ncs(shape: &Shape) -> Result<(usize, usize, usize)> {
    match shape.dims() {
        &[n, c] => Ok((n, c, 1)),
        &[n, c, h, w] => Ok((n, c, h * w)),
        d => candle_core::bail!("per-channel op expects rank 2 or 4, got shape {d:?}"),
    }
}

/// Elements per parallel work item of the element-wise kernels (fixed, so results never
/// depend on the thread count).
pub(crate) const CHUNK: usize = 1 << 14;
