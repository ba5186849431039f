//! CPU convolution kernels: im2col / col2im around the `gemm` crate's matrix product.
//!
//! Everything is written in "convolution geometry": an *image side* (n, c_in, h, w) and a
//! *feature side* (n, c_out, oh, ow) related by a k×k kernel W (c_out, c_in, k, k) with
//! stride s and padding p. The three primitives are
//!
//! - [`forward`]: features Y = conv(X, W)                 (conv2d)
//! - [`backward_data`]: image DX = convᵀ(DY, W)           (conv_transpose2d, conv2d's dX)
//! - [`backward_filter`]: DW = Σₙ DYₙ · im2col(Xₙ)ᵀ        (both ops' dW)
//!
//! Work is split over chunks of the batch (on candle's threads) whose size depends on the geometry only.
//! Each chunk lays its images side by side in one im2col matrix (image-major, or for
//! many images with many channels pixel-major: `pixel_major`), so one single-threaded
//! gemm call covers them all (small feature maps would make per-image products too narrow
//! to run fast); filter gradients are summed chunk by chunk in order, so results do not
//! depend on scheduling or on the thread count: runs are reproducible. Some shapes take
//! their own paths: 1×1 convolutions at stride 1 multiply straight from the images
//! (`pointwise`); in f32 on CPUs with AVX2 but not AVX-512, the features and the input
//! gradient over maps of 64 positions or more run as an implicit GEMM that packs its
//! panels straight from the images and adds its tiles straight into them, no im2col
//! matrix (`implicit`, on the register tile of `microkernel`), and over smaller maps in
//! chunks of 16 images the same from the chunk's pixel-major planes
//! (`implicit::pixel_major`); elsewhere the forward pass
//! over a large map goes one image at a time, a band of output rows after another
//! (`banded`).

use super::parallel;
use multiversion::multiversion;

mod banded;
mod implicit;
mod microkernel;
mod pixel_major;
mod pointwise;
mod transpose;

/// Element types the kernels run on.
pub trait Element: candle_core::WithDType + Default {
    const ONE: Self;
    /// Run `f` on this thread's scratch buffer of at least `len` elements (contents left
    /// from earlier calls: every kernel writes before it reads). Reusing it spares a large
    /// zeroed allocation per call.
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! element {
    ($t:ty, $cell:ident) => {
        thread_local! {
            static $cell: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        impl Element for $t {
            const ONE: Self = 1.0;
            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $cell.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < len {
                            buf.resize(len, 0.0);
                        }
                        f(&mut buf[..len])
                    }
                    // Re-entered on this thread (never in these kernels): a fresh buffer.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }
        }
    };
}
element!(f32, SCRATCH_F32);
element!(f64, SCRATCH_F64);

/// `s` as the f32 slice it is (T is f32: the caller checked).
fn as_f32<T: Element>(s: &[T]) -> &[f32] {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    // SAFETY: T is f32.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// `v` as the Vec<T> it is (T is f32: the caller checked).
fn from_f32<T: Element>(v: Vec<f32>) -> Vec<T> {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: T is f32, so pointer, length and capacity describe a Vec<T>.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast(), v.len(), v.capacity()) }
}

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub n: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    /// Rows of the im2col matrix: c_in·k·k.
    fn kdim(&self) -> usize {
        self.c_in * self.k * self.k
    }
    /// Columns of the im2col matrix: oh·ow.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    fn image_len(&self) -> usize {
        self.c_in * self.h * self.w
    }
    fn feature_len(&self) -> usize {
        self.c_out * self.l()
    }
    /// The images' shape: (n, c_in, h, w).
    pub fn image_dims(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }
    /// The features' shape: (n, c_out, oh, ow).
    pub fn feature_dims(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }
    /// The kernels' shape: (c_out, c_in, k, k).
    pub fn filter_dims(&self) -> [usize; 4] {
        [self.c_out, self.c_in, self.k, self.k]
    }
}

