//! Layer normalisation with its per-channel affine and a LeakyReLU, as one op:
//! z = φ(γ_c·n + β_c), n = (x − μ)·s per sample, s = 1/√(var + ε), φ(a) = a (a > 0) or
//! slope·a (slope 1: no activation).
//!
//! WGAN-GP's critic runs it on every real, fake and interpolated batch, and the penalty
//! differentiates its backward pass once more. Composed from candle ops, the normalisation,
//! scale, shift and activation were four nodes forward, a dozen in the backward pass and
//! several dozen in the second backward pass, each a full pass over the maps plus candle's
//! zero-fill and add for its gradient: a quarter of the WGAN-GP step. Here the forward pass,
//! each gradient and each gradient of the input gradient is one op over the maps.
//!
//! With f_j = φ'(a_j) (1 or slope), u = f·g, v = γ·u and the operator
//! T(q) = s·(q − mean(q) − n·mean(q·n)) (per sample, self-adjoint):
//! - first order: dx = T(v), dγ_c = Σ u·n, dβ_c = Σ u over channel c;
//! - second order, for an upstream h on dx, with w = T(h), p = mean(h·n), m = mean(v·n):
//!   ∂g = f·γ·w, ∂γ_c = Σ w·u over channel c, and
//!   ∂x = T(q) − s·n·⟨h, dx⟩/N with q = −s·(p·v + m·h) (φ is piecewise linear, so f does
//!   not move with x).
//!
//! Derivatives beyond those (third order, or differentiating the γ and β gradients) are
//! refused with an error; nothing in gankit asks for them.

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu::Element;
use super::lanes::{dot, squared_deviations, sum};
use super::storage::{Kernel3, apply3, ncs};
use super::{ours, parallel, when};

mod grad;
use grad::{Grad, Kind};

/// φ(γ·layer_norm(x) + β) for x (n, c) or (n, c, h, w), normalised per sample over all its
/// values, γ and β of shape (c), φ LeakyReLU with negative-side `slope` (1: identity).
pub fn layer_norm_act(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: f64,
) -> Result<Tensor> {
    if !ours(x) {
        return composed(x, gamma, beta, eps, slope);
    }
    Ok(traced(x, gamma, beta, eps, slope)?.0)
}

/// [`layer_norm_act`] on the CPU, with the map g ↦ ∂⟨g, z⟩/∂x of this evaluation: for a
/// critic that builds its input gradient without a backward pass. None on other devices.
pub fn layer_norm_act_traced(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: f64,
) -> Result<Option<(Tensor, LayerNormInputGrad)>> {
    if !ours(x) {
        return Ok(None);
    }
    traced(x, gamma, beta, eps, slope).map(Some)
}

fn traced(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: f64,
) -> Result<(Tensor, LayerNormInputGrad)> {
    let saved = Arc::new(OnceLock::new());
    let (x, gamma) = (x.contiguous()?, gamma.contiguous()?);
    let z = x.apply_op3(
        &gamma,
        &beta.contiguous()?,
        Forward {
            eps,
            slope,
            saved: saved.clone(),
        },
    )?;
    let Some(saved) = saved.get().cloned() else {
        candle_core::bail!("layer norm: the forward pass left no statistics")
    };
    Ok((z, LayerNormInputGrad { x, gamma, saved }))
}

/// The input gradient of one layer-norm evaluation, as a differentiable op of the upstream
/// gradient (the same op the backward pass uses, so it has second derivatives).
pub struct LayerNormInputGrad {
    x: Tensor,
    gamma: Tensor,
    saved: Arc<Saved>,
}

impl LayerNormInputGrad {
    /// ∂⟨g, z⟩/∂x for an upstream gradient g shaped like x.
    pub fn of(&self, g: &Tensor) -> Result<Tensor> {
        g.contiguous()?.apply_op3(
            &self.x,
            &self.gamma,
            Grad {
                kind: Kind::X,
                saved: self.saved.clone(),
            },
        )
    }
}

/// The same from candle's tensor ops (other devices and dtypes; the tests' reference).
fn composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, slope: f64) -> Result<Tensor> {
    let flat = x.flatten_from(1)?;
    let centred = flat.broadcast_sub(&flat.mean_keepdim(1)?)?;
    let var = centred.sqr()?.mean_keepdim(1)?;
    let n = centred
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .reshape(x.shape())?;
    let a = super::add_channel_bias(&super::scale_channels(&n, gamma)?, beta)?;
    if slope == 1.0 {
        Ok(a)
    } else {
        a.relu()? - (a.neg()?.relu()? * slope)?
    }
}

/// What the forward pass leaves for the gradients: per-sample moments, the activation's
/// side for each value, and γ.
struct Saved {
    slope: f64,
    channels: usize,
    /// Values per channel of one sample (h·w).
    plane: usize,
    /// (μ, s) per sample.
    stats: Vec<(f64, f64)>,
    /// a > 0 for each value (φ' = 1), else φ' = slope.
    positive: Vec<bool>,
    gamma: Vec<f64>,
}

impl Saved {
    fn sample_len(&self) -> usize {
        self.channels * self.plane
    }

    fn check(&self, what: &str, shape: &Shape) -> Result<()> {
        let (n, c, s) = ncs(shape)?;
        if n != self.stats.len() || c != self.channels || s != self.plane {
            candle_core::bail!(
                "layer norm {what}: shape {shape:?} does not match the forward pass"
            );
        }
        Ok(())
    }

