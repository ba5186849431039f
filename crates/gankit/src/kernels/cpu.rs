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
//! Work is split over fixed chunks of the batch (rayon); each chunk runs single-threaded
//! gemm calls into its own buffers, and filter gradients are summed chunk by chunk in order,
//! so results do not depend on scheduling or on the thread count: runs are reproducible.

use rayon::prelude::*;

/// Samples per parallel work item (fixed, so reductions are deterministic).
const CHUNK: usize = 4;

/// Element types the kernels run on.
pub trait Element: Copy + Default + Send + Sync + 'static + std::ops::AddAssign {
    const ONE: Self;
}
impl Element for f32 {
    const ONE: Self = 1.0;
}
impl Element for f64 {
    const ONE: Self = 1.0;
}

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Input-image coordinate of output coordinate `o` at kernel offset `kk`, if inside.
    #[inline]
    fn src(&self, o: usize, kk: usize, size: usize) -> Option<usize> {
        let i = (o * self.stride + kk) as isize - self.pad as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }
}

/// cols (c_in·k·k, oh·ow) ← the patches of one image (c_in, h, w).
fn im2col<T: Element>(g: &Geometry, img: &[T], cols: &mut [T]) {
    let (k, l) = (g.k, g.l());
    for ci in 0..g.c_in {
        let plane = &img[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for kh in 0..k {
            for kw in 0..k {
                let row = &mut cols[((ci * k + kh) * k + kw) * l..][..l];
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    match g.src(oy, kh, g.h) {
                        None => out.fill(T::default()),
                        Some(iy) => {
                            let src = &plane[iy * g.w..(iy + 1) * g.w];
                            for (ox, o) in out.iter_mut().enumerate() {
                                *o = g.src(ox, kw, g.w).map_or(T::default(), |ix| src[ix]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// img (c_in, h, w) ← Σ of the patches in cols (c_in·k·k, oh·ow) (img is overwritten).
fn col2im<T: Element>(g: &Geometry, cols: &[T], img: &mut [T]) {
    img.fill(T::default());
    let (k, l) = (g.k, g.l());
    for ci in 0..g.c_in {
        let plane = &mut img[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for kh in 0..k {
            for kw in 0..k {
                let row = &cols[((ci * k + kh) * k + kw) * l..][..l];
                for oy in 0..g.oh {
                    let Some(iy) = g.src(oy, kh, g.h) else {
                        continue;
                    };
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    for (ox, v) in row[oy * g.ow..(oy + 1) * g.ow].iter().enumerate() {
                        if let Some(ix) = g.src(ox, kw, g.w) {
                            dst[ix] += *v;
                        }
                    }
                }
            }
        }
    }
}

/// Row-major matrix view: pointer, rows stride, columns stride.
#[derive(Clone, Copy)]
struct Mat<T> {
    ptr: *const T,
    rs: isize,
    cs: isize,
}

impl<T> Mat<T> {
    fn rows(p: &[T], cols: usize) -> Self {
        Mat {
            ptr: p.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }
    fn transposed(p: &[T], cols_of_stored: usize) -> Self {
        Mat {
            ptr: p.as_ptr(),
            rs: 1,
            cs: cols_of_stored as isize,
        }
    }
}

/// dst (m×n, row-major) = [dst +] lhs (m×kk) · rhs (kk×n), single-threaded.
fn matmul<T: Element>(
    m: usize,
    n: usize,
    kk: usize,
    dst: &mut [T],
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
) {
    assert!(dst.len() >= m * n);
    // SAFETY: the callers size every buffer for the (m, n, kk) product and its strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            kk,
            dst.as_mut_ptr(),
            1,
            n as isize,
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

/// Y (n, c_out, oh, ow) = conv(X (n, c_in, h, w), W (c_out, c_in, k, k)).
pub fn forward<T: Element>(g: &Geometry, x: &[T], wt: &[T]) -> Vec<T> {
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    let mut y = vec![T::default(); g.n * fl];
    y.par_chunks_mut(CHUNK * fl)
        .enumerate()
        .for_each(|(c, ys)| {
            let mut cols = vec![T::default(); kd * l];
            for (j, yn) in ys.chunks_mut(fl).enumerate() {
                let n = c * CHUNK + j;
                im2col(g, &x[n * il..(n + 1) * il], &mut cols);
                matmul(
                    g.c_out,
                    l,
                    kd,
                    yn,
                    false,
                    Mat::rows(wt, kd),
                    Mat::rows(&cols, l),
                );
            }
        });
    y
}

/// DX (n, c_in, h, w) = convᵀ(DY (n, c_out, oh, ow), W (c_out, c_in, k, k)).
pub fn backward_data<T: Element>(g: &Geometry, dy: &[T], wt: &[T]) -> Vec<T> {
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    let mut dx = vec![T::default(); g.n * il];
    dx.par_chunks_mut(CHUNK * il)
        .enumerate()
        .for_each(|(c, xs)| {
            let mut cols = vec![T::default(); kd * l];
            for (j, xn) in xs.chunks_mut(il).enumerate() {
                let n = c * CHUNK + j;
                // cols (kd × l) = Wᵀ (kd × c_out) · DYₙ (c_out × l)
                matmul(
                    kd,
                    l,
                    g.c_out,
                    &mut cols,
                    false,
                    Mat::transposed(wt, kd),
                    Mat::rows(&dy[n * fl..(n + 1) * fl], l),
                );
                col2im(g, &cols, xn);
            }
        });
    dx
}

/// DW (c_out, c_in, k, k) = Σₙ DYₙ (c_out × l) · im2col(Xₙ)ᵀ (l × kd).
pub fn backward_filter<T: Element>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    let (kd, l, fl, il) = (g.kdim(), g.l(), g.feature_len(), g.image_len());
    let chunks = g.n.div_ceil(CHUNK);
    let partials: Vec<Vec<T>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut cols = vec![T::default(); kd * l];
            let mut dw = vec![T::default(); g.c_out * kd];
            for n in c * CHUNK..((c + 1) * CHUNK).min(g.n) {
                im2col(g, &x[n * il..(n + 1) * il], &mut cols);
                let first = n == c * CHUNK;
                matmul(
                    g.c_out,
                    kd,
                    l,
                    &mut dw,
                    !first,
                    Mat::rows(&dy[n * fl..(n + 1) * fl], l),
                    Mat::transposed(&cols, l),
                );
            }
            dw
        })
        .collect();
    let mut total = vec![T::default(); g.c_out * kd];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

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
                                        (g.src(oy, kh, g.h), g.src(ox, kw, g.w))
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

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn forward_matches_the_definition_and_the_adjoints_hold() {
        let mut rng = crate::rng::Rng::new(0, 0);
        for (n, c_in, c_out, h, w, k, s, p) in [
            (5, 3, 4, 9, 7, 3, 2, 1),
            (6, 2, 3, 8, 8, 4, 2, 1),
            (1, 1, 2, 5, 6, 5, 1, 2),
            (9, 2, 2, 7, 7, 5, 2, 2),
        ] {
            let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let g = Geometry {
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
            };
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
            for (a, b) in y.iter().zip(naive(&g, &x, &wt)) {
                assert!((a - b).abs() < 1e-12, "{g:?}");
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