/// Where each im2col entry comes from, and where col2im sums it.
///
/// im2col: for kernel tap t = kh·k + kw and output position p = oy·ow + ox, `offsets` holds
/// the offset of input pixel (oy·s + kh, ox·s + kw) in the image plane padded by `pad` on
/// every side, so every entry is a plain gather with no bounds logic in the inner loops.
///
/// col2im (and im2col over wide maps at a stride) use the padded plane split by stride
/// phase: with stride s, the padded pixel (oy·s + kh, ox·s + kw) is pixel
/// (oy + kh / s, ox + kw / s) of phase (kh mod s, kw mod s), the plane of the padded pixels
/// (i·s + kh mod s, j·s + kw mod s). One output row at one tap is then ow consecutive
/// values of one phase row: a vector add (or copy) instead of a scatter-add (or gather)
/// through an offset table.
struct Taps {
    offsets: Vec<u32>,
    /// Side lengths of the padded plane.
    ph: usize,
    pw: usize,
    /// Side lengths of a phase plane.
    qh: usize,
    qw: usize,
    /// Length of one channel's s² phase planes.
    phases_len: usize,
    /// For each image pixel (y, x) in order, its index in the phase planes.
    slots: Vec<u32>,
}

impl Taps {
    fn new(g: &Geometry) -> Taps {
        let (s, p) = (g.stride, g.pad);
        let (ph, pw) = (g.h + 2 * p, g.w + 2 * p);
        let mut offsets = Vec::with_capacity(g.k * g.k * g.l());
        for kh in 0..g.k {
            for kw in 0..g.k {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let (y, x) = (oy * s + kh, ox * s + kw);
                        offsets.push((y * pw + x) as u32);
                    }
                }
            }
        }
        let (qh, qw) = (ph.div_ceil(s), pw.div_ceil(s));
        let mut slots = Vec::with_capacity(g.h * g.w);
        for y in p..g.h + p {
            for x in p..g.w + p {
                let phase = (y % s) * s + x % s;
                slots.push((phase * qh * qw + (y / s) * qw + x / s) as u32);
            }
        }
        Taps {
            offsets,
            ph,
            pw,
            qh,
            qw,
            phases_len: s * s * qh * qw,
            slots,
        }
    }

    /// One channel's phase planes ← its image plane (h × w); the padding's cells are left
    /// as they are.
    fn plane_to_phases<T: Copy>(&self, plane: &[T], phases: &mut [T]) {
        for (&v, &slot) in plane.iter().zip(&self.slots) {
            phases[slot as usize] = v;
        }
    }

    /// One channel's image plane (h × w) ← its phase planes.
    fn plane_from_phases<T: Copy>(&self, phases: &[T], plane: &mut [T]) {
        for (d, &slot) in plane.iter_mut().zip(&self.slots) {
            *d = phases[slot as usize];
        }
    }

    fn tap(&self, t: usize, l: usize) -> &[u32] {
        &self.offsets[t * l..(t + 1) * l]
    }

    /// Where tap t's first output row starts in the phase planes (output row oy starts
    /// oy·qw further on).
    fn phase_origin(&self, g: &Geometry, t: usize) -> usize {
        let (kh, kw, s) = (t / g.k, t % g.k, g.stride);
        let phase = (kh % s) * s + kw % s;
        phase * self.qh * self.qw + (kh / s) * self.qw + kw / s
    }
}

/// Copy image plane `src` (h × w) into the interior of `padded`, a plane of rows `pw` long
/// with `g.pad` rows and columns of border (left untouched).
fn fill_interior<T: Element>(g: &Geometry, pw: usize, src: &[T], padded: &mut [T]) {
    for (y, row) in src.chunks_exact(g.w).take(g.h).enumerate() {
        padded[(y + g.pad) * pw + g.pad..][..g.w].copy_from_slice(row);
    }
}

/// Σ of the equally long `partials`, added in order (so the sum does not depend on which
/// thread computed which part).
fn sum_in_order<T: Element>(partials: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut total = vec![T::default(); len];
    for p in partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

/// Rows of `cols` (c_in·k·k rows of stride `ld`), columns `at..at + oh·ow` ← the patches of
/// one image (c_in, h, w).
///
/// At a stride over maps at least [`PHASE_ROWS_MIN`] wide, through the stride-phase planes
/// ([`im2col_phases`]); otherwise from the padded plane.
fn im2col<T: Element>(g: &Geometry, taps: &Taps, img: &[T], cols: &mut [T], ld: usize, at: usize) {
    if g.stride > 1 && g.ow >= PHASE_ROWS_MIN {
        im2col_phases(g, taps, img, cols, ld, at)
    } else {
        im2col_padded(g, taps, img, cols, ld, at)
    }
}

/// [`im2col`] from the padded plane: at stride 1 each output row at a tap is a run of ow
/// consecutive padded pixels (one copy), at a larger stride each value is gathered through
/// `Taps::offsets`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn im2col_padded<T: Element>(
    g: &Geometry,
    taps: &Taps,
    img: &[T],
    cols: &mut [T],
    ld: usize,
    at: usize,
) {
    let (kk, l, plane) = (g.k * g.k, g.l(), g.h * g.w);
    let mut padded = vec![T::default(); taps.ph * taps.pw];
    for ci in 0..g.c_in {
        fill_interior(g, taps.pw, &img[ci * plane..(ci + 1) * plane], &mut padded);
        for t in 0..kk {
            let row = &mut cols[(ci * kk + t) * ld + at..][..l];
            if g.stride == 1 {
                let (kh, kw) = (t / g.k, t % g.k);
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    out.copy_from_slice(&padded[(oy + kh) * taps.pw + kw..][..g.ow]);
                }
            } else {
                for (o, &i) in row.iter_mut().zip(taps.tap(t, l)) {
                    *o = padded[i as usize];
                }
            }
        }
    }
}

