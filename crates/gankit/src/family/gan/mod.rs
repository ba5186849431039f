//! The GAN family: one generator and one discriminator (Goodfellow et al. 2014), trained
//! with any of the objectives (`train.loss`: minimax, non-saturating, WGAN, WGAN-GP, LSGAN,
//! hinge), optionally conditional (a projection discriminator, Miyato & Koyama 2018; report
//! 002's "training with labels"), with report 001's pretraining.

mod nets;

pub use nets::{D, G, Nets};

use candle_core::{Device, Tensor};

use super::latent::Draw;
use super::model::Model;
use super::{Critic, Family};
use crate::config::{Arch, Config};
use crate::data::ImageSet;
use crate::nn::Mode;
use crate::objectives::{self, Objective, RealBatch, Stats};
use crate::rng::Rng;
use crate::{Error, Result};

/// The generator and discriminator with the objective that trains them.
pub struct Gan {
    pub nets: Nets,
    objective: Box<dyn Objective>,
}

impl Gan {
    pub fn build(cfg: &Config, device: &Device) -> Result<Gan> {
        Ok(Gan {
            nets: Nets::build(cfg, device)?,
            objective: objectives::build(cfg),
        })
    }

    /// The real batch as D sees it: faded to the current resolution under progressive
    /// growing, as it is otherwise.
    fn faded(&self, real: &RealBatch) -> Result<RealBatch> {
        Ok(match &self.nets.progress {
            Some(p) => RealBatch {
                images: p.fade_reals(&real.images)?,
                ..real.clone()
            },
            None => real.clone(),
        })
    }
}

/// What this family refuses in a config: its objective's rules, and pretraining where it
/// cannot run.
pub fn check(cfg: &Config) -> Result<()> {
    objectives::check(cfg)?;
    if cfg.pretrain.enabled() {
        if !matches!(
            cfg.model.arch,
            Arch::Dcgan28 | Arch::Dcgan64 | Arch::Allconv
        ) {
            return Err(Error::Config(format!("pretrain: the {:?} generator has no upsampling stages to pretrain; use dcgan28, dcgan64 or allconv, or set pretrain.g_epochs = pretrain.d_epochs = 0", cfg.model.arch).to_lowercase()));
        }
        if cfg.model.classes > 0 {
            return Err(Error::Config(
                "pretrain is not available for conditional runs (model.classes > 0)".into(),
            ));
        }
        let gray28 = (cfg.data.image_size, cfg.data.channels) == (28, 1);
        if cfg.pretrain.loss == crate::config::PretrainLoss::Perceptual && !gray28 {
            return Err(Error::Config("pretrain.loss = \"perceptual\" measures features of the built-in fashion-mnist-v1 evaluator, which takes 28×28 grayscale images (no VGG network is available offline): use \"l1\" here".into()));
        }
    }
    Ok(())
}

impl Family for Gan {
    fn model(&self) -> &Model {
        &self.nets.model
    }

    fn model_mut(&mut self) -> &mut Model {
        &mut self.nets.model
    }

    fn columns(&self) -> Vec<&'static str> {
        let mut c = self.objective.columns();
        if self.nets.log_g_grad_norm {
            c.push("g_grad_norm");
        }
        c
    }

    fn begin_iteration(&mut self, iteration: u64) {
        self.objective.begin_iteration(iteration);
        self.nets.d_inputs.set_iteration(iteration);
        self.at_step(iteration);
    }

    fn at_step(&mut self, step: u64) {
        if let Some(p) = &self.nets.progress {
            p.set_iteration(step);
        }
    }

    fn d_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let real = self.faded(real)?;
        self.objective.d_step(&mut self.nets, &real, rng)
    }

    fn g_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let real = self.faded(real)?;
        self.objective.g_step(&mut self.nets, &real, rng)
    }

    fn classes(&self) -> usize {
        self.nets.classes
    }

    fn latent(&self, n: usize, draw: &Draw, rng: &mut Rng) -> Result<Tensor> {
        self.nets.latent_of(rng, n, draw.classes, draw.truncation)
    }

    fn render(&self, latent: &Tensor, ema: bool) -> Result<Tensor> {
        Ok(self.nets.sampler(ema).forward(latent, &mut Mode::Eval)?)
    }

    fn prepare_sampling(&self) -> Result<()> {
        self.nets.refresh_ema_statistics()
    }

    fn attention_map(&self, latent: &Tensor, side: usize) -> Result<Option<(Tensor, Tensor)>> {
        Ok(self.nets.sampler(true).attention_map(latent, side)?)
    }

    fn critic(&self) -> Option<Critic<'_>> {
        Some(Critic {
            network: D,
            d: self.nets.d.as_ref(),
        })
    }

    fn pretrain(
        &mut self,
        cfg: &Config,
        data: &ImageSet,
        dir: &std::path::Path,
        note: &mut dyn FnMut(&str),
    ) -> Result<()> {
        crate::pretrain::run(cfg, &mut self.nets, data, dir, note).map(|_| ())
    }
}
