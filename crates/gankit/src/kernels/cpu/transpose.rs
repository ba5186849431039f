//! 8 × 8 blocks of f32 transposed in AVX registers, for the pixel-major planes
//! ([`super::pixel_major`]): filling a plane from 8 images' rows, and reading it back, is
//! a transposition whose scalar loop stores one value per 64-byte line (measured on the
//! 28×28 critic's 14×14 maps: 8 cycles a value).

/// Whether [`block`] may run: f32 on a CPU with AVX2 (as the process sees it).
pub(super) fn available<T: 'static>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && crate::isa::Isa::in_use() >= crate::isa::Isa::Avx2
}

/// Row c of the destination (8 values at `dst + c·dst_stride`) ← column c of the 8 × 8
/// block whose row r is the 8 values at `src + r·src_stride`.
///
/// # Safety
/// [`available`] must hold; the 8 source rows must be valid for reads of 8 values and the
/// 8 destination rows for writes of 8, the two not overlapping.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn block(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): reads and writes stay within the rows the caller vouched for.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_stride)));
        // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves.
        let t: [__m256; 8] = std::array::from_fn(|i| {
            let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            match i % 2 {
                0 => _mm256_unpacklo_ps(a, b),
                _ => _mm256_unpackhi_ps(a, b),
            }
        });
        let u: [__m256; 8] = std::array::from_fn(|i| {
            let (a, b) = (t[i / 4 * 4 + i % 4 / 2], t[i / 4 * 4 + i % 4 / 2 + 2]);
            match i % 2 {
                0 => _mm256_shuffle_ps::<0x44>(a, b),
                _ => _mm256_shuffle_ps::<0xEE>(a, b),
            }
        });
        for c in 0..8 {
            let (a, b) = (u[c % 4], u[c % 4 + 4]);
            let row = match c / 4 {
                0 => _mm256_permute2f128_ps::<0x20>(a, b),
                _ => _mm256_permute2f128_ps::<0x31>(a, b),
            };
            _mm256_storeu_ps(dst.add(c * dst_stride), row);
        }
    }
}

/// Portable stand-in so the crate builds off x86-64, where [`available`] is false.
///
/// # Safety
/// Never called: the callers check [`available`] first.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn block(_: *const f32, _: usize, _: *mut f32, _: usize) {
    unreachable!("AVX runs on x86-64 only")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_transposed() {
        if !available::<f32>() {
            return;
        }
        let (ss, ds) = (11, 9);
        let src: Vec<f32> = (0..8 * ss).map(|i| i as f32).collect();
        let mut dst = vec![-1.0f32; 8 * ds];
        // SAFETY: AVX2 checked; 8 rows of 8 values at the given strides on both sides.
        unsafe { block(src.as_ptr(), ss, dst.as_mut_ptr(), ds) };
        for c in 0..8 {
            for r in 0..ds {
                let want = if r < 8 { src[r * ss + c] } else { -1.0 };
                assert_eq!(dst[c * ds + r], want, "row {c}, column {r}");
            }
        }
    }
}
