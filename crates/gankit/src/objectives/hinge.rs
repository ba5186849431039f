//! The hinge loss of BigGAN / BigBiGAN (report 003): D minimises
//! E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]; G minimises −E[D(G(z))].

use super::common::{critic_generator_loss, generator_step, mean, scalar, score_both, update_d};
use super::{Nets, Objective, RealBatch, Stats};
use crate::Result;
use crate::losses::hinge_d;
use crate::rng::Rng;

pub struct Hinge {
    feature_matching: bool,
}

impl Hinge {
    pub fn new(feature_matching: bool) -> Self {
        Hinge { feature_matching }
    }
}

impl Objective for Hinge {
    fn d_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let (real_out, fake_out, _) = score_both(nets, real, rng)?;
        let loss = hinge_d(&real_out.logits, &fake_out.logits)?;
        update_d(nets, &loss)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("d_real", mean(&real_out.logits)?),
            ("d_fake", mean(&fake_out.logits)?),
        ])
    }

    fn g_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        generator_step(
            nets,
            real,
            rng,
            self.feature_matching,
            critic_generator_loss,
        )
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["d_loss", "g_loss", "d_real", "d_fake"]
    }
}
