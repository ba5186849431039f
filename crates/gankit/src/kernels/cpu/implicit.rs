//! Convolution as an implicit GEMM in f32 on AVX2: the im2col matrix is never written.
//!
//! The im2col path writes a c_in·k·k × positions matrix, then `gemm` copies it again into
//! its packed panels before its microkernel reads it. Here the panels are packed straight
//! from the images: for each kernel tap (ci, kh, kw) and 16 consecutive output positions,
//! the 16 inputs lie in one row of a stride-phase plane ([`Taps`]), one copy (or, on maps
//! narrower than 16, a few), and the filter is packed once per call rather than once per
//! work item. The products run in the 16 × 6 register tile of [`microkernel`], written to
//! the features in place ([`forward`]), or for the input gradient ([`backward_data`], the
//! generators' transposed convolutions) added into the image's phase planes in place of
//! col2im. Filter gradients stay on the im2col path. Maps under [`MIN_POSITIONS`]
//! positions, in chunks of 16 images, take [`pixel_major`]'s panels of 16 images at one
//! position instead.
//!
//! Blocking (BLIS-style): a work item (a chunk of images, as the im2col path splits them)
//! walks blocks of [`MC`] positions; for each block of [`KC`] taps it packs the block's
//! panels (MC × KC values, in L2), then runs every panel of 6 output channels (KC × 6, in
//! L1) over them. Results differ from the im2col path's only in rounding (the sums run in
//! another order), and do not depend on the thread count.
//!
//! [`Taps`]: super::Taps

use super::microkernel::{self, MR, NR};
use super::{Element, Geometry, Taps, chunk, finish};
use crate::kernels::parallel;

pub(super) mod pixel_major;

/// Positions per block (16 panels of [`MR`]).
const MC: usize = 256;
/// Taps (rows of the im2col matrix) per block.
const KC: usize = 256;

/// Whether the forward pass of `g` runs here: [`suits_isa`], over feature maps of at least
/// [`MIN_POSITIONS`] positions.
pub(super) fn suits<T: Element>(g: &Geometry) -> bool {
    suits_isa::<T>() && g.l() >= MIN_POSITIONS && g.kdim() >= 16 && g.c_out >= NR
}

/// Positions per image from which the panels run image-major (below, maps are too narrow
/// for it and chunks of 16 images run [`pixel_major`]). On report 000's and 001's 8×8 →
/// 4×4 layers (16 positions an image) the im2col path was as fast or faster than the
/// image-major panels (one process alternating the two, two threads: forward 1.00–1.05 of
/// its time, input gradient 0.94–1.08), and on the 28×28 DCGANs' 14×14 → 7×7 layer (49) it
/// took 0.82–0.88 of their time.
const MIN_POSITIONS: usize = 4 * MR;

/// Whether the implicit GEMM runs at all: f32 on a CPU with AVX2 + FMA but without AVX-512
/// (where gemm's 16-lane microkernels run; this 8-lane tile has not been measured against
/// them).
fn suits_isa<T: Element>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && crate::isa::Isa::in_use() == crate::isa::Isa::Avx2
}

/// The right-hand operand of a product packed for the tile: an inner × cols matrix, for
/// each block of [`KC`] inner steps the ⌈cols / 6⌉ panels of 6 columns (zero past the last
/// column), each step-major. The filter, packed once per call: W (c_out × kd) read as
/// kd × c_out for the features, as c_out × kd for the input gradient.
struct Packed {
    data: Vec<f32>,
    panels: usize,
}

impl Packed {
    fn new(inner: usize, cols: usize, at: impl Fn(usize, usize) -> f32) -> Packed {
        let panels = cols.div_ceil(NR);
        let mut data = vec![0.0; inner * panels * NR];
        for k0 in (0..inner).step_by(KC) {
            let kc = KC.min(inner - k0);
            for cp in 0..panels {
                let panel = &mut data[(k0 * panels + cp * kc) * NR..][..kc * NR];
                for (k, step) in panel.chunks_exact_mut(NR).enumerate() {
                    for (jj, v) in step.iter_mut().enumerate() {
                        let col = cp * NR + jj;
                        if col < cols {
                            *v = at(k0 + k, col);
                        }
                    }
                }
            }
        }
        Packed { data, panels }
    }

