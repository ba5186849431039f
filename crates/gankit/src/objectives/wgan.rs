//! WGAN with weight clipping (Arjovsky et al. 2017; report 002's Algorithm 1).
//!
//! The critic maximises E[D(x)] − E[D(G(z))] (minimises the negative), then every critic
//! weight is clipped to [−c, c]; G minimises −E[D(G(z))]. No sigmoid anywhere. Use it with
//! `optim.*.kind = "rmsprop"`, lr 5e-5 and `train.d_steps = 5` (configs/wgan-clip.toml).
//! Report 004 eq. 2 prints E[D(x)] + E[D(x̂)]; the minus sign here is the paper's.

use candle_core::Tensor;

use super::common::{critic_generator_loss, generator_step, mean, scalar, score_both, update_d};
use super::{Nets, Objective, RealBatch, Stats};
use crate::Result;
use crate::config::AlphaSchedule;
use crate::rng::Rng;

pub struct Wgan {
    clip: f64,
    alpha: AlphaSchedule,
    /// α at the current iteration.
    current: f64,
    feature_matching: bool,
}

impl Wgan {
    /// Clipping to [−clip, clip] (none when 0), report 001's α on the fakes' term.
    pub fn new(clip: f64, alpha: AlphaSchedule, feature_matching: bool) -> Self {
        Wgan {
            clip,
            alpha,
            current: 0.0,
            feature_matching,
        }
    }
}

/// E[D(G(z))] − E[D(x)], the critic's loss, and the Wasserstein estimate (its negative).
pub fn critic_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Result<(Tensor, f64)> {
    let loss = (fake_logits.mean_all()? - real_logits.mean_all()?)?;
    let w = -scalar(&loss)?;
    Ok((loss, w))
}

/// Clip every trainable critic variable to [−c, c].
pub fn clip_weights(nets: &mut Nets, c: f64) -> Result<()> {
    for (_, v) in nets.model.optimizer(crate::family::gan::D).params() {
        v.set(&v.as_tensor().clamp(-c, c)?)?;
    }
    Ok(())
}

impl Objective for Wgan {
    fn begin_iteration(&mut self, iteration: u64) {
        self.current = self.alpha.at(iteration);
    }

    fn d_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let (real_out, fake_out, _) = score_both(nets, real, rng)?;
        let (loss, w) = if self.current > 0.0 {
            // (1 − α)·E[D(G(z))] − E[D(x)]; the estimate stays the plain difference.
            let fakes = (fake_out.logits.mean_all()? * (1.0 - self.current))?;
            let loss = (fakes - real_out.logits.mean_all()?)?;
            let (_, w) = critic_loss(&real_out.logits, &fake_out.logits)?;
            (loss, w)
        } else {
            critic_loss(&real_out.logits, &fake_out.logits)?
        };
        update_d(nets, &loss)?;
        if self.clip > 0.0 {
            clip_weights(nets, self.clip)?;
        }
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("w_dist", w),
            ("d_real", mean(&real_out.logits)?),
            ("d_fake", mean(&fake_out.logits)?),
            ("alpha", self.current),
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
        if self.alpha.max > 0.0 {
            vec!["d_loss", "g_loss", "w_dist", "d_real", "d_fake", "alpha"]
        } else {
            vec!["d_loss", "g_loss", "w_dist", "d_real", "d_fake"]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use candle_core::Device;

    #[test]
    fn after_a_critic_step_every_weight_lies_in_the_clip_range() {
        let cfg = Config::from_toml_str(
            "",
            "t",
            &[
                "train.loss=wgan".into(),
                "model.g_width=4".into(),
                "model.d_width=4".into(),
            ],
        )
        .unwrap();
        let mut nets = Nets::build(&cfg, &Device::Cpu).unwrap();
        let c = 0.01;
        let outside = |nets: &mut Nets| -> usize {
            nets.model
                .optimizer(crate::family::gan::D)
                .params()
                .iter()
                .map(|(_, v)| {
                    let x = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    x.iter().filter(|x| x.abs() > c as f32).count()
                })
                .sum()
        };
        assert!(
            outside(&mut nets) > 0,
            "DCGAN's N(0, 0.02) init has weights beyond 0.01"
        );
        let mut rng = Rng::new(0, 0);
        let real = Tensor::from_vec(
            rng.uniform_vec(4 * 784, -1.0, 1.0),
            (4, 1, 28, 28),
            &Device::Cpu,
        )
        .unwrap();
        let stats = Wgan::new(c, Default::default(), false)
            .d_step(&mut nets, &RealBatch::unlabelled(real.clone()), &mut rng)
            .unwrap();
        assert_eq!(outside(&mut nets), 0);
        let w = stats.iter().find(|(k, _)| *k == "w_dist").unwrap().1;
        let d = stats.iter().find(|(k, _)| *k == "d_loss").unwrap().1;
        assert_eq!(w, -d, "the Wasserstein estimate is minus the critic loss");
    }
}
