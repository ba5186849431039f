//! WGAN-GP (Gulrajani et al. 2017; reports 000, 002, 003).
//!
//! The critic minimises E[D(G(z))] − E[D(x)] + λ · penalty, the penalty computed on random
//! interpolates between real and fake samples ([`super::penalty`]); G minimises −E[D(G(z))].
//! Paper settings: λ = 10, Adam (1e-4, β 0 / 0.9), 5 critic steps per generator step, no
//! batch norm in the critic (configs/wgan-gp.toml).

use super::common::{critic_generator_loss, generator_step, mean, scalar, score_both, update_d};
use super::penalty;
use super::wgan::critic_loss;
use super::{Nets, Objective, RealBatch, Stats};
use crate::config::{Config, GpConfig, LossKind, Norm, PenaltyMode};
use crate::rng::Rng;
use crate::{Error, Result};

/// WGAN-GP penalises each sample's gradient, which batch norm couples across the batch
/// (Gulrajani et al. 2017 §4 take it out of the critic).
pub fn check(cfg: &Config) -> Result<()> {
    let m = &cfg.model;
    let batch_norm_critic = m.d_norm() == Norm::Batch;
    if cfg.train.loss == LossKind::WganGp && batch_norm_critic {
        return Err(Error::Config(
            "train.loss = \"wgan-gp\" penalises each sample's gradient, which batch norm couples across the batch: set model.d_norm = \"layer\" (report 000) or \"none\"".into(),
        ));
    }
    Ok(())
}

/// The exact penalty differentiates the critic's input gradient: second order.
pub fn needs_second_order(cfg: &Config) -> bool {
    cfg.train.loss == LossKind::WganGp && cfg.gp.mode == PenaltyMode::Exact
}

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
        let penalty = match self.gp.mode {
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
        let (value, mean_norm) = (penalty.value(self.gp.target)?, penalty.mean_norm);
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
