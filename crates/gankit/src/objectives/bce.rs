//! The standard GAN (binary cross-entropy on logits), with the minimax (saturating) or the
//! non-saturating generator loss (reports 002, 003).
//!
//! D minimises BCE(D(x), t_real) + BCE(D(G(z)), t_fake) (targets 1 and 0 unless smoothed).
//! G minimises E[log(1 − D(G(z)))] = −E[softplus(logit)] (minimax) or
//! −E[log D(G(z))] = BCE(D(G(z)), 1) (non-saturating).

use super::common::{accuracy, generator_step, scalar, score_both, update_d};
use super::{Nets, Objective, RealBatch, Stats, Targets};
use crate::Result;
use crate::losses::{bce_with_logits, bce_with_logits_targets, mean_sigmoid, softplus};
use crate::rng::Rng;

pub struct Bce {
    saturating: bool,
    targets: Targets,
    feature_matching: bool,
}

impl Bce {
    pub fn new(saturating: bool, targets: Targets, feature_matching: bool) -> Self {
        Bce {
            saturating,
            targets,
            feature_matching,
        }
    }
}

impl Objective for Bce {
    fn d_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let (real_out, fake_out, _) = score_both(nets, real, rng)?;
        let n = real.images.dim(0)?;
        let t_real = self.targets.real(n, rng, real.images.device())?;
        let t_fake = self.targets.fake(n, rng, real.images.device())?;
        let loss = (bce_with_logits_targets(&real_out.logits, &t_real)?
            + bce_with_logits_targets(&fake_out.logits, &t_fake)?)?;
        update_d(nets, &loss)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("d_real", mean_sigmoid(&real_out.logits)?),
            ("d_fake", mean_sigmoid(&fake_out.logits)?),
            ("acc_real", accuracy(&real_out.logits, true)?),
            ("acc_fake", accuracy(&fake_out.logits, false)?),
        ])
    }

    fn g_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let saturating = self.saturating;
        generator_step(nets, real, rng, self.feature_matching, |out| {
            if saturating {
                Ok(softplus(&out.logits)?.mean_all()?.neg()?)
            } else {
                bce_with_logits(&out.logits, 1.0)
            }
        })
    }

    fn columns(&self) -> Vec<&'static str> {
        vec![
            "d_loss", "g_loss", "d_real", "d_fake", "acc_real", "acc_fake",
        ]
    }
}
