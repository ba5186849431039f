//! Convolutions over large maps (Inception's 147×147 and 71×71 stem layers, its 35×35
//! blocks): one image per work item, whose whole im2col matrix would take megabytes (25
//! MiB for Inception's 3×3 convolution at 147×147) and go through main memory twice, once
//! written and once read by the product. Here each image is multiplied a band of output
//! rows at a time: the band's im2col matrix stays in cache, and the products go straight
//! into the features, with no scatter copy.

use super::super::parallel;
use super::{Element, Geometry, Mat, fill_interior, finish, matmul_block};
use multiversion::multiversion;

/// Values in one band's im2col matrix (f32: 512 KiB, a core's L2 cache on many CPUs).
const BAND_VALUES: usize = 1 << 17;

/// Whether a chunk of `images` images of `g` takes this path: one image per chunk, whose
/// im2col matrix exceeds one band.
pub(super) fn suits(g: &Geometry, images: usize) -> bool {
    images == 1 && g.kdim() * g.l() > BAND_VALUES
}

/// Columns of a band, at least: every band's product packs W anew, so a band spans a few
/// hundred columns even when its matrix then outgrows `BAND_VALUES`.
const BAND_MIN_COLUMNS: usize = 256;

/// Output rows per band: within `BAND_VALUES` (but at least `BAND_MIN_COLUMNS` columns),
/// spread evenly over the bands.
fn band_rows(g: &Geometry) -> usize {
    let ow = g.ow.max(1);
    let rows = (BAND_VALUES / (g.kdim() * ow).max(1)).max(BAND_MIN_COLUMNS.div_ceil(ow));
    let bands = g.oh.div_ceil(rows.clamp(1, g.oh.max(1)));
    g.oh.div_ceil(bands.max(1)).max(1)
}

/// Y (n, c_out, oh, ow) = conv(X, W) (+ bias per channel, then LeakyReLU of `slope`), one
/// image per work item, band by band.
pub(super) fn forward<T: Element>(
    g: &Geometry,
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    slope: Option<T>,
) -> Vec<T> {
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    // The padded planes' sides (the image itself when there is no padding).
    let (ph, pw) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let plane = ph * pw;
    let rows = band_rows(g);
    let padded_len = if g.pad == 0 { 0 } else { g.c_in * plane };
    parallel::filled(g.n * fl, fl, |n, y: &mut [T]| {
        let xn = &x[n * il..(n + 1) * il];
        T::with_scratch(padded_len + kd * rows * g.ow, |buf| {
            let (padded, cols) = buf.split_at_mut(padded_len);
            let src: &[T] = if g.pad == 0 {
                xn
            } else {
                padded.fill(T::default());
                for (img, out) in xn
                    .chunks_exact(g.h * g.w)
                    .zip(padded.chunks_exact_mut(plane))
                {
                    fill_interior(g, pw, img, out);
                }
                padded
            };
            for r0 in (0..g.oh).step_by(rows) {
                let r1 = (r0 + rows).min(g.oh);
                let width = (r1 - r0) * g.ow;
                im2col_band(g, pw, src, r0, r1, &mut cols[..kd * width]);
                // SAFETY: the block is output rows r0..r1 of each of the image's c_out
                // feature planes (`width` values each, planes l apart), inside `y`, which
                // this item alone writes; W is c_out × kd and the band kd × width.
                unsafe {
                    matmul_block(
                        g.c_out,
                        width,
                        kd,
                        y.as_mut_ptr().add(r0 * g.ow),
                        l,
                        false,
                        Mat::rows(wt, kd),
                        Mat::rows(cols, width),
                    )
                }
            }
        });
        if bias.is_some() || slope.is_some() {
            finish(y, l, bias, slope);
        }
    })
}

/// `cols` (kd × (r1 − r0)·ow) ← the patches of output rows r0..r1 of one image, read from
/// its padded planes `src` (c_in planes of `pw` columns).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn im2col_band<T: Element>(
    g: &Geometry,
    pw: usize,
    src: &[T],
    r0: usize,
    r1: usize,
    cols: &mut [T],
) {
    let (k, s, ow) = (g.k, g.stride, g.ow);
    let plane = (g.h + 2 * g.pad) * pw;
    let width = (r1 - r0) * ow;
    for (row, dst) in cols.chunks_exact_mut(width).enumerate() {
        let (ci, t) = (row / (k * k), row % (k * k));
        let (kh, kw) = (t / k, t % k);
        let img = &src[ci * plane..(ci + 1) * plane];
        for (oy, out) in (r0..r1).zip(dst.chunks_exact_mut(ow)) {
            let from = &img[(oy * s + kh) * pw + kw..];
            if s == 1 {
                out.copy_from_slice(&from[..ow]);
            } else {
                out.iter_mut()
                    .zip(from.iter().step_by(s))
                    .for_each(|(o, &v)| *o = v);
            }
        }
    }
}