/// [`im2col`] at a stride from the stride-phase planes (the layout col2im sums into, see
/// [`Taps`]), filled once per channel through `Taps::slots`: each output row at a tap is
/// then a run of ow consecutive values of one phase plane, one copy instead of ow gathers.
/// Measured per image, one thread, against the gather (5×5 and 4×4 kernels at stride 2):
/// 3 channels at 64×64 in 0.5–0.8 of its time, 64 channels at 32×32 in 0.6–0.95; over
/// narrower maps the rows are too short to pay (1.2–2.5 times its time at 16×16 and 8×8).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn im2col_phases<T: Element>(
    g: &Geometry,
    taps: &Taps,
    img: &[T],
    cols: &mut [T],
    ld: usize,
    at: usize,
) {
    let (kk, l, plane) = (g.k * g.k, g.l(), g.h * g.w);
    // The padding's cells sit at the same places in every channel's phase planes: zeroed
    // once, never written.
    let mut phases = vec![T::default(); taps.phases_len];
    for ci in 0..g.c_in {
        taps.plane_to_phases(&img[ci * plane..(ci + 1) * plane], &mut phases);
        for t in 0..kk {
            let row = &mut cols[(ci * kk + t) * ld + at..][..l];
            let origin = taps.phase_origin(g, t);
            for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                out.copy_from_slice(&phases[origin + oy * taps.qw..][..g.ow]);
            }
        }
    }
}

/// The narrowest output rows for which strided im2col copies rows of phase planes.
const PHASE_ROWS_MIN: usize = 16;

/// img (c_in, h, w) ← Σ of the patches in rows of `cols` (stride `ld`), columns
/// `at..at + oh·ow` (img is overwritten).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn col2im<T: Element>(g: &Geometry, taps: &Taps, cols: &[T], ld: usize, at: usize, img: &mut [T]) {
    let (kk, l, plane) = (g.k * g.k, g.l(), g.h * g.w);
    let mut phases = vec![T::default(); taps.phases_len];
    for ci in 0..g.c_in {
        phases.fill(T::default());
        for t in 0..kk {
            let row = &cols[(ci * kk + t) * ld + at..][..l];
            let origin = taps.phase_origin(g, t);
            for (oy, src) in row.chunks_exact(g.ow).enumerate() {
                let dst = &mut phases[origin + oy * taps.qw..][..g.ow];
                dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
            }
        }
        taps.plane_from_phases(&phases, &mut img[ci * plane..(ci + 1) * plane]);
    }
}

/// Row-major matrix view: pointer, rows stride, columns stride.
#[derive(Clone, Copy)]
pub(crate) struct Mat<T> {
    ptr: *const T,
    rs: isize,
    cs: isize,
}

