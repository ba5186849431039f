//! Pieces every objective's steps share.

use candle_core::{DType, Tensor};

use super::{Nets, RealBatch, Stats};
use crate::Result;
use crate::family::gan::{D, G};
use crate::losses::feature_matching;
use crate::models::DOutput;
use crate::nn::Mode;
use crate::rng::Rng;

/// A scalar tensor as f64 (for logging).
pub fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Mean of a tensor as f64, outside the graph.
pub fn mean(t: &Tensor) -> Result<f64> {
    scalar(&t.detach().mean_all()?)
}

/// Fraction of logits on the correct side of 0 (positive for real, negative for fake).
pub fn accuracy(logits: &Tensor, real: bool) -> Result<f64> {
    let hits = if real {
        logits.detach().gt(0.0)?
    } else {
        logits.detach().lt(0.0)?
    };
    mean(&hits.to_dtype(DType::F32)?)
}

/// A batch of `n` generated images (of classes `labels` in a conditional run), detached
/// from G (for D's step).
pub fn fakes(nets: &Nets, n: usize, labels: Option<&Tensor>, rng: &mut Rng) -> Result<Tensor> {
    let z = nets.latent(rng, n, labels)?;
    Ok(nets.g.forward(&z, &mut Mode::Train(rng))?.detach())
}

/// D on the real batch and on a fresh fake batch (separately, so batch norm never mixes
/// them), each through D's input transform (`Nets::d_input`). Returns the fakes as G made
/// them.
pub fn score_both(
    nets: &Nets,
    real: &RealBatch,
    rng: &mut Rng,
) -> Result<(DOutput, DOutput, Tensor)> {
    let labels = real.labels();
    let fake = fakes(nets, real.images.dim(0)?, labels, rng)?;
    let real_in = nets.d_input(&real.images, rng)?;
    let real_out = nets.d.forward(&real_in, labels, &mut Mode::Train(rng))?;
    let fake_in = nets.d_input(&fake, rng)?;
    let fake_out = nets.d.forward(&fake_in, labels, &mut Mode::Train(rng))?;
    Ok((real_out, fake_out, fake))
}

/// Backpropagate D's loss and update D.
pub fn update_d(nets: &mut Nets, loss: &Tensor) -> Result<()> {
    nets.model.step(D, &loss.backward()?)
}

/// The generator loss of the critic-based objectives (WGAN, WGAN-GP, hinge): −E[D(G(z))].
pub fn critic_generator_loss(out: &DOutput) -> candle_core::Result<Tensor> {
    out.logits.mean_all()?.neg()
}

/// One generator update: G(z) through D's input transform and D, then `loss` of D's output, or feature matching
/// against D's features on `real` when `fm` is set. Returns `g_loss`.
pub fn generator_step(
    nets: &mut Nets,
    real: &RealBatch,
    rng: &mut Rng,
    fm: bool,
    loss: impl Fn(&DOutput) -> candle_core::Result<Tensor>,
) -> Result<Stats> {
    let labels = real.labels();
    let z = nets.latent(rng, real.images.dim(0)?, labels)?;
    let fake = nets.g.forward(&z, &mut Mode::Train(rng))?;
    let fake_in = nets.d_input(&fake, rng)?;
    let out = nets
        .d_frozen
        .forward(&fake_in, labels, &mut Mode::Train(rng))?;
    let l = if fm {
        let real_in = nets.d_input(&real.images, rng)?;
        let real_features = nets
            .d_frozen
            .forward(&real_in, labels, &mut Mode::Train(rng))?
            .features
            .detach();
        feature_matching(&real_features, &out.features)?
    } else {
        loss(&out)?
    };
    let grads = l.backward()?;
    let mut stats = vec![("g_loss", scalar(&l)?)];
    if nets.log_g_grad_norm {
        stats.push(("g_grad_norm", grad_norm(&grads, &nets.g_params)?));
    }
    nets.model.step(G, &grads)?;
    Ok(stats)
}

/// ‖∇θ‖₂ over the trainable variables of `params` that have a gradient in `grads`.
pub fn grad_norm(
    grads: &candle_core::backprop::GradStore,
    params: &crate::nn::ParamStore,
) -> Result<f64> {
    let mut total = 0.0;
    for (_, v) in params.trainable() {
        if let Some(g) = grads.get(&v) {
            total += scalar(&g.sqr()?.sum_all()?)?;
        }
    }
    Ok(total.sqrt())
}
