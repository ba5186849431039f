//! WGAN-GP (Gulrajani et al. 2017; seeds 000, 002, 003).
//!
//! The critic minimises E[D(G(z))] − E[D(x)] + λ · penalty, the penalty computed on random
//! interpolates between real and fake samples ([`super::penalty`]); G minimises −E[D(G(z))].
//! Paper settings: λ = 10, Adam (1e-4, β 0 / 0.9), 5 critic steps per generator step, no
//! batch norm in the critic (configs/wgan-gp.toml).

use super::common::{critic_generator_loss, generator_step, mean, scalar, score_both, update_d};
use super::penalty::{self, Penalty};
use super::wgan::critic_loss;
use super::{Nets, Objective, RealBatch, Stats};
use crate::Result;
use crate::config::{GpConfig, PenaltyMode};
use crate::rng::Rng;

pub struct WganGp {
    gp: GpConfig,
    feature_matching: bool,
}

impl WganGp {
    pub fn new(gp: GpConfig, feature_matching: bool) -> Self {
        WganGp {
            gp,
            feature_matching,
        }
    }
}

impl Objective for WganGp {
    fn d_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let (real_out, fake_out, fake) = score_both(nets, real, rng)?;
        let (critic, w) = critic_loss(&real_out.logits, &fake_out.logits)?;
        let Penalty { value, mean_norm } = match self.gp.mode {
            PenaltyMode::Exact => {
                penalty::exact(nets.d.as_ref(), &real.images, &fake, real.labels(), rng)?
            }
            PenaltyMode::FiniteDifference => penalty::finite_difference(
                nets.d.as_ref(),
                &real.images,
                &fake,
                real.labels(),
                rng,
            )?,
        };
        let loss = (critic + (&value * self.gp.lambda)?)?;
        update_d(nets, &loss)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("w_dist", w),
            ("gp", scalar(&value)?),
            ("grad_norm", mean_norm),
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
        vec![
            "d_loss",
            "g_loss",
            "w_dist",
            "gp",
            "grad_norm",
            "d_real",
            "d_fake",
        ]
    }
}