    /// The filter W (c_out × kd) of `g`, read as kd × c_out: the features' right operand.
    fn for_features(g: &Geometry, wt: &[f32]) -> Packed {
        let kd = g.kdim();
        Packed::new(kd, g.c_out, |k, co| wt[co * kd + k])
    }

    /// The filter W (c_out × kd) of `g` as it is: the input gradient's right operand.
    fn for_input_gradient(g: &Geometry, wt: &[f32]) -> Packed {
        let kd = g.kdim();
        Packed::new(g.c_out, kd, |co, r| wt[co * kd + r])
    }

    /// Panel `cp` of the block of steps starting at k0 (kc steps long).
    fn panel(&self, k0: usize, kc: usize, cp: usize) -> &[f32] {
        &self.data[(k0 * self.panels + cp * kc) * NR..][..kc * NR]
    }
}

/// Y (n, c_out, oh, ow) = conv(X, W) [+ bias, then LeakyReLU(slope)], as
/// [`super::forward_bias`].
pub(super) fn forward(
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
    let ch = chunk(g);
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    let rows = tap_rows(g, &taps);
    parallel::filled(g.n * fl, ch * fl, |c, ys| {
        let images = ys.len() / fl;
        let mut phases = vec![0.0f32; images * g.c_in * taps.phases_len];
        let planes = x[c * ch * il..][..images * il].chunks_exact(g.h * g.w);
        for (src, dst) in planes.zip(phases.chunks_exact_mut(taps.phases_len)) {
            taps.plane_to_phases(src, dst);
        }
        let positions = images * l;
        f32::with_scratch(MC * KC, |packed| {
            for q0 in (0..positions).step_by(MC) {
                let mc = MC.min(positions - q0);
                for k0 in (0..g.kdim()).step_by(KC) {
                    let kc = KC.min(g.kdim() - k0);
                    pack_positions(g, &taps, &phases, &rows[k0..k0 + kc], q0, mc, packed);
                    for cp in 0..filter.panels {
                        let b = filter.panel(k0, kc, cp);
                        for (i, a) in packed[..panels_len(mc, kc)]
                            .chunks_exact(MR * kc)
                            .enumerate()
                        {
                            store_tile(g, ys, q0 + i * MR, cp * NR, kc, a, b, k0 > 0);
                        }
                    }
                }
            }
        });
        if bias.is_some() || slope.is_some() {
            for y in ys.chunks_exact_mut(fl) {
                finish(y, l, bias, slope);
            }
        }
    })
}

/// For each tap row of the im2col matrix (ci, kh, kw), where its first output position's
/// input lies in an image's phase planes (output row oy, column ox adds oy·qw + ox).
fn tap_rows(g: &Geometry, taps: &Taps) -> Vec<usize> {
    let kk = g.k * g.k;
    (0..g.kdim())
        .map(|r| (r / kk) * taps.phases_len + taps.phase_origin(g, r % kk))
        .collect()
}

/// Values in the panels of mc positions (rounded up to whole panels of [`MR`]) × kc steps.
fn panels_len(mc: usize, kc: usize) -> usize {
    mc.div_ceil(MR) * MR * kc
}

/// The stretches of the item's output positions first..first + count that lie within one
/// output row: for each, where its first position's input sits in the item's phase planes
/// relative to a tap row's origin (see [`tap_rows`]), its index among the count, and its
/// length (one stretch of 16 on maps at least 16 wide, two of 8 on an 8-wide map).
fn stretches(
    g: &Geometry,
    taps: &Taps,
    first: usize,
    count: usize,
) -> ([(usize, usize, usize); MR], usize) {
    let (l, image_phases) = (g.l(), g.c_in * taps.phases_len);
    let mut out = [(0usize, 0usize, 0usize); MR];
    let (mut n, mut done) = (0, 0);
    while done < count {
        let q = first + done;
        let (j, p) = (q / l, q % l);
        let (oy, ox) = (p / g.ow, p % g.ow);
        let len = (g.ow - ox).min(count - done);
        out[n] = (j * image_phases + oy * taps.qw + ox, done, len);
        (n, done) = (n + 1, done + len);
    }
    (out, n)
}

