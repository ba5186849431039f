//! 1×1 convolutions at stride 1 without padding (Inception's 1×1 branches and its 1×k /
//! k×1 kernels, which run as 1×1 convolutions over shifted stacks; SAGAN's attention
//! projections). Their im2col matrix is the image itself, so each image's product reads
//! the image and writes the features in place: no im2col, col2im, gather or scatter copy.
//!
//! Image n is a c_in × l matrix Xₙ and its features a c_out × l matrix Yₙ, l = h·w:
//! Yₙ = W·Xₙ, DXₙ = Wᵀ·DYₙ and DW = Σₙ DYₙ·Xₙᵀ, with W the c_out × c_in kernel matrix.

use super::super::parallel;
use super::{Element, Geometry, Mat, finish, matmul, sum_in_order};

/// Whether `g` is a 1×1 convolution at stride 1 without padding.
pub(super) fn suits(g: &Geometry) -> bool {
    g.k == 1 && g.stride == 1 && g.pad == 0
}

/// Y = W·X per image, plus `bias` per channel, then LeakyReLU of `slope` when given.
pub(super) fn forward<T: Element>(
    g: &Geometry,
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    slope: Option<T>,
) -> Vec<T> {
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    parallel::filled(g.n * fl, fl, |n, y| {
        let xn = &x[n * il..(n + 1) * il];
        matmul(
            g.c_out,
            l,
            g.c_in,
            y,
            false,
            Mat::rows(wt, g.c_in),
            Mat::rows(xn, l),
        );
        if bias.is_some() || slope.is_some() {
            finish(y, l, bias, slope);
        }
    })
}

/// DX = Wᵀ·DY per image.
pub(super) fn backward_data<T: Element>(g: &Geometry, dy: &[T], wt: &[T]) -> Vec<T> {
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    parallel::filled(g.n * il, il, |n, dx| {
        let dyn_ = &dy[n * fl..(n + 1) * fl];
        matmul(
            g.c_in,
            l,
            g.c_out,
            dx,
            false,
            Mat::transposed(wt, g.c_in),
            Mat::rows(dyn_, l),
        );
    })
}

/// DW = Σₙ DYₙ·Xₙᵀ, summed over `chunk` images per work item and then item by item in
/// order, so the result does not depend on the thread count.
pub(super) fn backward_filter<T: Element>(g: &Geometry, x: &[T], dy: &[T], chunk: usize) -> Vec<T> {
    let (l, fl, il) = (g.l(), g.feature_len(), g.image_len());
    let partials: Vec<Vec<T>> = parallel::map(g.n.div_ceil(chunk), |c| {
        let mut dw = vec![T::default(); g.c_out * g.c_in];
        for n in c * chunk..((c + 1) * chunk).min(g.n) {
            matmul(
                g.c_out,
                g.c_in,
                l,
                &mut dw,
                n > c * chunk,
                Mat::rows(&dy[n * fl..(n + 1) * fl], l),
                Mat::transposed(&x[n * il..(n + 1) * il], l),
            );
        }
        dw
    });
    sum_in_order(partials, g.c_out * g.c_in)
}
