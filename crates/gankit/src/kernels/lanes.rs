//! Sums over slices in eight interleaved f64 accumulators: independent add chains that the
//! compiler keeps in vector registers, several times faster than one running sum (whose
//! every add waits for the previous one), and the same result for the same input every time.

use super::cpu::Element;
use multiversion::multiversion;

/// Σ f(aᵢ, bᵢ) over the common length of a and b.
#[inline(always)]
fn lanes<A: Copy, B: Copy>(a: &[A], b: &[B], f: impl Fn(A, B) -> f64) -> f64 {
    let len = a.len().min(b.len());
    let (ac, ar) = a[..len].as_chunks::<8>();
    let (bc, br) = b[..len].as_chunks::<8>();
    let mut acc = [0f64; 8];
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..8 {
            acc[l] += f(x[l], y[l]);
        }
    }
    acc.iter().sum::<f64>() + ar.iter().zip(br).map(|(&x, &y)| f(x, y)).sum::<f64>()
}

/// Σ a.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn sum<T: Element>(a: &[T]) -> f64 {
    lanes(a, a, |x, _| x.to_f64())
}

/// Σ a·b.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn dot<T: Element, U: Element>(a: &[T], b: &[U]) -> f64 {
    lanes(a, b, |x, y| x.to_f64() * y.to_f64())
}

/// Σ (a − mean)².
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn squared_deviations<T: Element>(a: &[T], mean: f64) -> f64 {
    lanes(a, a, |x, _| (x.to_f64() - mean).powi(2))
}

/// Σ g·(x − mean).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn dot_deviations<T: Element>(g: &[T], x: &[T], mean: f64) -> f64 {
    lanes(g, x, |g, x| g.to_f64() * (x.to_f64() - mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_match_plain_sums() {
        for len in [0, 1, 7, 8, 9, 100, 1003] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..len).map(|i| (i as f64 * 0.11).cos()).collect();
            let plain = |f: &dyn Fn(usize) -> f64| (0..len).map(f).sum::<f64>();
            let close = |x: f64, y: f64| assert!((x - y).abs() < 1e-12, "{len}: {x} vs {y}");
            close(sum(&a), plain(&|i| a[i] as f64));
            close(dot(&a, &b), plain(&|i| a[i] as f64 * b[i]));
            close(
                squared_deviations(&a, 0.2),
                plain(&|i| (a[i] as f64 - 0.2).powi(2)),
            );
            close(
                dot_deviations(&a, &a, -0.1),
                plain(&|i| a[i] as f64 * (a[i] as f64 + 0.1)),
            );
        }
    }
}
