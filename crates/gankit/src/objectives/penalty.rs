//! The WGAN-GP gradient penalty on interpolates x̂ = ε x + (1 − ε) x̃, one ε ~ U[0, 1] per
//! sample (not per pixel).
//!
//! - [`exact`]: mean over the batch of (‖∇x̂ D(x̂)‖₂ − 1)², the norm over all of a sample's
//!   values. The loss's backward pass differentiates through ∇x̂ D (a second-order
//!   gradient). The conv critics build ∇x̂ D forward from fused ops
//!   ([`Discriminator::input_gradient`]); for the others it comes from a first backward
//!   pass that stays in the graph, which candle keeps only when
//!   `CANDLE_GRAD_DO_NOT_DETACH=1` was set before the thread's first backward pass. The
//!   `gankit` binary sets it at start, and [`exact`] refuses to run without it.
//! - [`finite_difference`]: report 003 eq. 21, (|D(x₁) − D(x₂)| / ‖x₁ − x₂‖ − 1)² for two
//!   interpolates x₁, x₂ on the same real–fake segment: a first-order approximation of the
//!   directional derivative along that segment, so it equals the exact penalty only when
//!   ∇D points along the segment.

use candle_core::{D, Tensor, Var};

use crate::models::Discriminator;
use crate::nn::Mode;
use crate::rng::Rng;
use crate::{Error, Result};

/// The penalty (a differentiable scalar) and the mean gradient norm it was computed from.
pub struct Penalty {
    /// Per sample: ‖∇x̂ D(x̂)‖ (exact) or the finite-difference slope, in the graph.
    pub norms: Tensor,
    /// Their mean over the batch.
    pub mean_norm: f64,
}

impl Penalty {
    /// The penalty E[(norm − K)²] with target K (`gp.target`; 1 in Gulrajani et al. 2017,
    /// the K-Lipschitz form of report 003 eq. 18 otherwise).
    pub fn value(&self, target: f64) -> Result<Tensor> {
        Ok((&self.norms - target)?.sqr()?.mean_all()?)
    }
}

/// Per-sample ε ~ U[0, 1], shaped (n, 1, 1, 1) to broadcast over images.
fn epsilons(rng: &mut Rng, like: &Tensor) -> Result<Tensor> {
    let n = like.dim(0)?;
    let e = Tensor::from_vec(rng.uniform_vec(n, 0.0, 1.0), (n, 1, 1, 1), like.device())?;
    Ok(e.to_dtype(like.dtype())?)
}

/// ε x + (1 − ε) x̃ for per-sample ε (n, 1, 1, 1); fakes are detached.
pub fn interpolate(real: &Tensor, fake: &Tensor, eps: &Tensor) -> Result<Tensor> {
    let fake = fake.detach();
    Ok((fake.broadcast_add(&real.detach().sub(&fake)?.broadcast_mul(eps)?))?)
}

/// Per-sample L2 norm over every axis but the first, (n).
fn norms(t: &Tensor) -> Result<Tensor> {
    Ok((t.flatten_from(1)?.sqr()?.sum(D::Minus1)? + 1e-12)?.sqrt()?)
}

/// ∇x D(x) for each sample, kept in the graph (second-order differentiable).
pub fn input_gradient(
    d: &dyn Discriminator,
    x: &Tensor,
    labels: Option<&Tensor>,
    mode: &mut Mode,
) -> Result<Tensor> {
    let x = Var::from_tensor(&x.detach())?;
    match d.input_gradient(&x, labels, mode)? {
        Some(g) => Ok(g),
        None => input_gradient_by_backward(d, &x, labels, mode),
    }
}

/// [`input_gradient`] through a backward pass of D (for critics without their own).
pub(crate) fn input_gradient_by_backward(
    d: &dyn Discriminator,
    x: &Var,
    labels: Option<&Tensor>,
    mode: &mut Mode,
) -> Result<Tensor> {
    let out = d.forward(x, labels, mode)?;
    // Only ∂D/∂x is wanted: D's weight gradients are skipped in this pass.
    let grads = crate::kernels::input_gradient_only(x, || out.logits.sum_all()?.backward())?;
    let g = grads
        .get(x)
        .ok_or_else(|| Error::Diverged("the critic's output does not depend on its input".into()))?
        .clone();
    if !g.track_op() {
        return Err(Error::Config(
            "the exact gradient penalty needs second-order gradients: set CANDLE_GRAD_DO_NOT_DETACH=1 in the environment before starting (the gankit binary does), or use gp.mode = \"finite-difference\"".into(),
        ));
    }
    Ok(g)
}

/// The exact penalty at interpolates with the given per-sample ε (n, 1, 1, 1); `labels` are
/// the classes of both batches in a conditional run.
pub fn exact_with(
    d: &dyn Discriminator,
    real: &Tensor,
    fake: &Tensor,
    labels: Option<&Tensor>,
    eps: &Tensor,
    mode: &mut Mode,
) -> Result<Penalty> {
    let x_hat = interpolate(real, fake, eps)?;
    let n = norms(&input_gradient(d, &x_hat, labels, mode)?)?;
    let mean_norm = crate::objectives::common::mean(&n)?;
    Ok(Penalty {
        norms: n,
        mean_norm,
    })
}

/// The exact penalty at random interpolates.
pub fn exact(
    d: &dyn Discriminator,
    real: &Tensor,
    fake: &Tensor,
    labels: Option<&Tensor>,
    rng: &mut Rng,
) -> Result<Penalty> {
    let eps = epsilons(rng, real)?;
    exact_with(d, real, fake, labels, &eps, &mut Mode::Train(rng))
}

/// Report 003 eq. 21 with the given ε₁, ε₂ (each (n, 1, 1, 1)).
pub fn finite_difference_with(
    d: &dyn Discriminator,
    real: &Tensor,
    fake: &Tensor,
    labels: Option<&Tensor>,
    eps1: &Tensor,
    eps2: &Tensor,
    mode: &mut Mode,
) -> Result<Penalty> {
    let x1 = interpolate(real, fake, eps1)?;
    let x2 = interpolate(real, fake, eps2)?;
    let d1 = d.forward(&x1, labels, mode)?.logits;
    let d2 = d.forward(&x2, labels, mode)?.logits;
    let slope = ((d1 - d2)?.abs()? / norms(&(x1 - x2)?)?)?;
    let mean_norm = crate::objectives::common::mean(&slope)?;
    Ok(Penalty {
        norms: slope,
        mean_norm,
    })
}

/// Report 003 eq. 21 at two random interpolates per sample.
pub fn finite_difference(
    d: &dyn Discriminator,
    real: &Tensor,
    fake: &Tensor,
    labels: Option<&Tensor>,
    rng: &mut Rng,
) -> Result<Penalty> {
    let eps1 = epsilons(rng, real)?;
    let eps2 = epsilons(rng, real)?;
    finite_difference_with(d, real, fake, labels, &eps1, &eps2, &mut Mode::Train(rng))
}

/// Run `f` on a thread where candle keeps second-order graphs (tests only: the variable is
/// read once per thread, at its first backward pass).
#[cfg(test)]
pub(crate) fn with_second_order<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // SAFETY: set before the new thread starts; every reader only checks it is non-empty.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    std::thread::spawn(f).join().expect("test thread")
}

#[cfg(test)]
mod tests;
