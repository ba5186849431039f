//! The implicit GEMM over chunks of 16 images, pixel-major: for feature maps of 16 to 63
//! positions (the 28×28 DCGANs' 14×14 → 7×7 layers, which WGAN-GP's penalty runs three
//! times a critic step; the 64×64 networks' 8×8 → 4×4 layers), whose output rows are too
//! short for the image-major panels of the parent module, where the products are deep
//! enough to pay (see [`suits`] and [`suits_data`]).
//!
//! As in [`super::super::pixel_major`], each input channel of the chunk is one padded plane
//! whose every pixel holds the 16 images' values side by side. A panel of the tile's 16
//! rows is then the 16 images at one output position: for each kernel tap, one copy of 16
//! consecutive values, packed straight from the planes (no im2col matrix, no second copy
//! by `gemm`). The features come out position-major, image-minor (as the im2col path's
//! product does) and are scattered to the samples with the bias added; the input
//! gradient's tiles are added straight into the planes (no col2im matrix).
//!
//! Measured against the im2col path, one process alternating the two (new time / old):
//! - D's second convolution at 28×28 (64 images, 64 → 128 channels, 14×14 → 7×7, 4×4
//!   kernels), one thread, medians of 15 in four runs: features 0.77–0.89, input gradient
//!   0.83–0.93;
//! - report 000's and 001's 8×8 → 4×4 layers (256 → 512 channels), two threads, median of
//!   11: input gradient 0.74 (5×5 kernels) and 0.85 (4×4), features 0.91 (4×4; with 5×5
//!   kernels the features' chunks hold 10 images and stay on the im2col path);
//! - the filter gradient, packed from the planes by 16 × 16 transposes (16 taps × 16
//!   images), took 0.96–1.0 of the im2col path's time at 14×14 and 1.03–1.24 at 8×8, so
//!   it stays there.
//!
//! `configs/wgan-gp.toml`'s whole step with this path and [`super::super::transpose`]
//! against neither, six alternating runs of `gankit bench`: one thread 0.88 (0.83–0.93),
//! two threads 0.92 (0.80–1.08).

use super::super::{Element, Geometry, Taps, chunk, finish, pixel_major, wide_chunk};
use super::{KC, MC, Packed, microkernel, panels_len};
use crate::kernels::parallel;
use microkernel::{MR, NR};

/// Images per chunk: one panel's rows.
const B: usize = MR;

/// Whether the features of `g` run here: [`in_chunks_of_16`] of [`chunk`]'s size, with
/// output channels enough for whole tiles and taps enough (the products' inner dimension)
/// to amortise each tile's stores. Report 004's conv critic (3×3 kernels over 16 and 32
/// channels: 144 and 288 taps) took 1.02–1.21 of the im2col path's time here.
pub(in super::super) fn suits<T: Element>(g: &Geometry) -> bool {
    in_chunks_of_16::<T>(g, chunk(g)) && g.kdim() >= 512 && g.c_out >= NR
}

/// Whether the input gradient of `g` runs here: [`in_chunks_of_16`] of [`wide_chunk`]'s
/// size, with the parent's minimum taps and at least 128 output channels (the products'
/// inner dimension): over report 004's conv critic (32 and 64) this path took 0.93–1.05
/// of the im2col path's time per layer, and its whole step was no faster.
pub(in super::super) fn suits_data<T: Element>(g: &Geometry) -> bool {
    in_chunks_of_16::<T>(g, wide_chunk(g)) && super::data_is_wide(g) && g.c_out >= 128
}

/// f32 on AVX2 without AVX-512 (as the parent module), maps of 16 to 63 positions (over
/// fewer, a block's panels reuse each filter panel too few times), and the batch in whole
/// chunks of 16 images (the im2col path's chunk size `ch` for the pass), with channels
/// enough for the pixel-major layout.
fn in_chunks_of_16<T: Element>(g: &Geometry, ch: usize) -> bool {
    super::suits_isa::<T>()
        && (16..super::MIN_POSITIONS).contains(&g.l())
        && g.n.is_multiple_of(B)
        && ch == B
        && pixel_major::suits(g, B)
}