impl<T> Mat<T> {
    pub(crate) fn rows(p: &[T], cols: usize) -> Self {
        Mat {
            ptr: p.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }
    pub(crate) fn transposed(p: &[T], cols_of_stored: usize) -> Self {
        Mat {
            ptr: p.as_ptr(),
            rs: 1,
            cs: cols_of_stored as isize,
        }
    }
}

/// dst (m×n, row-major) = [dst +] lhs (m×kk) · rhs (kk×n), single-threaded.
pub(crate) fn matmul<T: Element>(
    m: usize,
    n: usize,
    kk: usize,
    dst: &mut [T],
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
) {
    assert!(dst.len() >= m * n);
    // SAFETY: dst holds m rows of n elements; the callers size lhs and rhs for the
    // (m, n, kk) product and its strides.
    unsafe { matmul_block(m, n, kk, dst.as_mut_ptr(), n, accumulate, lhs, rhs) }
}

/// [`matmul`] into an m×n block of a larger row-major matrix whose rows are `ld` apart,
/// starting at `dst`.
///
/// # Safety
/// `dst` must be valid for reads and writes of the block (m rows of n elements, `ld`
/// apart) and nothing else may access it meanwhile; `lhs` and `rhs` must be valid for the
/// (m, n, kk) product with their strides.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_block<T: Element>(
    m: usize,
    n: usize,
    kk: usize,
    dst: *mut T,
    ld: usize,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
) {
    super::flops::add_product(m, n, kk);
    // SAFETY: as the caller promised.
    unsafe {
        gemm::gemm(
            m,
            n,
            kk,
            dst,
            1,
            ld as isize,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Images per work item: up to 16, for wide matrix products on small feature maps (and a
/// batch of 64 in four items, which two or four threads share evenly), while the chunk's
/// im2col matrix stays within 2^20 values (4 MiB in f32) and 4096 columns. Depends on the
/// geometry only, so the reduction order, and with it every result, is the same for any
/// thread count.
fn chunk(g: &Geometry) -> usize {
    let l = g.l().max(1);
    (4096 / l)
        .min((1 << 20) / (g.kdim() * l).max(1))
        .clamp(1, 16)
}

/// Images per work item of the input and filter gradients: as [`chunk`], raised where that
/// leaves the item's product fewer than 256 columns (images·l, on maps of 4×4 or so) to as
/// many images as reach 256, up to 16 and an im2col matrix of 2^22 values (16 MiB in f32).
/// Every item packs the whole filter W for its product (input gradient) or writes a whole
/// c_out × c_in·k·k partial sum (filter gradient), so too narrow an item is mostly that
/// work. Report 000's D at 8×8 → 4×4 (256 → 512 channels, 5×5; G's first transposed
/// convolution has the same geometry) went from 10 images an item to 16, 7 items to 4:
/// filter gradient in 0.8 of its time, input gradient in 0.86–0.90 (one process
/// alternating the two, two threads and one). Its forward pass gained nothing from it.
fn wide_chunk(g: &Geometry) -> usize {
    let (ch, l) = (chunk(g), g.l().max(1));
    if ch * l >= 256 {
        return ch;
    }
    256usize
        .div_ceil(l)
        .min((1 << 22) / (g.kdim() * l).max(1))
        .clamp(ch, 16)
}

/// matrix (c_out × images·l) ← the features of `images` consecutive samples (each c_out × l).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn gather<T: Element>(g: &Geometry, samples: &[T], matrix: &mut [T], images: usize) {
    let (l, fl, ld) = (g.l(), g.feature_len(), images * g.l());
    for j in 0..images {
        for co in 0..g.c_out {
            matrix[co * ld + j * l..][..l].copy_from_slice(&samples[j * fl + co * l..][..l]);
        }
    }
}

/// The inverse of [`gather`]: samples ← matrix, plus `bias[co]` on channel co when given.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn scatter<T: Element>(
    g: &Geometry,
    matrix: &[T],
    samples: &mut [T],
    images: usize,
    bias: Option<&[T]>,
) {
    let (l, fl, ld) = (g.l(), g.feature_len(), images * g.l());
    for j in 0..images {
        for co in 0..g.c_out {
            let (dst, src) = (
                &mut samples[j * fl + co * l..][..l],
                &matrix[co * ld + j * l..],
            );
            match bias {
                Some(b) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v + b[co]),
                None => dst.copy_from_slice(&src[..l]),
            }
        }
    }
}

/// Y (n, c_out, oh, ow) = conv(X (n, c_in, h, w), W (c_out, c_in, k, k)).
pub fn forward<T: Element>(g: &Geometry, x: &[T], wt: &[T]) -> Vec<T> {
    forward_bias(g, x, wt, None, None)
}

/// [`forward`] plus `bias[co]` (c_out) on every output channel, added as the products are
/// written out, then LeakyReLU with negative-side `slope` when given (applied to each
/// chunk of images while it is still in cache).
pub fn forward_bias<T: Element>(
    g: &Geometry,
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    slope: Option<T>,
) -> Vec<T> {
    if pointwise::suits(g) {
        return pointwise::forward(g, x, wt, bias, slope);
    }
    if implicit::suits::<T>(g) {
        let y = implicit::forward(
            g,
            as_f32(x),
            as_f32(wt),
            bias.map(as_f32),
            slope.map(|s| s.to_f64() as f32),
        );
        return from_f32(y);
    }
    if implicit::pixel_major::suits::<T>(g) {
        let y = implicit::pixel_major::forward(
            g,
            as_f32(x),
            as_f32(wt),
            bias.map(as_f32),
            slope.map(|s| s.to_f64() as f32),
        );
        return from_f32(y);
    }
    let ch = chunk(g);
    if banded::suits(g, ch) {
        return banded::forward(g, x, wt, bias, slope);
    }
    let taps = Taps::new(g);
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    parallel::filled(g.n * fl, ch * fl, |c, ys| {
        let images = ys.len() / fl;
        let ld = images * l;
        T::with_scratch((kd + g.c_out) * ld, |buf| {
            let (cols, out) = buf.split_at_mut(kd * ld);
            let pixel_major = pixel_major::suits(g, images);
            if pixel_major {
                pixel_major::im2col(g, &taps, &x[c * ch * il..], images, cols);
            } else {
                for j in 0..images {
                    let n = c * ch + j;
                    im2col(g, &taps, &x[n * il..(n + 1) * il], cols, ld, j * l);
                }
            }
            matmul(
                g.c_out,
                ld,
                kd,
                out,
                false,
                Mat::rows(wt, kd),
                Mat::rows(cols, ld),
            );
            if pixel_major {
                pixel_major::scatter(g, out, ys, images, bias);
            } else {
                scatter(g, out, ys, images, bias);
            }
        });
        if let Some(slope) = slope {
            super::leaky_relu::leaky_in_place(ys, slope);
        }
    })
}

/// Rows of `l` values of `y` (one per channel) ← LeakyReLU(row + bias[channel]), each part
/// when given.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn finish<T: Element>(y: &mut [T], l: usize, bias: Option<&[T]>, slope: Option<T>) {
    for (co, row) in y.chunks_exact_mut(l).enumerate() {
        let b = bias.map_or(T::zero(), |b| b[co]);
        match slope {
            Some(s) => row.iter_mut().for_each(|v| {
                let t = *v + b;
                *v = if t > T::zero() { t } else { t * s };
            }),
            None => row.iter_mut().for_each(|v| *v += b),
        }
    }
}

