//! The CPU kernels wrapped as candle `CustomOp2`s with backward passes; with the `cuda`
//! feature, the same ops run cuDNN's passes on CUDA devices.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu::{self, Element, Geometry};
#[cfg(feature = "cuda")]
use super::cudnn::{self, Pass};
use super::storage::{Kernel3, apply3, slice};
use super::{convolves, ours, when};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;

/// y = conv2d(x, w): x (n, c_in, h, w), w (c_out, c_in, k, k), stride `s`, padding `p`.
pub fn conv2d(x: &Tensor, w: &Tensor, s: usize, p: usize) -> Result<Tensor> {
    if !convolves(x) {
        return x.conv2d(w, p, s, 1, 1);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, ConvForward { s, p, slope: None })
}

/// y = conv2d(x, w) + b: the convolution and its per-channel bias b (c_out) as one op (one
/// pass over the output, one node in the graph).
pub fn conv2d_bias(x: &Tensor, w: &Tensor, b: &Tensor, s: usize, p: usize) -> Result<Tensor> {
    if !ours(x) {
        // cuDNN's convolution or candle's, then the bias.
        return super::add_channel_bias(&conv2d(x, w, s, p)?, b);
    }
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        ConvForward { s, p, slope: None },
    )
}

/// y = LeakyReLU(conv2d(x, w) + b) with negative-side `slope` ≥ 0: convolution, bias and
/// activation as one op (no pass and no graph node for the activation; its gradient is
/// taken from the output, whose sign is the pre-activation's).
pub fn conv2d_bias_leaky(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    s: usize,
    p: usize,
    slope: f64,
) -> Result<Tensor> {
    if !ours(x) || slope < 0.0 {
        return super::leaky_relu(&conv2d_bias(x, w, b, s, p)?, slope);
    }
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        ConvForward {
            s,
            p,
            slope: Some(slope),
        },
    )
}

/// y = conv_transpose2d(x, w): x (n, c_in, ih, iw), w (c_in, c_out, k, k), stride `s`,
/// padding `p`, output padding `op`; output side (i − 1)·s − 2p + k + op.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, s: usize, p: usize, op: usize) -> Result<Tensor> {
    if !convolves(x) {
        return x.conv_transpose2d(w, p, op, s, 1);
    }
    let (_, _, ih, iw) = x.dims4()?;
    let k = w.dim(2)?;
    let out = |i: usize| ((i - 1) * s + k + op).checked_sub(2 * p);
    let (Some(h), Some(wd)) = (out(ih), out(iw)) else {
        candle_core::bail!("conv_transpose2d: padding {p} too large for input {ih}×{iw}")
    };
    backward_data(x, w, s, p, h, wd)
}

/// Image-side gradient of a convolution whose image side is h × w.
fn backward_data(
    dy: &Tensor,
    w: &Tensor,
    s: usize,
    p: usize,
    h: usize,
    wd: usize,
) -> Result<Tensor> {
    dy.contiguous()?
        .apply_op2(&w.contiguous()?, ConvBackwardData { s, p, h, w: wd })
}

/// Filter gradient of a convolution with k × k kernels.
fn backward_filter(x: &Tensor, dy: &Tensor, s: usize, p: usize, k: usize) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&dy.contiguous()?, ConvBackwardFilter { s, p, k })
}

/// Run `f` on the two inputs as f32 or f64 slices.
fn dispatch(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    f32_fn: impl Fn(&[f32], &[f32]) -> Vec<f32>,
    f64_fn: impl Fn(&[f64], &[f64]) -> Vec<f64>,
) -> Result<CpuStorage> {
    Ok(match (s1, s2) {
        (CpuStorage::F32(_), CpuStorage::F32(_)) => {
            CpuStorage::F32(f32_fn(slice(s1, l1)?, slice(s2, l2)?))
        }
        (CpuStorage::F64(_), CpuStorage::F64(_)) => {
            CpuStorage::F64(f64_fn(slice(s1, l1)?, slice(s2, l2)?))
        }
        _ => candle_core::bail!("gankit conv kernels: both inputs must be f32 or both f64"),
    })
}

