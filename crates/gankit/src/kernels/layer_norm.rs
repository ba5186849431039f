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

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu::Element;
use super::lanes::{dot, squared_deviations, sum};
use super::storage::{Kernel1, Kernel2, Kernel3, apply1, apply2, apply3, ncs};
use super::{ours, parallel, when};

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

/// Which gradient a [`Grad`] op computes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// (g, x, γ) → dx = T(γ·f·g).
    X,
    /// (g, x) → dγ.
    Gamma,
    /// (g) → dβ.
    Beta,
    /// (h, x, γ) → ∂⟨h, dx⟩/∂g = f·γ·T(h).
    XByG,
    /// (h, g, x) → ∂⟨h, dx⟩/∂x.
    XByX,
    /// (h, g, x) → ∂⟨h, dx⟩/∂γ.
    XByGamma,
}

struct Grad {
    kind: Kind,
    saved: Arc<Saved>,
}

/// Per sample: T(h) = s·(h − mean(h) − n·mean(h·n)) as (h in f64, mean(h), mean(h·n)).
fn t_parts<T: Element>(h: &[T], n: &[f64]) -> (Vec<f64>, f64, f64) {
    let h: Vec<f64> = h.iter().map(|v| v.to_f64()).collect();
    let len = h.len() as f64;
    let (h_mean, p) = (sum(&h) / len, dot(&h, n) / len);
    (h, h_mean, p)
}

impl Grad {
    fn refuse<T>(&self) -> Result<T> {
        candle_core::bail!(
            "gankit's layer norm differentiates its input gradient once (second order); the gradient of its {:?} gradient is not implemented",
            self.kind
        )
    }

    /// dx = T(v), v = γ·f·g.
    fn dx<T: Element>(&self, g: &[T], x: &[T]) -> Vec<T> {
        let sv = &self.saved;
        sv.per_sample(|i, row| {
            let s = sv.stats[i].1;
            let n = sv.normalised(x, i);
            let v = sv.through_act(sv.of(g, i), i, &sv.gamma);
            let len = n.len() as f64;
            let (v_mean, m) = (sum(&v) / len, dot(&v, &n) / len);
            for ((o, &vj), &nj) in row.iter_mut().zip(&v).zip(&n) {
                *o = T::from_f64(s * (vj - v_mean - nj * m));
            }
        })
    }

    /// ∂g = f·γ·T(h).
    fn by_g<T: Element>(&self, h: &[T], x: &[T]) -> Vec<T> {
        let sv = &self.saved;
        sv.per_sample(|i, row| {
            let s = sv.stats[i].1;
            let n = sv.normalised(x, i);
            let (h, h_mean, p) = t_parts(sv.of(h, i), &n);
            let w: Vec<f64> = h
                .iter()
                .zip(&n)
                .map(|(&hj, &nj)| s * (hj - h_mean - nj * p))
                .collect();
            for (o, v) in row.iter_mut().zip(sv.through_act(&w, i, &sv.gamma)) {
                *o = T::from_f64(v);
            }
        })
    }

    /// ∂x = T(q) − s·n·⟨h, dx⟩/N, q = −s·(p·v + m·h), all from one round of sums.
    fn by_x<T: Element>(&self, h: &[T], g: &[T], x: &[T]) -> Vec<T> {
        let sv = &self.saved;
        sv.per_sample(|i, row| {
            let s = sv.stats[i].1;
            let n = sv.normalised(x, i);
            let (h, h_mean, p) = t_parts(sv.of(h, i), &n);
            let v = sv.through_act(sv.of(g, i), i, &sv.gamma);
            let len = n.len() as f64;
            let (v_mean, m) = (sum(&v) / len, dot(&v, &n) / len);
            // ⟨h, T(v)⟩ = ⟨T(h), v⟩ = s·(Σh·v − N·(h̄·v̄ + p·m))
            let h_dx = s * (dot(&h, &v) - len * (h_mean * v_mean + p * m));
            let q_mean = -s * (p * v_mean + m * h_mean);
            // mean(q·n) = −s·(p·mean(v·n) + m·mean(h·n)) = −2·s·p·m
            let qn_mean = -2.0 * s * p * m;
            for (o, ((&hj, &vj), &nj)) in row.iter_mut().zip(h.iter().zip(&v).zip(&n)) {
                let q = -s * (p * vj + m * hj);
                *o = T::from_f64(s * (q - q_mean - nj * qn_mean) - s * nj * h_dx / len);
            }
        })
    }