/// DX (n, c_in, h, w) = convᵀ(DY (n, c_out, oh, ow), W (c_out, c_in, k, k)).
pub fn backward_data<T: Element>(g: &Geometry, dy: &[T], wt: &[T]) -> Vec<T> {
    if pointwise::suits(g) {
        return pointwise::backward_data(g, dy, wt);
    }
    if implicit::suits_data::<T>(g) {
        return from_f32(implicit::backward_data(g, as_f32(dy), as_f32(wt)));
    }
    if implicit::pixel_major::suits_data::<T>(g) {
        let dx = implicit::pixel_major::backward_data(g, as_f32(dy), as_f32(wt));
        return from_f32(dx);
    }
    let taps = Taps::new(g);
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    let ch = wide_chunk(g);
    parallel::filled(g.n * il, ch * il, |c, xs| {
        let images = xs.len() / il;
        let ld = images * l;
        T::with_scratch((kd + g.c_out) * ld, |buf| {
            let (cols, m) = buf.split_at_mut(kd * ld);
            let pixel_major = pixel_major::suits(g, images);
            if pixel_major {
                pixel_major::gather(g, &dy[c * ch * fl..], m, images);
            } else {
                gather(g, &dy[c * ch * fl..], m, images);
            }
            // cols (kd × images·l) = Wᵀ (kd × c_out) · DY (c_out × images·l)
            matmul(
                kd,
                ld,
                g.c_out,
                cols,
                false,
                Mat::transposed(wt, kd),
                Mat::rows(m, ld),
            );
            if pixel_major {
                pixel_major::col2im(g, &taps, cols, images, xs);
            } else {
                for (j, xn) in xs.chunks_mut(il).enumerate() {
                    col2im(g, &taps, cols, ld, j * l, xn);
                }
            }
        });
    })
}

