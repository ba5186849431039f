//! VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity
//! metric"; report 003 §5.3): a variational autoencoder whose decoder is the GAN's
//! generator and whose reconstruction error is measured in a hidden layer of D.
//!
//! E gives μ and log σ² of q(z | x); z = μ + σ ε; the decoder G reconstructs x̃ = G(z) and
//! also draws x_p = G(z_p) from the prior z_p ~ N(0, I). With Dis_l(·) the output of D's
//! block l (`vaegan.feature_block`; the paper's choice by default):
//! - L_prior = KL(q(z | x) ‖ N(0, I)), summed over the latent, averaged over the batch;
//! - L_llike = ½ ‖Dis_l(x̃) − Dis_l(x)‖², the negative log-likelihood of a unit Gaussian
//!   in D's features, summed over them, averaged over the batch;
//! - L_GAN: D tells x from x̃ and x_p (the objective's D loss, the two kinds of fakes
//!   weighted equally against the real images).
//!
//! The paper's Algorithm 1: E minimises w_KL·L_prior + L_llike (G's weights detached there,
//! so the GAN term never reaches E); the decoder minimises γ·L_llike plus the objective's G
//! loss on x̃ and x_p (z detached, so it never reaches E); D minimises its loss. Networks
//! `e`, `g`, `d`, one optimiser each. Reported reconstructions decode μ, not a sample.

use candle_core::{D, Device, Tensor};

use super::bigan::encoder_family_rules;
use super::latent::{self, Draw};
use super::model::{Model, Select};
use super::{Critic, Family};
use crate::config::{Arch, Config, LossKind, VaeganConfig};
use crate::models::{self, Discriminator, Generator, encoder::Encoder, encoder::encoder};
use crate::nn::{Mode, ParamStore};
use crate::objectives::adversarial;
use crate::objectives::common::{mean, scalar};
use crate::objectives::{RealBatch, Stats};
use crate::rng::{Rng, stream};
use crate::{Error, Result};

/// KL(N(μ, σ²) ‖ N(0, 1)) summed over the latent dimensions, averaged over the batch:
/// −½ Σ (1 + log σ² − μ² − σ²).
pub fn kl_prior(mu: &Tensor, log_var: &Tensor) -> Result<Tensor> {
    let inner = ((log_var + 1.0)? - mu.sqr()? - log_var.exp()?)?;
    Ok((inner.sum(D::Minus1)?.mean_all()? * -0.5)?)
}

/// ½ ‖a − b‖² per image (summed over every other dimension), averaged over the batch.
pub fn feature_nll(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(((a - b)?.sqr()?.flatten_from(1)?.sum(1)?.mean_all()? * 0.5)?)
}

/// The block of a D with `blocks` blocks whose output the reconstruction uses (1-based).
pub fn feature_block(c: &VaeganConfig, blocks: usize) -> usize {
    match c.feature_block {
        0 if blocks >= 4 => 3,
        0 => blocks,
        b => b,
    }
}

/// What this family refuses in a config.
pub fn check(cfg: &Config) -> Result<()> {
    adversarial::check(cfg.train.loss, "vaegan")?;
    if cfg.train.loss == LossKind::Lsgan && cfg.lsgan.alpha.max > 0.0 {
        return Err(Error::Config(
            "lsgan.alpha is the gan family's; set lsgan.alpha.max = 0 for vaegan".into(),
        ));
    }
    encoder_family_rules(cfg, "vaegan")?;
    let c = &cfg.vaegan;
    let blocks = match cfg.model.arch {
        Arch::Dcgan28 => 2,
        _ => 4,
    };
    if c.feature_block > blocks {
        return Err(Error::Config(format!(
            "vaegan.feature_block = {}: this discriminator has blocks 1 to {blocks} (0 = the paper's choice)",
            c.feature_block
        )));
    }
    for (key, v) in [("gamma", c.gamma), ("kl_weight", c.kl_weight)] {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::Config(format!("vaegan.{key} = {v} must be ≥ 0")));
        }
    }
    Ok(())
}