    /// ∂γ_c = Σ T(h)·f·g over channel c.
    fn by_gamma<T: Element>(&self, h: &[T], g: &[T], x: &[T]) -> Vec<T> {
        let sv = &self.saved;
        let ones = vec![1.0; sv.channels];
        sv.channel_sums(|i| {
            let s = sv.stats[i].1;
            let n = sv.normalised(x, i);
            let (h, h_mean, p) = t_parts(sv.of(h, i), &n);
            let w: Vec<f64> = h
                .iter()
                .zip(&n)
                .map(|(&hj, &nj)| s * (hj - h_mean - nj * p))
                .collect();
            sv.plane_dots(&w, &sv.through_act(sv.of(g, i), i, &ones))
        })
    }
}

impl Kernel1 for Grad {
    fn run<T: Element>(&self, g: &[T], sg: &Shape) -> Result<(Vec<T>, Shape)> {
        self.saved.check("gradient", sg)?;
        match self.kind {
            Kind::Beta => {
                let sv = &self.saved;
                let ones = vec![1.0; sv.channels];
                let out = sv.channel_sums(|i| {
                    let u = sv.through_act(sv.of(g, i), i, &ones);
                    u.chunks(sv.plane).map(sum).collect()
                });
                Ok((out, Shape::from(self.saved.channels)))
            }
            k => candle_core::bail!("layer norm: {k:?} is not a one-input op"),
        }
    }
}

impl Kernel2 for Grad {
    fn run<T: Element>(&self, g: &[T], sg: &Shape, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        self.saved.check("gradient", sg)?;
        self.saved.check("input", sx)?;
        match self.kind {
            Kind::Gamma => {
                let sv = &self.saved;
                let ones = vec![1.0; sv.channels];
                let out = sv.channel_sums(|i| {
                    sv.plane_dots(&sv.through_act(sv.of(g, i), i, &ones), &sv.normalised(x, i))
                });
                Ok((out, Shape::from(self.saved.channels)))
            }
            k => candle_core::bail!("layer norm: {k:?} is not a two-input op"),
        }
    }
}

impl Kernel3 for Grad {
    fn run<T: Element>(
        &self,
        a: &[T],
        sa: &Shape,
        b: &[T],
        sb: &Shape,
        c: &[T],
        sc: &Shape,
    ) -> Result<(Vec<T>, Shape)> {
        self.saved.check("gradient", sa)?;
        Ok(match self.kind {
            // (g, x, γ)
            Kind::X => {
                self.saved.check("input", sb)?;
                (self.dx(a, b), sa.clone())
            }
            // (h, x, γ)
            Kind::XByG => {
                self.saved.check("input", sb)?;
                (self.by_g(a, b), sa.clone())
            }
            // (h, g, x)
            Kind::XByX => {
                self.saved.check("input", sc)?;
                (self.by_x(a, b, c), sa.clone())
            }
            Kind::XByGamma => {
                self.saved.check("input", sc)?;
                (self.by_gamma(a, b, c), Shape::from(self.saved.channels))
            }
            k => candle_core::bail!("layer norm: {k:?} is not a three-input op"),
        })
    }
}

impl CustomOp1 for Grad {
    fn name(&self) -> &'static str {
        "gankit-layer-norm-act-grad"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }
    fn bwd(&self, _: &Tensor, _: &Tensor, _: &Tensor) -> Result<Option<Tensor>> {
        self.refuse()
    }
}

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        "gankit-layer-norm-act-grad"
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
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.refuse()
    }
}

impl CustomOp3 for Grad {
    fn name(&self) -> &'static str {
        "gankit-layer-norm-act-grad"
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

    /// Only dx (kind X) has gradients here: the second order of the critic's penalty.
    fn bwd(
        &self,
        g: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        _dx: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if !matches!(self.kind, Kind::X) {
            return self.refuse();
        }
        let op = |kind| Grad {
            kind,
            saved: self.saved.clone(),
        };
        let h = h.contiguous()?;
        let dg = when(g, || h.apply_op3(x, gamma, op(Kind::XByG)))?;
        let dx = when(x, || h.apply_op3(g, x, op(Kind::XByX)))?;
        let dgamma = when(gamma, || h.apply_op3(g, x, op(Kind::XByGamma)))?;
        Ok((dg, dx, dgamma))
    }
}

#[cfg(test)]
mod tests;
