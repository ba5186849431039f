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
//! ms, input gradient 3.1 → 2.3 ms, filter gradient 3.3 → 2.9 ms. The planes are filled
//! and read back by [`fill_plane`] and [`read_plane`] (which `implicit::pixel_major`
//! shares), in f32 on AVX2 by 8 × 8 transposes.

use super::{Element, Geometry, Taps, transpose};
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
    let (kk, l, b) = (g.k * g.k, g.l(), images);
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
        read_plane(g, taps.pw, &plane, b, ci, imgs);
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
    let (kk, l, b) = (g.k * g.k, g.l(), images);
    let mut plane = vec![T::default(); taps.ph * taps.pw * b];
    for ci in 0..g.c_in {
        fill_plane(g, taps.pw, imgs, b, ci, &mut plane);
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

/// The interior of `plane`, channel ci's padded plane (rows of `pw` pixels, each the
/// `images` images' values side by side) ← channel ci of the `images` consecutive images
/// (each c_in × h × w); the padding is left as it is. In f32 on AVX2, 8 images × 8 pixels
/// at a time ([`transpose`]).
pub(super) fn fill_plane<T: Element>(
    g: &Geometry,
    pw: usize,
    imgs: &[T],
    images: usize,
    ci: usize,
    plane: &mut [T],
) {
    let stride = g.image_len();
    assert!(imgs.len() >= images * stride && plane.len() >= (g.h + 2 * g.pad) * pw * images);
    walk_plane::<T>(g, pw, images, ci, |img, pix, block| match block {
        // SAFETY: f32 on AVX2 (`walk_plane` checked); rows r of the block are image
        // j0 + r's 8 pixels from x0 (inside `imgs`, asserted above), its columns pixel
        // x0 + c's 8 images from j0 (inside `plane`).
        true => unsafe {
            transpose::block(
                imgs.as_ptr().add(img).cast(),
                stride,
                plane.as_mut_ptr().add(pix).cast(),
                images,
            )
        },
        false => plane[pix] = imgs[img],
    });
}

/// The inverse of [`fill_plane`]: channel ci of the images ← the plane's interior.
pub(super) fn read_plane<T: Element>(
    g: &Geometry,
    pw: usize,
    plane: &[T],
    images: usize,
    ci: usize,
    imgs: &mut [T],
) {
    let stride = g.image_len();
    assert!(imgs.len() >= images * stride && plane.len() >= (g.h + 2 * g.pad) * pw * images);
    walk_plane::<T>(g, pw, images, ci, |img, pix, block| match block {
        // SAFETY: as in `fill_plane`, the other way round.
        true => unsafe {
            transpose::block(
                plane.as_ptr().add(pix).cast(),
                images,
                imgs.as_mut_ptr().add(img).cast(),
                stride,
            )
        },
        false => imgs[img] = plane[pix],
    });
}

/// Every value of channel ci of `images` images, as f(index in the images, index in the
/// plane, false); in f32 on AVX2 the 8 × 8 blocks (images j0.. × pixels x0.. of a row)
/// instead as one f(first value's indices, true) each.
fn walk_plane<T: Element>(
    g: &Geometry,
    pw: usize,
    images: usize,
    ci: usize,
    mut f: impl FnMut(usize, usize, bool),
) {
    let img = |j: usize, y: usize, x: usize| (j * g.c_in + ci) * g.h * g.w + y * g.w + x;
    let pix = |j: usize, y: usize, x: usize| ((y + g.pad) * pw + g.pad + x) * images + j;
    let blocked = if transpose::available::<T>() {
        images / 8 * 8
    } else {
        0
    };
    let wide = g.w / 8 * 8;
    for j0 in (0..blocked).step_by(8) {
        for y in 0..g.h {
            for x0 in (0..wide).step_by(8) {
                f(img(j0, y, x0), pix(j0, y, x0), true);
            }
            for x in wide..g.w {
                (j0..j0 + 8).for_each(|j| f(img(j, y, x), pix(j, y, x), false));
            }
        }
    }
    for j in blocked..images {
        for y in 0..g.h {
            (0..g.w).for_each(|x| f(img(j, y, x), pix(j, y, x), false));
        }
    }
}