pub struct VaeGan {
    model: Model,
    e: Encoder,
    e_ema: Option<Encoder>,
    g: Box<dyn Generator>,
    g_ema: Option<Box<dyn Generator>>,
    /// G over detached weights: E's reconstruction term reaches E only.
    g_frozen: Box<dyn Generator>,
    d: Box<dyn Discriminator>,
    /// D over detached weights, for E's and the decoder's step.
    d_frozen: Box<dyn Discriminator>,
    cfg: VaeganConfig,
    /// Index into D's blocks of the reconstruction's features.
    block: usize,
    loss: LossKind,
    z_dim: usize,
    device: Device,
}

impl VaeGan {
    pub fn build(cfg: &Config, device: &Device) -> Result<VaeGan> {
        let seed = cfg.train.seed;
        let z_dim = cfg.model.z_dim;
        let (es, gs, ds) = (
            ParamStore::new(Rng::new(seed, stream::INIT_Q), device),
            ParamStore::new(Rng::new(seed, stream::INIT_G), device),
            ParamStore::new(Rng::new(seed, stream::INIT_D), device),
        );
        let e = encoder(cfg, 2 * z_dim, es.var_builder())?;
        let g = models::generator_with_input(cfg, z_dim, gs.var_builder())?;
        let g_frozen = models::generator_with_input(cfg, z_dim, gs.frozen_var_builder())?;
        let (d, _) = models::discriminator_and_features(cfg, ds.var_builder())?;
        let (d_frozen, _) = models::discriminator_and_features(cfg, ds.frozen_var_builder())?;
        let blocks = match cfg.model.arch {
            Arch::Dcgan28 => 2,
            _ => 4,
        };
        let mut model = Model::default();
        model.add_network("e", es);
        model.add_network("g", gs);
        model.add_network("d", ds);
        model.add_optimizer("e", &[Select::all("e")], &cfg.optim.g)?;
        model.add_optimizer("g", &[Select::all("g")], &cfg.optim.g)?;
        model.add_optimizer("d", &[Select::all("d")], &cfg.optim.d)?;
        let (mut g_ema, mut e_ema) = (None, None);
        if cfg.ema.enabled() {
            let store = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
            g_ema = Some(models::generator_with_input(
                cfg,
                z_dim,
                store.var_builder(),
            )?);
            model.add_ema("g", store, cfg.ema.decay, cfg.ema.start)?;
            if cfg.ema.encoder {
                let store = ParamStore::new(Rng::new(seed, stream::INIT_Q), device);
                e_ema = Some(encoder(cfg, 2 * z_dim, store.var_builder())?);
                model.add_ema("e", store, cfg.ema.decay, cfg.ema.start)?;
            }
        }
        Ok(VaeGan {
            model,
            e,
            e_ema,
            g,
            g_ema,
            g_frozen,
            d,
            d_frozen,
            block: feature_block(&cfg.vaegan, blocks) - 1,
            cfg: cfg.vaegan.clone(),
            loss: cfg.train.loss,
            z_dim,
            device: device.clone(),
        })
    }

    /// (μ, log σ²) of a batch.
    fn posterior(&self, x: &Tensor, mode: &Mode) -> Result<(Tensor, Tensor)> {
        let out = self.e.forward(x, mode)?;
        Ok((
            out.narrow(1, 0, self.z_dim)?,
            out.narrow(1, self.z_dim, self.z_dim)?,
        ))
    }

    /// z = μ + σ ε, ε drawn from `rng`.
    fn sample(&self, mu: &Tensor, log_var: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        let eps = latent::noise(rng, mu.dim(0)?, self.z_dim, None, &self.device)?;
        Ok((mu + ((log_var * 0.5)?.exp()? * eps)?)?)
    }
}

impl Family for VaeGan {
    fn model(&self) -> &Model {
        &self.model
    }

    fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    fn columns(&self) -> Vec<&'static str> {
        vec![
            "d_loss",
            "g_loss",
            "kl",
            "feature_nll",
            "d_real",
            "d_recon",
            "d_prior",
        ]
    }

    fn d_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let x = &real.images;
        let n = x.dim(0)?;
        let (mu, log_var) = self.posterior(x, &Mode::Train(rng))?;
        let z = self.sample(&mu, &log_var, rng)?;
        let recon = self.g.forward(&z, &mut Mode::Train(rng))?.detach();
        let zp = latent::noise(rng, n, self.z_dim, None, &self.device)?;
        let prior = self.g.forward(&zp, &mut Mode::Train(rng))?.detach();
        let r = self.d.forward(x, None, &mut Mode::Train(rng))?;
        let fr = self.d.forward(&recon, None, &mut Mode::Train(rng))?;
        let fp = self.d.forward(&prior, None, &mut Mode::Train(rng))?;
        let fakes = Tensor::cat(&[&fr.logits, &fp.logits], 0)?;
        let loss = adversarial::d_loss(self.loss, &r.logits, &fakes)?;
        self.model.step("d", &loss.backward()?)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("d_real", mean(&r.logits)?),
            ("d_recon", mean(&fr.logits)?),
            ("d_prior", mean(&fp.logits)?),
        ])
    }

    fn g_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let x = &real.images;
        let n = x.dim(0)?;
        let (mu, log_var) = self.posterior(x, &Mode::Train(rng))?;
        let z = self.sample(&mu, &log_var, rng)?;
        let target = self.d_frozen.hidden(x, &mut Mode::Train(rng))?[self.block].detach();
        // E: KL + reconstruction through G's detached weights.
        let kl = kl_prior(&mu, &log_var)?;
        let recon_e = self.g_frozen.forward(&z, &mut Mode::Train(rng))?;
        let nll_e = feature_nll(
            &self.d_frozen.hidden(&recon_e, &mut Mode::Train(rng))?[self.block],
            &target,
        )?;
        let e_loss = ((&kl * self.cfg.kl_weight)? + &nll_e)?;
        self.model.step("e", &e_loss.backward()?)?;
        // Decoder: γ · reconstruction + the G loss on x̃ and x_p, z detached.
        let recon = self.g.forward(&z.detach(), &mut Mode::Train(rng))?;
        let zp = latent::noise(rng, n, self.z_dim, None, &self.device)?;
        let prior = self.g.forward(&zp, &mut Mode::Train(rng))?;
        let blocks_r = self.d_frozen.hidden(&recon, &mut Mode::Train(rng))?;
        let nll = feature_nll(&blocks_r[self.block], &target)?;
        let scores = Tensor::cat(
            &[
                &self
                    .d_frozen
                    .forward(&recon, None, &mut Mode::Train(rng))?
                    .logits,
                &self
                    .d_frozen
                    .forward(&prior, None, &mut Mode::Train(rng))?
                    .logits,
            ],
            0,
        )?;
        let g_adv = adversarial::g_loss(self.loss, &scores)?;
        let g_loss = ((&nll * self.cfg.gamma)? + &g_adv)?;
        self.model.step("g", &g_loss.backward()?)?;
        Ok(vec![
            ("g_loss", scalar(&g_adv)?),
            ("kl", scalar(&kl)?),
            ("feature_nll", scalar(&nll_e)?),
        ])
    }

    fn latent(&self, n: usize, draw: &Draw, rng: &mut Rng) -> Result<Tensor> {
        latent::noise(rng, n, self.z_dim, draw.truncation, &self.device)
    }

    fn render(&self, latent: &Tensor, ema: bool) -> Result<Tensor> {
        let g = super::chosen(self.g.as_ref(), self.g_ema.as_deref(), ema);
        Ok(g.forward(latent, &mut Mode::Eval)?)
    }

    fn prepare_sampling(&self) -> Result<()> {
        super::refresh_average(&self.model, "g", self.g_ema.as_deref(), |rng| {
            latent::noise(rng, 64, self.z_dim, None, &self.device)
        })
    }

    fn encode(&self, images: &Tensor, ema: bool) -> Result<Option<Tensor>> {
        let e = super::chosen(&self.e, self.e_ema.as_ref(), ema);
        Ok(Some(
            e.forward(images, &Mode::Eval)?.narrow(1, 0, self.z_dim)?,
        ))
    }

    fn critic(&self) -> Option<Critic<'_>> {
        Some(Critic {
            network: "d",
            d: self.d.as_ref(),
        })
    }
}