fn dims4(s: &Shape, what: &str) -> Result<(usize, usize, usize, usize)> {
    match s.dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        d => candle_core::bail!("{what}: expected a rank-4 tensor, got shape {d:?}"),
    }
}

fn out_side(i: usize, k: usize, s: usize, p: usize) -> Result<usize> {
    match (i + 2 * p).checked_sub(k) {
        Some(v) => Ok(v / s + 1),
        None => candle_core::bail!("conv2d: kernel {k} larger than padded input {}", i + 2 * p),
    }
}

/// A kernel bound to its geometry.
fn run<T: Element>(
    f: fn(&Geometry, &[T], &[T]) -> Vec<T>,
    g: Geometry,
) -> impl Fn(&[T], &[T]) -> Vec<T> {
    move |a, b| f(&g, a, b)
}

/// (X, W) → Y, and (X, W, B) → Y + B, then LeakyReLU when `slope` is set (with a bias only).
struct ConvForward {
    s: usize,
    p: usize,
    slope: Option<f64>,
}

impl ConvForward {
    fn geometry(&self, sx: &Shape, sw: &Shape) -> Result<Geometry> {
        let (n, c_in, h, w) = dims4(sx, "conv2d input")?;
        let (c_out, c_in_w, k, k2) = dims4(sw, "conv2d kernel")?;
        if c_in != c_in_w || k != k2 {
            candle_core::bail!("conv2d: input has {c_in} channels, kernel {:?}", sw.dims());
        }
        let (oh, ow) = (
            out_side(h, k, self.s, self.p)?,
            out_side(w, k, self.s, self.p)?,
        );
        Ok(Geometry {
            n,
            c_in,
            c_out,
            h,
            w,
            oh,
            ow,
            k,
            stride: self.s,
            pad: self.p,
        })
    }

    /// dX and dW, each only when its input is tracked: no dX for the data batch, no dW for
    /// frozen weights.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, wd) = x.dims4()?;
        let dx = when(x, || backward_data(g, w, self.s, self.p, h, wd))?;
        let dw = when(w, || backward_filter(x, g, self.s, self.p, w.dim(2)?))?;
        Ok((dx, dw))
    }
}

fn out_shape(g: &Geometry) -> Shape {
    Shape::from(g.feature_dims().to_vec())
}

