//! Layer normalisation of each sample over all its values, y = (x − μ)·s with
//! s = 1/√(var + ε), in one pass forward.
//!
//! Composed from candle ops it took seven passes forward, and WGAN-GP's critic runs it on
//! every real, fake and interpolated batch. The backward pass is written with
//! differentiable ops on the output y and on s (itself an op of x whose derivative is
//! −s²·y/N), so WGAN-GP's second backward pass goes through it.

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::cpu::Element;
use super::parallel;
use super::storage::{Kernel1, apply1};

/// x (n, …) normalised per sample over everything but the batch axis, no affine.
pub fn layer_norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    if !super::ours(x) {
        return composed(x, eps);
    }
    x.contiguous()?.apply_op1(Normalize {
        eps,
        inv_std: OnceLock::new(),
    })
}

/// The same normalisation from candle's tensor ops (other devices and dtypes).
fn composed(x: &Tensor, eps: f64) -> Result<Tensor> {
    let flat = x.flatten_from(1)?;
    let centred = flat.broadcast_sub(&flat.mean_keepdim(1)?)?;
    let var = centred.sqr()?.mean_keepdim(1)?;
    centred
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .reshape(x.shape())
}

/// Per-sample (mean, 1/√(var + ε)), in f64, for samples of `len` values.
fn moments<T: Element>(x: &[T], len: usize, eps: f64) -> Vec<(f64, f64)> {
    parallel::map(x.len() / len.max(1), |i| {
        let v = &x[i * len..(i + 1) * len];
        let mean = v.iter().map(|a| a.to_f64()).sum::<f64>() / len as f64;
        let var = v.iter().map(|a| (a.to_f64() - mean).powi(2)).sum::<f64>() / len as f64;
        (mean, 1.0 / (var + eps).sqrt())
    })
}

fn sample_len(shape: &Shape) -> Result<usize> {
    match shape.dims() {
        [] | [_] => candle_core::bail!("layer norm needs a batch axis and values: {shape:?}"),
        [_, rest @ ..] => Ok(rest.iter().product()),
    }
}

/// The shape of one value per sample, broadcastable against x.
fn per_sample_shape(shape: &Shape) -> Shape {
    let mut d = vec![1; shape.rank()];
    d[0] = shape.dims()[0];
    Shape::from(d)
}

struct Normalize {
    eps: f64,
    /// 1/√(var + ε) per sample, kept by the forward pass for the backward pass's s.
    inv_std: OnceLock<Vec<f64>>,
}

impl Kernel1 for Normalize {
    fn run<T: Element>(&self, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        let len = sample_len(sx)?;
        let stats = moments(x, len, self.eps);
        let _ = self.inv_std.set(stats.iter().map(|&(_, s)| s).collect());
        let y = parallel::filled(x.len(), len, |i, out| {
            let (mean, s) = stats[i];
            for (o, &v) in out.iter_mut().zip(&x[i * len..]) {
                *o = T::from_f64((v.to_f64() - mean) * s);
            }
        });
        Ok((y, sx.clone()))
    }
}

impl CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        "gankit-layer-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }

    /// dx = s·(g − mean(g) − y·mean(g·y)), means per sample.
    fn bwd(&self, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let flat = |t: &Tensor| t.flatten_from(1);
        let (g2, y2) = (flat(g)?, flat(y)?);
        let g_mean = g2.mean_keepdim(1)?;
        let gy_mean = (&g2 * &y2)?.mean_keepdim(1)?;
        let inner = (g2.broadcast_sub(&g_mean)? - y2.broadcast_mul(&gy_mean)?)?;
        let known = self.inv_std.get().cloned();
        let s = x.contiguous()?.apply_op1(InvStd {
            eps: self.eps,
            known,
        })?;
        let s = s.flatten_from(1)?;
        Ok(Some(inner.broadcast_mul(&s)?.reshape(x.shape())?))
    }
}

/// x → 1/√(var + ε) per sample, shape (n, 1, …, 1).
struct InvStd {
    eps: f64,
    /// The values, when the forward pass of the same x already computed them.
    known: Option<Vec<f64>>,
}

impl Kernel1 for InvStd {
    fn run<T: Element>(&self, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        let len = sample_len(sx)?;
        let s: Vec<f64> = match &self.known {
            Some(s) if s.len() == x.len() / len.max(1) => s.clone(),
            _ => moments(x, len, self.eps)
                .into_iter()
                .map(|(_, s)| s)
                .collect(),
        };
        Ok((
            s.into_iter().map(T::from_f64).collect(),
            per_sample_shape(sx),
        ))
    }
}

impl CustomOp1 for InvStd {
    fn name(&self) -> &'static str {
        "gankit-layer-norm-inv-std"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }

    /// ∂s/∂x = −s²·y/N per sample, with y = layer_norm(x).
    fn bwd(&self, x: &Tensor, s: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let n = sample_len(x.shape())? as f64;
        let y = layer_norm(x, self.eps)?;
        let coef = ((g * s.sqr()?)? * (-1.0 / n))?;
        Ok(Some(y.broadcast_mul(&coef)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_rel, rand};
    use candle_core::{DType, Var};

    /// Σ r·f(x), its gradient in x, and the gradient of ‖that gradient‖² in x (second order).
    fn orders(x: &Var, r: &Tensor, f: &dyn Fn(&Tensor) -> Tensor) -> [Tensor; 3] {
        let y = f(x.as_tensor());
        let out = (&y * r).unwrap().sum_all().unwrap();
        let g = out.backward().unwrap().get(x).unwrap().clone();
        let gg = g.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        [y, g, gg.get(x).unwrap().clone()]
    }

    #[test]
    fn fused_layer_norm_matches_the_composed_one_to_second_order() {
        crate::objectives::penalty::with_second_order(|| {
            for (i, shape) in [&[4usize, 3, 5, 5][..], &[2, 7], &[3, 2, 1, 9]]
                .into_iter()
                .enumerate()
            {
                let seed = 40 + 3 * i as u64;
                let x = ((rand(shape, seed, DType::F64) * 2.0).unwrap() + 0.5).unwrap();
                let x = Var::from_tensor(&x).unwrap();
                let r = rand(shape, seed + 1, DType::F64);
                let ours = orders(&x, &r, &|t| layer_norm(t, 1e-5).unwrap());
                let theirs = orders(&x, &r, &|t| composed(t, 1e-5).unwrap());
                for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    let err = max_rel(a, b);
                    assert!(err < 1e-10, "{shape:?} order {k}: {err}");
                }
            }
        });
    }
}
