//! The register tile of the implicit-GEMM convolutions ([`super::implicit`]): a 16 × 6
//! block of f32 products accumulated in twelve AVX2 registers (two 8-lane vectors down
//! each of six columns), as BLIS-style matrix products do.
//!
//! Both operands arrive packed, k-major: `a` holds kc groups of 16 values (one vector pair
//! per step), `b` kc groups of 6 (each broadcast to a vector). A step is two loads, six
//! broadcasts and twelve fused multiply-adds.

/// Rows and columns of the tile.
pub(super) const MR: usize = 16;
pub(super) const NR: usize = 6;
/// Steps ahead at which [`tile`] prefetches its A panel.
const PREFETCH: usize = 8;

/// C (16 × 6; column j is the 16 values at `c + j·ldc`) ← [C +] Σ_{k < kc} a_k ⊗ b_k, with
/// a_k = a[16k..16k + 16] and b_k = b[6k..6k + 6].
///
/// # Safety
/// As [`tile_cols`], with every column of C valid for reads and writes of 16 values.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn tile(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let cols = std::array::from_fn(|j| c.wrapping_add(j * ldc));
    // SAFETY: as the caller promised.
    unsafe { tile_cols(kc, a, b, &cols, accumulate) }
}

/// [`tile`] with column j of C the 16 values at `cols[j]`, wherever each lies.
///
/// # Safety
/// The CPU must have AVX2 and FMA (`crate::isa::Isa::in_use()` at least `Avx2`); `a` must
/// be valid for 16·kc reads, `b` for 6·kc, and every column of C for reads and writes of
/// 16 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile_cols(
    kc: usize,
    a: *const f32,
    b: *const f32,
    cols: &[*mut f32; NR],
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; NR];
    // SAFETY (whole body): reads stay within the kc steps of a and b, writes within the
    // six columns of C, as the caller promised.
    unsafe {
        for k in 0..kc {
            // The A panel streams from L2: ask for it a few steps ahead.
            _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add((k + PREFETCH) * MR).cast());
            let a0 = _mm256_loadu_ps(a.add(k * MR));
            let a1 = _mm256_loadu_ps(a.add(k * MR + 8));
            let bk = b.add(k * NR);
            for (j, col) in acc.iter_mut().enumerate() {
                let bj = _mm256_broadcast_ss(&*bk.add(j));
                col[0] = _mm256_fmadd_ps(a0, bj, col[0]);
                col[1] = _mm256_fmadd_ps(a1, bj, col[1]);
            }
        }
        for (col, &cj) in acc.iter().zip(cols) {
            let (mut lo, mut hi) = (col[0], col[1]);
            if accumulate {
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(cj));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(cj.add(8)));
            }
            _mm256_storeu_ps(cj, lo);
            _mm256_storeu_ps(cj.add(8), hi);
        }
    }
}

/// Portable stand-ins so the crate builds off x86-64, where the ISA level is baseline.
///
/// # Safety
/// Never called: the callers check for AVX2 first.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn tile(_: usize, _: *const f32, _: *const f32, _: *mut f32, _: usize, _: bool) {
    unreachable!("the AVX2 tile runs on x86-64 only")
}

/// See [`tile`].
///
/// # Safety
/// Never called: the callers check for AVX2 first.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn tile_cols(
    _: usize,
    _: *const f32,
    _: *const f32,
    _: &[*mut f32; NR],
    _: bool,
) {
    unreachable!("the AVX2 tile runs on x86-64 only")
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn the_tile_is_the_sum_of_outer_products() {
        // AVX2 and FMA, as the process sees them (GANKIT_ISA can hide them).
        if crate::isa::Isa::in_use() < crate::isa::Isa::Avx2 {
            return;
        }
        let kc = 37;
        let a: Vec<f32> = (0..MR * kc)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
            .collect();
        let b: Vec<f32> = (0..NR * kc)
            .map(|i| ((i * 5 % 17) as f32 - 8.0) / 4.0)
            .collect();
        let ldc = 20;
        let mut c = vec![0.5f32; NR * ldc];
        for accumulate in [false, true] {
            let before = c.clone();
            // SAFETY: AVX2 + FMA checked; a, b and the columns of c are large enough.
            unsafe { tile(kc, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), ldc, accumulate) };
            for j in 0..NR {
                for i in 0..ldc {
                    let want = if i < MR {
                        let s: f64 = (0..kc)
                            .map(|k| a[k * MR + i] as f64 * b[k * NR + j] as f64)
                            .sum();
                        s + if accumulate {
                            before[j * ldc + i] as f64
                        } else {
                            0.0
                        }
                    } else {
                        before[j * ldc + i] as f64
                    };
                    assert!((c[j * ldc + i] as f64 - want).abs() < 1e-4, "{i},{j}");
                }
            }
        }
    }
}
