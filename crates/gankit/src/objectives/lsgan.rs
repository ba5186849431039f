//! LSGAN (Mao et al. 2017) with report 001's regularising factor α (eqs. 8–10).
//!
//! D minimises ½ E[(D(x) − t_real)²] + ½ E[(D(G(z)) − (t_fake + α))²], where α follows
//! `[lsgan.alpha]`: 0 until `start`, then a ramp to `max` at `end`. G minimises
//! ½ E[(D(G(z)) − 1)²]. D's output is used raw (no sigmoid). Report 001 eq. 10 prints
//! D(G(z) − α); its text (α moves the fake target) is what is computed here.

use candle_core::Tensor;

use super::common::{generator_step, mean, scalar, score_both, update_d};
use super::{Nets, Objective, RealBatch, Stats, Targets};
use crate::Result;
use crate::config::AlphaSchedule;
use crate::losses::half_mse;
use crate::rng::Rng;

pub struct Lsgan {
    alpha: AlphaSchedule,
    current: f64,
    targets: Targets,
    feature_matching: bool,
}

impl Lsgan {
    pub fn new(alpha: AlphaSchedule, targets: Targets, feature_matching: bool) -> Self {
        Lsgan {
            alpha,
            current: 0.0,
            targets,
            feature_matching,
        }
    }
}

impl Objective for Lsgan {
    fn begin_iteration(&mut self, iteration: u64) {
        self.current = self.alpha.at(iteration);
    }

    fn d_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let (real_out, fake_out, _) = score_both(nets, real, rng)?;
        let n = real.images.dim(0)?;
        let t_real = self.targets.real(n, rng, real.images.device())?;
        let t_fake = (self.targets.fake(n, rng, real.images.device())? + self.current)?;
        let loss = (half_mse(&real_out.logits, &t_real)? + half_mse(&fake_out.logits, &t_fake)?)?;
        update_d(nets, &loss)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("alpha", self.current),
            ("d_real", mean(&real_out.logits)?),
            ("d_fake", mean(&fake_out.logits)?),
        ])
    }

    fn g_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let n = real.images.dim(0)?;
        let ones = Tensor::ones(n, candle_core::DType::F32, real.images.device())?;
        generator_step(nets, real, rng, self.feature_matching, |out| {
            half_mse(&out.logits, &ones)
        })
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["d_loss", "g_loss", "alpha", "d_real", "d_fake"]
    }
}
