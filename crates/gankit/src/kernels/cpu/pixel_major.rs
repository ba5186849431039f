//! im2col and col2im for chunks of many images with many input channels (the DCGANs' 7×7
//! and 14×14 layers), where the per-image versions gather one value at a time (im2col) or
//! add rows of only ow values (col2im).
//!
//! The chunk's B images share one im2col matrix whose columns run position-major,
//! image-minor (column p·B + j is output position p of image j), and each input channel is
//! one padded plane whose every pixel holds the B images' values side by side. Each entry of
//! the matrix is then one copy (im2col) or add (col2im) of B consecutive values at the pixel
//! `Taps` names for it. The features enter and leave the matrix products in the same
//! column order ([`gather`], [`scatter`]). Measured on D's second convolution (64 images,
//! 64 → 128 channels, 14×14 → 7×7, two threads, nothing else running): forward 3.1 → 2.4
//! ms, input gradient 3.1 → 2.3 ms, filter gradient 3.3 → 2.9 ms.

use super::{Element, Geometry, Taps};
use multiversion::multiversion;

/// Whether a chunk of `images` images takes this path: wide pixels, many channels.
pub(super) fn suits(g: &Geometry, images: usize) -> bool {
    images >= 8 && g.c_in >= 8
}

/// matrix (c_out × images·l, column p·images + j) ← the features of `images` consecutive
/// samples (each c_out × l).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(super) fn gather<T: Element>(g: &Geometry, samples: &[T], matrix: &mut [T], images: usize) {
    let (l, fl, ld) = (g.l(), g.feature_len(), images * g.l());
    for co in 0..g.c_out {
        let srcs: Vec<&[T]> = (0..images)
            .map(|j| &samples[j * fl + co * l..][..l])
            .collect();
        // Position by position: contiguous writes, one sequential read stream per image.
        let row = &mut matrix[co * ld..(co + 1) * ld];
        for (p, dst) in row.chunks_exact_mut(images).enumerate() {
            for (d, src) in dst.iter_mut().zip(&srcs) {
                *d = src[p];
            }
        }
    }
}

/// imgs (images × (c_in, h, w)) ← the sums of the patches in `cols` (kd rows of images·l
/// columns, laid out as by [`gather`]'s product).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(super) fn col2im<T: Element>(
    g: &Geometry,
    taps: &Taps,
    cols: &[T],
    images: usize,
    imgs: &mut [T],
) {
    let (kk, l, b, hw) = (g.k * g.k, g.l(), images, g.h * g.w);
    let plane_len = taps.ph * taps.pw * b;
    let mut plane = vec![T::default(); plane_len];
    for ci in 0..g.c_in {
        plane.fill(T::default());
        for t in 0..kk {
            let row = &cols[(ci * kk + t) * l * b..][..l * b];
            if b == 16 {
                add_blocks::<T, 16>(&mut plane, row, taps.tap(t, l));
            } else {
                for (src, &o) in row.chunks_exact(b).zip(taps.tap(t, l)) {
                    let dst = &mut plane[o as usize * b..][..b];
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                }
            }
        }
        for j in 0..b {
            let dst = &mut imgs[(j * g.c_in + ci) * hw..][..hw];
            for (y, out) in dst.chunks_exact_mut(g.w).enumerate() {
                let from = ((y + g.pad) * taps.pw + g.pad) * b + j;
                for (x, d) in out.iter_mut().enumerate() {
                    *d = plane[from + x * b];
                }
            }
        }
    }
}

/// `cols` (kd rows of images·l columns, laid out as by [`gather`]) ← the patches of
/// `images` consecutive images.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(super) fn im2col<T: Element>(
    g: &Geometry,
    taps: &Taps,
    imgs: &[T],
    images: usize,
    cols: &mut [T],
) {
    let (kk, l, b, hw) = (g.k * g.k, g.l(), images, g.h * g.w);
    let mut plane = vec![T::default(); taps.ph * taps.pw * b];
    for ci in 0..g.c_in {
        for j in 0..b {
            let src = &imgs[(j * g.c_in + ci) * hw..][..hw];
            for (y, row) in src.chunks_exact(g.w).enumerate() {
                let at = ((y + g.pad) * taps.pw + g.pad) * b + j;
                for (x, &v) in row.iter().enumerate() {
                    plane[at + x * b] = v;
                }
            }
        }
        for t in 0..kk {
            let row = &mut cols[(ci * kk + t) * l * b..][..l * b];
            if b == 16 {
                copy_blocks::<T, 16>(row, &plane, taps.tap(t, l));
            } else {
                for (dst, &o) in row.chunks_exact_mut(b).zip(taps.tap(t, l)) {
                    dst.copy_from_slice(&plane[o as usize * b..][..b]);
                }
            }
        }
    }
}

/// The inverse of [`gather`]: samples ← matrix, plus `bias[co]` on channel co when given.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(super) fn scatter<T: Element>(
    g: &Geometry,
    matrix: &[T],
    samples: &mut [T],
    images: usize,
    bias: Option<&[T]>,
) {
    let (l, fl, ld) = (g.l(), g.feature_len(), images * g.l());
    for co in 0..g.c_out {
        let b = bias.map_or(T::zero(), |b| b[co]);
        let row = &matrix[co * ld..(co + 1) * ld];
        for (p, src) in row.chunks_exact(images).enumerate() {
            for (j, &v) in src.iter().enumerate() {
                samples[j * fl + co * l + p] = v + b;
            }
        }
    }
}

/// row ← the blocks of B values of `plane` at pixels `at` (B known at compile time, so each
/// copy is a few vector moves rather than a call to memcpy).
fn copy_blocks<T: Copy, const B: usize>(row: &mut [T], plane: &[T], at: &[u32]) {
    let (blocks, _) = row.as_chunks_mut::<B>();
    let (src, _) = plane.as_chunks::<B>();
    for (dst, &o) in blocks.iter_mut().zip(at) {
        *dst = src[o as usize];
    }
}

/// The blocks of B values of `plane` at pixels `at` += the blocks of `row`.
fn add_blocks<T: Element, const B: usize>(plane: &mut [T], row: &[T], at: &[u32]) {
    let (blocks, _) = row.as_chunks::<B>();
    let (dst, _) = plane.as_chunks_mut::<B>();
    for (src, &o) in blocks.iter().zip(at) {
        let d = &mut dst[o as usize];
        for i in 0..B {
            d[i] += src[i];
        }
    }
}