/// `packed` ← the panels of positions q0..q0 + mc (of the item's images·l, image-major)
/// for the taps whose rows start at `rows`: panel i, tap k holds the 16 inputs of
/// positions q0 + 16i.. (zero past mc) at offset (i·kc + k)·16.
fn pack_positions(
    g: &Geometry,
    taps: &Taps,
    phases: &[f32],
    rows: &[usize],
    q0: usize,
    mc: usize,
    packed: &mut [f32],
) {
    let kc = rows.len();
    for (i, panel) in packed[..panels_len(mc, kc)]
        .chunks_exact_mut(MR * kc)
        .enumerate()
    {
        let first = q0 + i * MR;
        let count = MR.min(q0 + mc - first);
        let (stretches, n) = stretches(g, taps, first, count);
        if n == 1 && count == MR {
            // One run of 16 in one output row: fixed-size copies.
            let base = stretches[0].0;
            for (dst, &r) in panel.chunks_exact_mut(MR).zip(rows) {
                let src: &[f32; MR] = phases[r + base..][..MR].try_into().expect("16 values");
                dst.copy_from_slice(src);
            }
            continue;
        }
        for (dst, &r) in panel.chunks_exact_mut(MR).zip(rows) {
            for &(from, to, len) in &stretches[..n] {
                dst[to..to + len].copy_from_slice(&phases[r + from..][..len]);
            }
            dst[count..].fill(0.0);
        }
    }
}

/// The tile of output positions q.. (16 of the item's, image-major) × channels co0..co0 + 6
/// of the features `ys` ← [itself +] the products of `a` (kc × 16) and `b` (kc × 6).
#[allow(clippy::too_many_arguments)]
fn store_tile(
    g: &Geometry,
    ys: &mut [f32],
    q: usize,
    co0: usize,
    kc: usize,
    a: &[f32],
    b: &[f32],
    accumulate: bool,
) {
    let (l, fl) = (g.l(), g.feature_len());
    let images = ys.len() / fl;
    let (j, p) = (q / l, q % l);
    if co0 + NR <= g.c_out && p + MR <= l {
        // Whole: column jj of the tile is channel co0 + jj's row, 16 positions of image j.
        let c = &mut ys[j * fl + co0 * l + p..][..(NR - 1) * l + MR];
        // SAFETY: `suits` checked AVX2 + FMA; a and b hold kc steps; the six columns lie
        // l apart inside `c`.
        unsafe { microkernel::tile(kc, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), l, accumulate) };
        return;
    }
    // At an edge (past the last channel, or across images): through a scratch tile.
    let mut tmp = [0.0f32; MR * NR];
    let cell = |i: usize, jj: usize| {
        let (qq, co) = (q + i, co0 + jj);
        (qq < images * l && co < g.c_out).then(|| (qq / l) * fl + co * l + qq % l)
    };
    if accumulate {
        for jj in 0..NR {
            for i in 0..MR {
                if let Some(o) = cell(i, jj) {
                    tmp[jj * MR + i] = ys[o];
                }
            }
        }
    }
    // SAFETY: as above, into the scratch tile (columns MR apart).
    unsafe { microkernel::tile(kc, a.as_ptr(), b.as_ptr(), tmp.as_mut_ptr(), MR, accumulate) };
    for jj in 0..NR {
        for i in 0..MR {
            if let Some(o) = cell(i, jj) {
                ys[o] = tmp[jj * MR + i];
            }
        }
    }
}

/// Whether the input gradient of `g` runs here: as [`suits`], and [`data_is_wide`].
pub(super) fn suits_data<T: Element>(g: &Geometry) -> bool {
    suits::<T>(g) && data_is_wide(g)
}

/// Whether the input gradient of `g` has output channels enough (the products' inner
/// dimension) to amortise the tiles' additions into the image, and taps enough: over 3
/// image channels (G's last transposed convolution, 48 or 75 taps) the im2col path was
/// faster (this path in 1.1–1.2 of its time).
fn data_is_wide(g: &Geometry) -> bool {
    g.c_out >= 16 && g.kdim() >= 128
}