impl CustomOp2 for ConvForward {
    fn name(&self) -> &'static str {
        "gankit-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        let out = dispatch(s1, l1, s2, l2, run(cpu::forward, g), run(cpu::forward, g))?;
        Ok((out, out_shape(&g)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        Ok((
            cudnn::run(Pass::Forward, &g, s1, l1, s2, l2)?,
            out_shape(&g),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, g)
    }
}

impl Kernel3 for ConvForward {
    fn run<T: Element>(
        &self,
        x: &[T],
        sx: &Shape,
        w: &[T],
        sw: &Shape,
        b: &[T],
        sb: &Shape,
    ) -> Result<(Vec<T>, Shape)> {
        let g = self.geometry(sx, sw)?;
        if sb.dims() != [g.c_out] {
            candle_core::bail!("conv2d: bias of shape {sb:?} for {} channels", g.c_out);
        }
        let slope = self.slope.map(T::from_f64);
        Ok((cpu::forward_bias(&g, x, w, Some(b), slope), out_shape(&g)))
    }
}

impl CustomOp3 for ConvForward {
    fn name(&self) -> &'static str {
        match self.slope {
            Some(_) => "gankit-conv2d-bias-leaky-relu",
            None => "gankit-conv2d-bias",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        apply3(self, s1, l1, s2, l2, s3, l3)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Through the activation first: its gradient is a differentiable op of g.
        let g = match self.slope {
            Some(slope) => &super::leaky_relu_grad(g, y, slope)?,
            None => g,
        };
        let (dx, dw) = self.grads(x, w, g)?;
        let db = when(b, || super::channel_sum(g))?;
        Ok((dx, dw, db))
    }
}

/// (DY, W) → DX, the image side being h × w.
struct ConvBackwardData {
    s: usize,
    p: usize,
    h: usize,
    w: usize,
}

impl ConvBackwardData {
    /// The convolution whose image-side gradient this is, from dy's and w's shapes.
    fn geometry(&self, sdy: &Shape, sw: &Shape) -> Result<Geometry> {
        let (n, c_out, oh, ow) = dims4(sdy, "conv_transpose2d input")?;
        let (c_out_w, c_in, k, _) = dims4(sw, "conv_transpose2d kernel")?;
        if c_out != c_out_w {
            candle_core::bail!(
                "conv_transpose2d: input has {c_out} channels, kernel {:?}",
                sw.dims()
            );
        }
        if out_side(self.h, k, self.s, self.p)? != oh || out_side(self.w, k, self.s, self.p)? != ow
        {
            candle_core::bail!(
                "conv_transpose2d: output {}×{} does not map back to {oh}×{ow}",
                self.h,
                self.w
            );
        }
        Ok(Geometry {
            n,
            c_in,
            c_out,
            h: self.h,
            w: self.w,
            oh,
            ow,
            k,
            stride: self.s,
            pad: self.p,
        })
    }
}

impl CustomOp2 for ConvBackwardData {
    fn name(&self) -> &'static str {
        "gankit-conv2d-backward-data"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        let out = dispatch(
            s1,
            l1,
            s2,
            l2,
            run(cpu::backward_data, g),
            run(cpu::backward_data, g),
        )?;
        Ok((out, Shape::from(g.image_dims().to_vec())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        let out = cudnn::run(Pass::BackwardData, &g, s1, l1, s2, l2)?;
        Ok((out, Shape::from(g.image_dims().to_vec())))
    }

    fn bwd(
        &self,
        dy: &Tensor,
        w: &Tensor,
        _dx: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d_dy = when(dy, || conv2d(g, w, self.s, self.p))?;
        let dw = when(w, || backward_filter(g, dy, self.s, self.p, w.dim(2)?))?;
        Ok((d_dy, dw))
    }
}

/// (X, DY) → DW for k × k kernels.
struct ConvBackwardFilter {
    s: usize,
    p: usize,
    k: usize,
}

impl ConvBackwardFilter {
    /// The convolution whose filter gradient this is, from x's and dy's shapes.
    fn geometry(&self, sx: &Shape, sdy: &Shape) -> Result<Geometry> {
        let (n, c_in, h, w) = dims4(sx, "filter-gradient image")?;
        let (n2, c_out, oh, ow) = dims4(sdy, "filter-gradient features")?;
        let k = self.k;
        if n != n2 || out_side(h, k, self.s, self.p)? != oh || out_side(w, k, self.s, self.p)? != ow
        {
            candle_core::bail!(
                "filter gradient: image {:?} and features {:?} do not match",
                sx.dims(),
                sdy.dims()
            );
        }
        Ok(Geometry {
            n,
            c_in,
            c_out,
            h,
            w,
            oh,
            ow,
            k,
            stride: self.s,
            pad: self.p,
        })
    }
}

impl CustomOp2 for ConvBackwardFilter {
    fn name(&self) -> &'static str {
        "gankit-conv2d-backward-filter"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        let out = dispatch(
            s1,
            l1,
            s2,
            l2,
            run(cpu::backward_filter, g),
            run(cpu::backward_filter, g),
        )?;
        Ok((out, Shape::from(g.filter_dims().to_vec())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        let out = cudnn::run(Pass::BackwardFilter, &g, s1, l1, s2, l2)?;
        Ok((out, Shape::from(g.filter_dims().to_vec())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        dy: &Tensor,
        _dw: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, w) = x.dims4()?;
        let dx = when(x, || backward_data(dy, g, self.s, self.p, h, w))?;
        let d_dy = when(dy, || conv2d(x, g, self.s, self.p))?;
        Ok((dx, d_dy))
    }
}

#[cfg(test)]
mod tests;
