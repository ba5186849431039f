//! The standard GAN with Goodfellow's non-saturating generator loss (DCGAN's objective).
//!
//! D minimises BCE(D(x), 1) + BCE(D(G(z)), 0); G minimises BCE(D(G(z)), 1) = −E[log D(G(z))].
//! Real and fake batches go through D separately, as in the DCGAN reference code, so batch
//! norm never mixes them.

use candle_core::Tensor;

use super::{Nets, Objective, Stats, scalar};
use crate::Result;
use crate::losses::{bce_with_logits, mean_sigmoid};
use crate::nn::Mode;
use crate::rng::Rng;

pub struct NonSaturating;

impl Objective for NonSaturating {
    fn d_step(&mut self, nets: &mut Nets, real: &Tensor, rng: &mut Rng) -> Result<Stats> {
        let z = nets.noise(rng, real.dim(0)?)?;
        let fake = nets.g.forward(&z, &mut Mode::Train(rng))?.detach();
        let real_out = nets.d.forward(real, &mut Mode::Train(rng))?;
        let fake_out = nets.d.forward(&fake, &mut Mode::Train(rng))?;
        let loss =
            (bce_with_logits(&real_out.logits, 1.0)? + bce_with_logits(&fake_out.logits, 0.0)?)?;
        nets.opt_d.step(&loss.backward()?)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("d_real", mean_sigmoid(&real_out.logits)?),
            ("d_fake", mean_sigmoid(&fake_out.logits)?),
        ])
    }

    fn g_step(&mut self, nets: &mut Nets, batch: usize, rng: &mut Rng) -> Result<Stats> {
        let z = nets.noise(rng, batch)?;
        let fake = nets.g.forward(&z, &mut Mode::Train(rng))?;
        let out = nets.d.forward(&fake, &mut Mode::Train(rng))?;
        let loss = bce_with_logits(&out.logits, 1.0)?;
        nets.opt_g.step(&loss.backward()?)?;
        Ok(vec![("g_loss", scalar(&loss)?)])
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["d_loss", "g_loss", "d_real", "d_fake"]
    }
}