/// DX (n, c_in, h, w) = convᵀ(DY, W), as [`super::backward_data`]: each tile of 16 output
/// positions × 6 taps of Wᵀ·DY is added straight into the image's stride-phase planes (the
/// col2im of the im2col path, without its matrix).
pub(super) fn backward_data(g: &Geometry, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    let taps = Taps::new(g);
    let kd = g.kdim();
    crate::kernels::flops::add_product(kd, g.n * g.l(), g.c_out);
    let filter = Packed::for_input_gradient(g, wt);
    let ch = super::wide_chunk(g);
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    let rows = tap_rows(g, &taps);
    parallel::filled(g.n * il, ch * il, |c, xs| {
        let images = xs.len() / il;
        let mut phases = vec![0.0f32; images * g.c_in * taps.phases_len];
        let dys = &dy[c * ch * fl..][..images * fl];
        let positions = images * l;
        f32::with_scratch(MC * KC, |packed| {
            for q0 in (0..positions).step_by(MC) {
                let mc = MC.min(positions - q0);
                for k0 in (0..g.c_out).step_by(KC) {
                    let kc = KC.min(g.c_out - k0);
                    pack_features(g, dys, k0, kc, q0, mc, packed);
                    for tp in 0..filter.panels {
                        let b = filter.panel(k0, kc, tp);
                        for (i, a) in packed[..panels_len(mc, kc)]
                            .chunks_exact(MR * kc)
                            .enumerate()
                        {
                            let mut tile = [0.0f32; MR * NR];
                            // SAFETY: `suits` checked AVX2 + FMA; a and b hold kc steps; the
                            // tile's six columns lie MR apart.
                            unsafe {
                                microkernel::tile(
                                    kc,
                                    a.as_ptr(),
                                    b.as_ptr(),
                                    tile.as_mut_ptr(),
                                    MR,
                                    false,
                                )
                            };
                            let first = q0 + i * MR;
                            let count = MR.min(q0 + mc - first);
                            let (stretches, n) = stretches(g, &taps, first, count);
                            for (jj, col) in tile.chunks_exact(MR).enumerate() {
                                if let Some(&r) = rows.get(tp * NR + jj) {
                                    add_stretches(&mut phases[r..], &stretches[..n], col);
                                }
                            }
                        }
                    }
                }
            }
        });
        for (src, dst) in phases
            .chunks_exact(taps.phases_len)
            .zip(xs.chunks_exact_mut(g.h * g.w))
        {
            taps.plane_from_phases(src, dst);
        }
    })
}

/// `packed` ← the panels of the features `dys` (the item's images, each c_out × l) at
/// positions q0..q0 + mc and channels k0..k0 + kc: panel i, channel k holds the 16 values
/// of positions q0 + 16i.. (zero past mc) at offset (i·kc + k)·16.
fn pack_features(
    g: &Geometry,
    dys: &[f32],
    k0: usize,
    kc: usize,
    q0: usize,
    mc: usize,
    packed: &mut [f32],
) {
    let (l, fl) = (g.l(), g.feature_len());
    for (i, panel) in packed[..panels_len(mc, kc)]
        .chunks_exact_mut(MR * kc)
        .enumerate()
    {
        let first = q0 + i * MR;
        let count = MR.min(q0 + mc - first);
        if count == MR && first % l + MR <= l {
            let base = (first / l) * fl + k0 * l + first % l;
            for (k, dst) in panel.chunks_exact_mut(MR).enumerate() {
                let src: &[f32; MR] = dys[base + k * l..][..MR].try_into().expect("16 values");
                dst.copy_from_slice(src);
            }
        } else {
            for (k, dst) in panel.chunks_exact_mut(MR).enumerate() {
                for (ii, d) in dst.iter_mut().enumerate() {
                    let q = first + ii;
                    *d = if ii < count {
                        dys[(q / l) * fl + (k0 + k) * l + q % l]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// The phase planes from one tap row's origin on (`phases`, see [`tap_rows`]) += the
/// tile column `values`, one vector add per stretch (see [`stretches`]).
fn add_stretches(phases: &mut [f32], stretches: &[(usize, usize, usize)], values: &[f32]) {
    for &(at, from, len) in stretches {
        phases[at..at + len]
            .iter_mut()
            .zip(&values[from..from + len])
            .for_each(|(d, &v)| *d += v);
    }
}