/// The blocks of output positions, each (first position, positions): an even split of the
/// map into blocks of at most MC/16 positions, so a block's packed panels (MC values of
/// 16 images × KC taps, 256 KiB, as the parent's) stay in L2.
fn blocks(l: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = l.div_ceil(MC / B);
    let size = l.div_ceil(count);
    (0..l).step_by(size).map(move |p0| (p0, size.min(l - p0)))
}

/// The chunk's 16 images (each c_in × h × w) in pixel-major padded planes: value (image
/// j, channel ci, padded pixel o) at (ci·ph·pw + o)·16 + j; the padding stays zero.
fn planes_of(g: &Geometry, taps: &Taps, imgs: &[f32], planes: &mut [f32]) {
    let pp = taps.ph * taps.pw;
    for (ci, plane) in planes.chunks_exact_mut(pp * B).enumerate() {
        pixel_major::fill_plane(g, taps.pw, imgs, B, ci, plane);
    }
}

/// The inverse of [`planes_of`]: the images ← the planes' interiors.
fn images_of(g: &Geometry, taps: &Taps, planes: &[f32], imgs: &mut [f32]) {
    let pp = taps.ph * taps.pw;
    for (ci, plane) in planes.chunks_exact(pp * B).enumerate() {
        pixel_major::read_plane(g, taps.pw, plane, B, ci, imgs);
    }
}

/// Where each row r = (ci, tap t) of the im2col matrix reads output position p's 16
/// values in the planes: `(row + taps.tap(t, l)[p])·16`, with `row` = ci·ph·pw and the
/// tap's offsets kept per row, so the inner loops do no division.
struct Rows<'a> {
    rows: Vec<(usize, &'a [u32])>,
}

