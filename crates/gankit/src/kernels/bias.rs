//! Per-channel affine pieces: y = x + b[c], y = x · a[c], and the per-channel sum.
//!
//! candle's `broadcast_add` / `broadcast_mul` are correct but their backward passes sum the
//! gradient over the batch and spatial dimensions with a generic strided reduction, which
//! showed up as a fifth of a DCGAN step. [`add_channel_bias`], [`scale_channels`] and
//! [`channel_sum`] are written with each other (and candle's element-wise product), so
//! gradients of any order stay inside the family.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu::Element;
use super::parallel;
use super::storage::{CHUNK, Kernel1, Kernel2, apply1, apply2, ncs};
use super::{needs_grad, ours};

/// v (c) shaped to broadcast over the channels of x: (1, c) or (1, c, 1, 1).
fn per_channel(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (_, c, _) = ncs(x.shape())?;
    if x.rank() == 2 {
        v.reshape((1, c))
    } else {
        v.reshape((1, c, 1, 1))
    }
}

/// x (n, c) or (n, c, h, w) plus b (c) on every channel.
pub fn add_channel_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !ours(x) {
        return x.broadcast_add(&per_channel(x, b)?);
    }
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd)
}

/// x (n, c) or (n, c, h, w) times a (c) on every channel.
pub fn scale_channels(x: &Tensor, a: &Tensor) -> Result<Tensor> {
    if !ours(x) {
        return x.broadcast_mul(&per_channel(x, a)?);
    }
    x.contiguous()?.apply_op2(&a.contiguous()?, ChannelScale)
}

/// The sum of x (n, c) or (n, c, h, w) over everything but the channel: shape (c).
pub fn channel_sum(x: &Tensor) -> Result<Tensor> {
    if !ours(x) {
        let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
        return x.sum(dims);
    }
    x.contiguous()?.apply_op1(ChannelSum)
}

struct BiasAdd;

impl Kernel2 for BiasAdd {
    fn run<T: Element>(&self, x: &[T], sx: &Shape, b: &[T], sb: &Shape) -> Result<(Vec<T>, Shape)> {
        let (_, c, s) = ncs(sx)?;
        if sb.dims() != [c] {
            candle_core::bail!("bias of shape {sb:?} for input {sx:?}");
        }
        let y = parallel::filled(x.len(), c * s, |i, row| {
            let xs = &x[i * c * s..];
            for ((plane, xp), &bc) in row.chunks_mut(s).zip(xs.chunks(s)).zip(b) {
                plane.iter_mut().zip(xp).for_each(|(v, &xv)| *v = xv + bc);
            }
        });
        Ok((y, sx.clone()))
    }
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "gankit-bias-add"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        apply2(self, s1, l1, s2, l2)
    }
    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = if needs_grad(b) {
            Some(channel_sum(g)?)
        } else {
            None
        };
        Ok((Some(g.clone()), db))
    }
}

struct ChannelScale;

impl Kernel2 for ChannelScale {
    fn run<T: Element>(&self, x: &[T], sx: &Shape, a: &[T], sa: &Shape) -> Result<(Vec<T>, Shape)> {
        let (_, c, s) = ncs(sx)?;
        if sa.dims() != [c] {
            candle_core::bail!("channel scale of shape {sa:?} for input {sx:?}");
        }
        let y = parallel::filled(x.len(), c * s, |i, row| {
            let xs = &x[i * c * s..];
            for ((plane, xp), &ac) in row.chunks_mut(s).zip(xs.chunks(s)).zip(a) {
                plane.iter_mut().zip(xp).for_each(|(v, &xv)| *v = xv * ac);
            }
        });
        Ok((y, sx.clone()))
    }
}

impl CustomOp2 for ChannelScale {
    fn name(&self) -> &'static str {
        "gankit-channel-scale"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        apply2(self, s1, l1, s2, l2)
    }
    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = if needs_grad(x) {
            Some(scale_channels(g, a)?)
        } else {
            None
        };
        let da = if needs_grad(a) {
            Some(channel_sum(&(g * x)?)?)
        } else {
            None
        };
        Ok((dx, da))
    }
}

struct ChannelSum;

impl Kernel1 for ChannelSum {
    fn run<T: Element>(&self, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        let (n, c, s) = ncs(sx)?;
        // Channel blocks in parallel; within a block, samples in order (deterministic).
        let block = (CHUNK / (n * s).max(1)).clamp(1, c.max(1));
        let mut out = vec![T::zero(); c];
        parallel::chunks_mut(&mut out, block, |bi, dst| {
            let c0 = bi * block;
            let mut acc = vec![0f64; dst.len()];
            for ni in 0..n {
                for (j, a) in acc.iter_mut().enumerate() {
                    let plane = &x[(ni * c + c0 + j) * s..][..s];
                    *a += super::lanes::sum(plane);
                }
            }
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = T::from_f64(a);
            }
        });
        Ok((out, Shape::from(c)))
    }
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "gankit-channel-sum"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        // The adjoint of a channel sum spreads each channel's gradient over its elements.
        Ok(Some(add_channel_bias(&x.zeros_like()?, g)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_rel, rand};
    use candle_core::{DType, Var};

    #[test]
    fn matches_broadcast_add_and_sum_with_gradients() {
        for shape in [&[3usize, 5][..], &[4, 3, 5, 7], &[2, 6272]] {
            let x = Var::from_tensor(&rand(shape, 1, DType::F32)).unwrap();
            let b = Var::from_tensor(&rand(&[shape[1]], 2, DType::F32)).unwrap();
            let ours_y = add_channel_bias(&x, &b).unwrap();
            let bshape: Vec<usize> = (0..shape.len())
                .map(|d| if d == 1 { shape[1] } else { 1 })
                .collect();
            let theirs = x.broadcast_add(&b.reshape(bshape).unwrap()).unwrap();
            assert!(max_rel(&ours_y, &theirs) < 1e-6);
            let r = rand(shape, 3, DType::F32);
            let ga = (ours_y * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gb = (theirs * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &b] {
                assert!(
                    max_rel(ga.get(v).unwrap(), gb.get(v).unwrap()) < 1e-5,
                    "{shape:?}"
                );
            }
            let dims: Vec<usize> = (0..shape.len()).filter(|&d| d != 1).collect();
            assert!(max_rel(&channel_sum(&r).unwrap(), &r.sum(dims).unwrap()) < 1e-5);

            let ours_y = scale_channels(&x, &b).unwrap();
            let bshape: Vec<usize> = (0..shape.len())
                .map(|d| if d == 1 { shape[1] } else { 1 })
                .collect();
            let theirs = x.broadcast_mul(&b.reshape(bshape).unwrap()).unwrap();
            assert!(max_rel(&ours_y, &theirs) < 1e-6);
            let ga = (ours_y * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gb = (theirs * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &b] {
                assert!(
                    max_rel(ga.get(v).unwrap(), gb.get(v).unwrap()) < 1e-5,
                    "{shape:?}"
                );
            }
        }
    }

    #[test]
    fn channel_sum_gradient_spreads_over_the_channel() {
        let x = Var::from_tensor(&rand(&[2, 3, 2, 2], 4, DType::F64)).unwrap();
        let w = Tensor::new(&[1f64, -2.0, 0.5], &candle_core::Device::Cpu).unwrap();
        let l = (channel_sum(&x).unwrap() * &w).unwrap().sum_all().unwrap();
        let g = l.backward().unwrap();
        let gx: Vec<f64> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (i, v) in gx.iter().enumerate() {
            assert_eq!(*v, [1.0, -2.0, 0.5][(i / 4) % 3]);
        }
    }
}