/// DW (c_out, c_in, k, k) = Σₙ DYₙ (c_out × l) · im2col(Xₙ)ᵀ (l × kd).
pub fn backward_filter<T: Element>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    if pointwise::suits(g) {
        return pointwise::backward_filter(g, x, dy, chunk(g));
    }
    let ch = wide_chunk(g);
    let taps = Taps::new(g);
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    let chunks = g.n.div_ceil(ch);
    let partials: Vec<Vec<T>> = parallel::map(chunks, |c| {
        let first = c * ch;
        let images = ch.min(g.n - first);
        let ld = images * l;
        let mut dw = vec![T::default(); g.c_out * kd];
        T::with_scratch((kd + g.c_out) * ld, |buf| {
            let (cols, m) = buf.split_at_mut(kd * ld);
            if pixel_major::suits(g, images) {
                pixel_major::im2col(g, &taps, &x[first * il..], images, cols);
                pixel_major::gather(g, &dy[first * fl..], m, images);
            } else {
                for j in 0..images {
                    let n = first + j;
                    im2col(g, &taps, &x[n * il..(n + 1) * il], cols, ld, j * l);
                }
                gather(g, &dy[first * fl..], m, images);
            }
            matmul(
                g.c_out,
                kd,
                ld,
                &mut dw,
                false,
                Mat::rows(m, ld),
                Mat::transposed(cols, ld),
            );
        });
        dw
    });
    sum_in_order(partials, g.c_out * kd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input coordinate of output coordinate `o` at kernel offset `kk`, if inside.
    fn src(g: &Geometry, o: usize, kk: usize, size: usize) -> Option<usize> {
        let i = (o * g.stride + kk) as isize - g.pad as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }

    /// Direct (quadruple-loop) convolution, the definition.
    fn naive(g: &Geometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.c_out * g.oh * g.ow];
        for n in 0..g.n {
            for co in 0..g.c_out {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0.0;
                        for ci in 0..g.c_in {
                            for kh in 0..g.k {
                                for kw in 0..g.k {
                                    if let (Some(iy), Some(ix)) =
                                        (src(g, oy, kh, g.h), src(g, ox, kw, g.w))
                                    {
                                        s += x[((n * g.c_in + ci) * g.h + iy) * g.w + ix]
                                            * w[((co * g.c_in + ci) * g.k + kh) * g.k + kw];
                                    }
                                }
                            }
                        }
                        y[((n * g.c_out + co) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    /// n images, c_in → c_out channels, h × w, a k×k kernel at stride s with padding p.
    #[allow(clippy::too_many_arguments)]
    fn geometry(
        n: usize,
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> Geometry {
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        Geometry {
            n,
            c_in,
            c_out,
            h,
            w,
            oh,
            ow,
            k,
            stride: s,
            pad: p,
        }
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// The f32 kernels (on AVX2 CPUs the implicit GEMM of `implicit`) against the f64
    /// definition: the 64×64 networks' geometries at a small batch, and edges (channels not
    /// a multiple of 6, positions not of 16, maps narrower than 16, stride 1).
    #[test]
    fn f32_kernels_match_the_definition() {
        let mut rng = crate::rng::Rng::new(1, 0);
        for (n, c_in, c_out, h, w, k, s, p) in [
            (2, 3, 64, 64, 64, 4, 2, 1),
            (2, 64, 128, 32, 32, 4, 2, 1),
            (3, 128, 20, 16, 16, 4, 2, 1),
            (3, 40, 64, 16, 16, 5, 2, 2),
            (3, 7, 13, 11, 9, 3, 1, 1),
            (4, 5, 6, 20, 37, 3, 2, 0),
            (3, 16, 24, 13, 11, 3, 1, 1),
            (2, 32, 16, 18, 18, 4, 2, 1),
            // 16 to 63 positions an image, in chunks of 16 images: pixel-major panels
            // (`implicit::pixel_major`), the features with 512+ taps, the input gradient
            // with 128+ output channels; channels and taps not multiples of 6, a map
            // width not a multiple of 8 (the planes' transposes)
            (32, 64, 20, 14, 14, 4, 2, 1),
            (16, 8, 128, 8, 8, 4, 2, 1),
            (16, 40, 130, 9, 9, 4, 2, 1),
            // under 64 positions and a batch not in chunks of 16: the im2col path
            (5, 40, 64, 8, 8, 5, 2, 2),
        ] {
            let g = geometry(n, c_in, c_out, h, w, k, s, p);
            let (oh, ow) = (g.oh, g.ow);
            let x = rng.normal_vec(n * c_in * h * w, 0.0, 1.0);
            let wt = rng.normal_vec(c_out * c_in * k * k, 0.0, 1.0);
            let wide = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
            let want = naive(&g, &wide(&x), &wide(&wt));
            // f32 sums of c_in·k·k products of unit normals: round-off grows with their count.
            let tol = 2e-6 * g.kdim() as f64;
            let bias: Vec<f32> = (0..c_out).map(|c| c as f32 / 10.0).collect();
            let y = forward_bias(&g, &x, &wt, Some(&bias), Some(0.2));
            for (i, (&a, b)) in y.iter().zip(&want).enumerate() {
                let t = b + f64::from(bias[i / g.l() % c_out]);
                let b = if t > 0.0 { t } else { 0.2 * t };
                assert!((f64::from(a) - b).abs() < tol, "{g:?} at {i}: {a} vs {b}");
            }
            // The input gradient against the f64 kernel (checked against the definition
            // through the adjoint identity in the test below).
            let dy = rng.normal_vec(n * c_out * oh * ow, 0.0, 1.0);
            let want = backward_data(&g, &wide(&dy), &wide(&wt));
            let tol = 2e-6 * (c_out * k * k) as f64;
            for (i, (&a, b)) in backward_data(&g, &dy, &wt).iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(a) - b).abs() < tol,
                    "{g:?} dx at {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn forward_matches_the_definition_and_the_adjoints_hold() {
        let mut rng = crate::rng::Rng::new(0, 0);
        for (n, c_in, c_out, h, w, k, s, p) in [
            (5, 3, 4, 9, 7, 3, 2, 1),
            (6, 2, 3, 8, 8, 4, 2, 1),
            (1, 1, 2, 5, 6, 5, 1, 2),
            (9, 2, 2, 7, 7, 5, 2, 2),
            (37, 2, 3, 5, 5, 3, 1, 1),
            (3, 2, 2, 6, 6, 2, 3, 0),
            // backward_data's pixel-major col2im: chunks of 16 and 4 images, 9 channels
            (20, 9, 4, 6, 5, 4, 2, 1),
            (17, 8, 3, 7, 7, 3, 1, 1),
            // 1×1 at stride 1 without padding: straight from the image (`pointwise`);
            // with a stride, through im2col
            (5, 6, 4, 5, 7, 1, 1, 0),
            (19, 9, 3, 4, 4, 1, 1, 0),
            (3, 4, 5, 6, 6, 1, 2, 0),
            // at a stride over maps at least 16 wide, im2col through the phase planes
            (3, 3, 4, 36, 36, 5, 2, 2),
            (2, 2, 3, 32, 34, 4, 2, 1),
            // a 4×4 map behind many channels: 8 images an item, 16 for the gradients
            (20, 300, 2, 8, 8, 5, 2, 2),
            // large maps, one image per item, in bands of output rows (`banded`): padded,
            // strided with a last partial band, unpadded
            (2, 16, 4, 60, 60, 3, 1, 1),
            (1, 8, 3, 140, 140, 5, 2, 2),
            (2, 12, 3, 72, 72, 3, 1, 0),
        ] {
            let g = geometry(n, c_in, c_out, h, w, k, s, p);
            let (oh, ow) = (g.oh, g.ow);
            let mut f = |len| -> Vec<f64> {
                rng.normal_vec(len, 0.0, 1.0)
                    .into_iter()
                    .map(f64::from)
                    .collect()
            };
            let x = f(n * c_in * h * w);
            let wt = f(c_out * c_in * k * k);
            let dy = f(n * c_out * oh * ow);
            let y = forward(&g, &x, &wt);
            // Sums of c_in·k·k products of unit normals, in a different order: round-off
            // grows with their count.
            let tol = (1e-14 * g.kdim() as f64).max(1e-12);
            for (a, b) in y.iter().zip(naive(&g, &x, &wt)) {
                assert!((a - b).abs() < tol, "{g:?}: {a} vs {b}");
            }
            // <conv(x, w), dy> = <x, convᵀ(dy, w)> = <w, filter_grad(x, dy)>
            let lhs = dot(&y, &dy);
            assert!(
                (lhs - dot(&x, &backward_data(&g, &dy, &wt))).abs() < 1e-9 * lhs.abs().max(1.0)
            );
            assert!(
                (lhs - dot(&wt, &backward_filter(&g, &x, &dy))).abs() < 1e-9 * lhs.abs().max(1.0)
            );
        }
    }
}