impl<'a> Rows<'a> {
    fn new(g: &Geometry, taps: &'a Taps) -> Rows<'a> {
        let (kk, l, pp) = (g.k * g.k, g.l(), taps.ph * taps.pw);
        let rows = (0..g.kdim())
            .map(|r| ((r / kk) * pp, taps.tap(r % kk, l)))
            .collect();
        Rows { rows }
    }

    fn at(&self, r: usize, p: usize) -> usize {
        let (row, tap) = self.rows[r];
        (row + tap[p] as usize) * B
    }
}

/// `packed` ← panels of kc steps: step k of panel i is the 16 values of `src` from
/// `at(i, k)` on.
fn pack(src: &[f32], at: impl Fn(usize, usize) -> usize, packed: &mut [f32], kc: usize) {
    for (i, panel) in packed.chunks_exact_mut(B * kc).enumerate() {
        for (k, dst) in panel.chunks_exact_mut(B).enumerate() {
            let values: &[f32; B] = src[at(i, k)..][..B].try_into().expect("16 values");
            dst.copy_from_slice(values);
        }
    }
}

/// The blocked product of one chunk, shared by both passes: for each block of output
/// positions ([`blocks`]) and each block of [`KC`] of the `inner` steps, the panels (step
/// k at position p: the 16 values of `src` from `at(k, p)` on) are packed once, then each
/// filter panel cp meets each position p's panel a as `tile(k0, cp, p, a, b)`, with b the
/// filter panel's same steps.
fn products(
    l: usize,
    inner: usize,
    filter: &Packed,
    src: &[f32],
    at: impl Fn(usize, usize) -> usize,
    mut tile: impl FnMut(usize, usize, usize, &[f32], &[f32]),
) {
    f32::with_scratch(MC * KC, |packed| {
        for (p0, mp) in blocks(l) {
            for k0 in (0..inner).step_by(KC) {
                let kc = KC.min(inner - k0);
                let packed = &mut packed[..panels_len(mp * B, kc)];
                pack(src, |i, k| at(k0 + k, p0 + i), packed, kc);
                for cp in 0..filter.panels {
                    let b = filter.panel(k0, kc, cp);
                    for (i, a) in packed.chunks_exact(B * kc).enumerate() {
                        tile(k0, cp, p0 + i, a, b);
                    }
                }
            }
        }
    });
}

/// Y (n, c_out, oh, ow) = conv(X, W) [+ bias, then LeakyReLU(slope)], as
/// [`super::super::forward_bias`].
pub(in super::super) fn forward(
    g: &Geometry,
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    slope: Option<f32>,
) -> Vec<f32> {
    let taps = Taps::new(g);
    let kd = g.kdim();
    crate::kernels::flops::add_product(g.c_out, g.n * g.l(), kd);
    let filter = Packed::for_features(g, wt);
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    let (pp, ld) = (taps.ph * taps.pw, l * B);
    let rows = Rows::new(g, &taps);
    parallel::filled(g.n * fl, B * fl, |c, ys| {
        let mut planes = vec![0.0f32; g.c_in * pp * B];
        planes_of(g, &taps, &x[c * B * il..][..B * il], &mut planes);
        // The products, channel-major, position-major, image-minor; rows up to a whole
        // number of tile columns, so every tile is whole.
        let mut out = vec![0.0f32; filter.panels * NR * ld];
        products(
            l,
            kd,
            &filter,
            &planes,
            |k, p| rows.at(k, p),
            |k0, cp, p, a, b| {
                let c = &mut out[cp * NR * ld + p * B..][..(NR - 1) * ld + B];
                // SAFETY: `suits` checked AVX2 + FMA; a and b hold the same steps; the tile's
                // six columns lie ld apart inside `c`.
                unsafe {
                    microkernel::tile(
                        a.len() / B,
                        a.as_ptr(),
                        b.as_ptr(),
                        c.as_mut_ptr(),
                        ld,
                        k0 > 0,
                    )
                };
            },
        );
        pixel_major::scatter(g, &out, ys, B, bias);
        if slope.is_some() {
            for y in ys.chunks_exact_mut(fl) {
                finish(y, l, None, slope);
            }
        }
    })
}

/// DX (n, c_in, h, w) = convᵀ(DY, W), as [`super::super::backward_data`]: each tile of 16
/// images at one output position × 6 rows of Wᵀ·DY is added into the planes.
pub(in super::super) fn backward_data(g: &Geometry, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    let taps = Taps::new(g);
    let kd = g.kdim();
    crate::kernels::flops::add_product(kd, g.n * g.l(), g.c_out);
    let filter = Packed::for_input_gradient(g, wt);
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    let (pp, ld) = (taps.ph * taps.pw, l * B);
    let rows = Rows::new(g, &taps);
    parallel::filled(g.n * il, B * il, |c, xs| {
        let mut m = vec![0.0f32; g.c_out * ld];
        pixel_major::gather(g, &dy[c * B * fl..], &mut m, B);
        let mut planes = vec![0.0f32; g.c_in * pp * B];
        let at = |k, p| k * ld + p * B;
        products(l, g.c_out, &filter, &m, at, |_, tp, p, a, b| {
            // Tile column jj adds into row r0 + jj's 16 values (those past the last row,
            // into a spare column).
            let r0 = tp * NR;
            let mut spare = [0.0f32; B];
            let base = planes.as_mut_ptr();
            let cols = std::array::from_fn(|jj| match r0 + jj < kd {
                true => base.wrapping_add(rows.at(r0 + jj, p)),
                false => spare.as_mut_ptr(),
            });
            // SAFETY: `suits_data` checked AVX2 + FMA; a and b hold the same steps; each
            // column is 16 values inside `planes` (rows of different taps never share a
            // pixel) or `spare`.
            unsafe { microkernel::tile_cols(a.len() / B, a.as_ptr(), b.as_ptr(), &cols, true) };
        });
        images_of(g, &taps, &planes, xs);
    })
}
