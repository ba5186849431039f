//! The layer norm's gradient ops: the input, γ and β gradients of one evaluation, and the
//! three gradients of the input gradient (the second order WGAN-GP's penalty takes). The
//! formulas are in the parent module's documentation.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::super::cpu::Element;
use super::super::lanes::{dot, sum};
use super::super::storage::{Kernel1, Kernel2, Kernel3, apply1, apply2, apply3};
use super::super::when;
use super::Saved;

/// Which gradient a [`Grad`] op computes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
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

pub(super) struct Grad {
    pub(super) kind: Kind,
    pub(super) saved: Arc<Saved>,
}

/// Per sample: T(h) = s·(h − mean(h) − n·mean(h·n)) as (h in f64, mean(h), mean(h·n)).
fn t_parts<T: Element>(h: &[T], n: &[f64]) -> (Vec<f64>, f64, f64) {
    let h: Vec<f64> = h.iter().map(|v| v.to_f64()).collect();
    let len = h.len() as f64;
    let (h_mean, p) = (sum(&h) / len, dot(&h, n) / len);
    (h, h_mean, p)
}

/// Per sample: T(h) = s·(h − mean(h) − n·mean(h·n)).
fn t_op<T: Element>(h: &[T], n: &[f64], s: f64) -> Vec<f64> {
    let (h, h_mean, p) = t_parts(h, n);
    h.iter()
        .zip(n)
        .map(|(&hj, &nj)| s * (hj - h_mean - nj * p))
        .collect()
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
            for (o, w) in row.iter_mut().zip(t_op(&v, &n, s)) {
                *o = T::from_f64(w);
            }
        })
    }

    /// ∂g = f·γ·T(h).
    fn by_g<T: Element>(&self, h: &[T], x: &[T]) -> Vec<T> {
        let sv = &self.saved;
        sv.per_sample(|i, row| {
            let s = sv.stats[i].1;
            let w = t_op(sv.of(h, i), &sv.normalised(x, i), s);
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
            let w = t_op(sv.of(h, i), &sv.normalised(x, i), s);
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