    /// Sample i of `t` (a tensor shaped like x).
    fn of<'a, T>(&self, t: &'a [T], i: usize) -> &'a [T] {
        let len = self.sample_len();
        &t[i * len..(i + 1) * len]
    }

    /// Sample i's n = (x − μ)·s, in f64.
    fn normalised<T: Element>(&self, x: &[T], i: usize) -> Vec<f64> {
        let (mean, s) = self.stats[i];
        self.of(x, i)
            .iter()
            .map(|&v| (v.to_f64() - mean) * s)
            .collect()
    }

    /// φ'(a)·scale_c·t for t, values of sample i: a gradient taken back through the
    /// activation, times a per-channel factor.
    fn through_act<T: Element>(&self, t: &[T], i: usize, scale: &[f64]) -> Vec<f64> {
        let pos = self.of(&self.positive, i);
        let mut out = vec![0.0; t.len()];
        for (c, &k) in scale.iter().enumerate() {
            let r = c * self.plane..(c + 1) * self.plane;
            let (up, down) = (k, k * self.slope);
            for ((o, &v), &p) in out[r.clone()].iter_mut().zip(&t[r.clone()]).zip(&pos[r]) {
                let f = if p { up } else { down };
                *o = f * v.to_f64();
            }
        }
        out
    }

    /// Per-channel sums over the batch, sample i contributing f(i) (c values), added in
    /// sample order (reproducible for any thread count).
    fn channel_sums<T: Element>(&self, f: impl Fn(usize) -> Vec<f64> + Sync) -> Vec<T> {
        let mut total = vec![0f64; self.channels];
        for p in parallel::map(self.stats.len(), f) {
            total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
        }
        total.into_iter().map(T::from_f64).collect()
    }

    /// Per-channel Σ a·b of one sample.
    fn plane_dots(&self, a: &[f64], b: &[f64]) -> Vec<f64> {
        a.chunks(self.plane)
            .zip(b.chunks(self.plane))
            .map(|(a, b)| dot(a, b))
            .collect()
    }

    /// A new tensor shaped like x, sample i written by f(i, its values).
    fn per_sample<T: Element>(&self, f: impl Fn(usize, &mut [T]) + Sync) -> Vec<T> {
        let len = self.sample_len();
        parallel::filled(self.stats.len() * len, len, f)
    }
}

/// Per-sample (mean, 1/√(var + ε)), in f64, for samples of `len` values.
fn moments<T: Element>(x: &[T], len: usize, eps: f64) -> Vec<(f64, f64)> {
    parallel::map(x.len() / len.max(1), |i| {
        let v = &x[i * len..(i + 1) * len];
        let mean = sum(v) / len as f64;
        let var = squared_deviations(v, mean) / len as f64;
        (mean, 1.0 / (var + eps).sqrt())
    })
}

/// (x, γ, β) → z.
struct Forward {
    eps: f64,
    slope: f64,
    saved: Arc<OnceLock<Arc<Saved>>>,
}

impl Kernel3 for Forward {
    fn run<T: Element>(
        &self,
        x: &[T],
        sx: &Shape,
        gamma: &[T],
        sg: &Shape,
        beta: &[T],
        sb: &Shape,
    ) -> Result<(Vec<T>, Shape)> {
        let (n, c, plane) = ncs(sx)?;
        if sg.dims() != [c] || sb.dims() != [c] {
            candle_core::bail!("layer norm: γ {sg:?} and β {sb:?} for input {sx:?}");
        }
        let len = c * plane;
        let stats = moments(x, len, self.eps);
        let slope = T::from_f64(self.slope);
        let z = parallel::filled(n * len, len, |i, row| {
            // Locals, so the loop keeps them in registers (the output could alias captures).
            let (mean, s, slope) = (stats[i].0, stats[i].1, slope);
            let xs = &x[i * len..];
            for (ch, (out, xp)) in row.chunks_mut(plane).zip(xs.chunks(plane)).enumerate() {
                // a = γ·(x − μ)·s + β = k·x + d
                let k = gamma[ch].to_f64() * s;
                let (k, d) = (T::from_f64(k), T::from_f64(beta[ch].to_f64() - k * mean));
                for (o, &v) in out.iter_mut().zip(xp) {
                    let a = k * v + d;
                    *o = a * if a > T::zero() { T::one() } else { slope };
                }
            }
        });
        let mut positive = vec![false; z.len()];
        parallel::chunks_mut(&mut positive, len, |i, p| {
            for (q, &v) in p.iter_mut().zip(&z[i * len..]) {
                *q = v > T::zero();
            }
        });
        let _ = self.saved.set(Arc::new(Saved {
            slope: self.slope,
            channels: c,
            plane,
            stats,
            positive,
            gamma: gamma.iter().map(|g| g.to_f64()).collect(),
        }));
        Ok((z, sx.clone()))
    }
}

impl CustomOp3 for Forward {
    fn name(&self) -> &'static str {
        "gankit-layer-norm-act"
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
        gamma: &Tensor,
        beta: &Tensor,
        _z: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(saved) = self.saved.get() else {
            candle_core::bail!("layer norm: backward pass before the forward pass ran")
        };
        let op = |kind| Grad {
            kind,
            saved: saved.clone(),
        };
        let g = g.contiguous()?;
        let dx = when(x, || g.apply_op3(x, gamma, op(Kind::X)))?;
        let dgamma = when(gamma, || g.apply_op2(x, op(Kind::Gamma)))?;
        let dbeta = when(beta, || g.apply_op1(op(Kind::Beta)))?;
        Ok((dx, dgamma, dbeta))
    }
}

#[cfg(test)]
mod tests;
