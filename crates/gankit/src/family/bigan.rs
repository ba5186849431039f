//! BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017; report 003 §3, eqs. 22–23) and
//! BigBiGAN (Donahue & Simonyan 2019; report 003 §4): a generator G (z → x), an encoder E
//! (x → z) and a discriminator of pairs (`models::joint`), which tells encoder pairs
//! (x, E(x)) from generator pairs (G(z), z). At the optimum E inverts G.
//!
//! - BiGAN: D has the joint score s_xz alone; D minimises the objective's D loss with
//!   encoder pairs as "real"; E and G minimise its G loss with the roles swapped (G wants
//!   its pairs taken for real, E wants its pairs taken for fake): the non-saturating form
//!   of eq. 23, or the hinge form.
//! - BigBiGAN: D also scores the image alone (s_x) and the latent alone (s_z). With
//!   h(t) = max(0, 1 − t), D minimises Σ_{s ∈ x, z, xz} E[h(s(x, E(x)))] + E[h(−s(G(z), z))];
//!   E and G minimise E[s_x + s_z + s_xz](x, E(x)) − E[s_x + s_z + s_xz](G(z), z) (the
//!   paper's signs; report 003's eqs. 25 and 27 carry stray minus signs).
//!
//! Networks `g`, `e`, `d`; optimisers `d` (D) and `ge` (G and E together, as both papers).

use candle_core::{Device, Tensor};

use super::latent::{self, Draw};
use super::model::{Model, Select};
use super::{Critic, Family};
use crate::config::{Config, FamilyKind, LossKind};
use crate::losses::hinge_d;
use crate::models::joint::{JointDiscriminator, JointScores, joint_discriminator};
use crate::models::{self, Generator, encoder::Encoder, encoder::encoder};
use crate::nn::{Mode, ParamStore};
use crate::objectives::adversarial;
use crate::objectives::common::{mean, scalar};
use crate::objectives::{RealBatch, Stats};
use crate::rng::{Rng, stream};
use crate::{Error, Result};

/// What these families refuse in a config.
pub fn check(cfg: &Config) -> Result<()> {
    let family = if cfg.model.family == FamilyKind::Bigbigan {
        "bigbigan"
    } else {
        "bigan"
    };
    let loss = cfg.train.loss;
    let ok = match cfg.model.family {
        FamilyKind::Bigbigan => loss == LossKind::Hinge,
        _ => matches!(
            loss,
            LossKind::NonSaturating | LossKind::Minimax | LossKind::Hinge
        ),
    };
    if !ok {
        return Err(Error::Config(format!(
            "model.family = \"{family}\" trains with train.loss = {}",
            if family == "bigbigan" {
                "\"hinge\" (the paper's)".to_string()
            } else {
                "\"non-saturating\", \"minimax\" or \"hinge\"".to_string()
            }
        )));
    }
    encoder_family_rules(cfg, family)?;
    let b = &cfg.bigan;
    if b.latent_width == 0 || b.joint_width == 0 || b.latent_width > 8192 || b.joint_width > 8192 {
        return Err(Error::Config(
            "bigan.latent_width and joint_width must be 1 to 8192".into(),
        ));
    }
    Ok(())
}

/// The rules every family with an encoder shares.
pub fn encoder_family_rules(cfg: &Config, family: &str) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    if !matches!(
        cfg.model.arch,
        crate::config::Arch::Dcgan28 | crate::config::Arch::Dcgan64
    ) {
        return bad(format!(
            "model.family = \"{family}\" builds its encoder from D's conv blocks: use model.arch = \"dcgan28\" or \"dcgan64\""
        ));
    }
    if cfg.model.classes > 0 {
        return bad(format!(
            "model.family = \"{family}\" is unconditional: set model.classes = 0"
        ));
    }
    if cfg.model.critic != crate::config::Critic::Default {
        return bad(format!(
            "model.family = \"{family}\" has its own discriminator: leave model.critic = \"default\""
        ));
    }
    if !cfg.augment.policy.is_empty()
        || cfg.instance_noise.std > 0.0
        || cfg.pretrain.enabled()
        || cfg.train.feature_matching
        || cfg.train.label_smoothing != crate::config::LabelSmoothing::None
    {
        return bad(format!(
            "[augment], [instance_noise], [pretrain], feature matching and label smoothing are for the gan family, not {family}"
        ));
    }
    Ok(())
}

pub struct Bigan {
    model: Model,
    g: Box<dyn Generator>,
    g_ema: Option<Box<dyn Generator>>,
    e: Encoder,
    e_ema: Option<Encoder>,
    d: JointDiscriminator,
    /// D over detached weights, for E's and G's step.
    d_frozen: JointDiscriminator,
    /// BigBiGAN's unary scores and hinge losses.
    big: bool,
    loss: LossKind,
    z_dim: usize,
    device: Device,
}

/// BigBiGAN's D loss: Σ over the scores present of the hinge loss, encoder pairs real.
pub fn bigbigan_d_loss(real: &JointScores, fake: &JointScores) -> Result<Tensor> {
    let mut loss = hinge_d(&real.s_xz, &fake.s_xz)?;
    for (r, f) in [(&real.s_x, &fake.s_x), (&real.s_z, &fake.s_z)] {
        if let (Some(r), Some(f)) = (r, f) {
            loss = (loss + hinge_d(r, f)?)?;
        }
    }
    Ok(loss)
}

/// The sum of the scores present, per pair.
fn score_sum(s: &JointScores) -> Result<Tensor> {
    let mut t = s.s_xz.clone();
    for u in [&s.s_x, &s.s_z].into_iter().flatten() {
        t = (t + u)?;
    }
    Ok(t)
}

/// BigBiGAN's E and G loss: E[Σ s](x, E(x)) − E[Σ s](G(z), z).
pub fn bigbigan_eg_loss(real: &JointScores, fake: &JointScores) -> Result<Tensor> {
    Ok((score_sum(real)?.mean_all()? - score_sum(fake)?.mean_all()?)?)
}

/// BiGAN's E and G loss with the objective's G loss: G's pairs taken for real, E's for
/// fake (the scores of E's pairs negated).
pub fn bigan_eg_loss(loss: LossKind, real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    Ok((adversarial::g_loss(loss, fake)? + adversarial::g_loss(loss, &real.neg()?)?)?)
}

impl Bigan {
    pub fn build(cfg: &Config, device: &Device) -> Result<Bigan> {
        let seed = cfg.train.seed;
        let big = cfg.model.family == FamilyKind::Bigbigan;
        let z_dim = cfg.model.z_dim;
        let b = &cfg.bigan;
        let (gs, es, ds) = (
            ParamStore::new(Rng::new(seed, stream::INIT_G), device),
            ParamStore::new(Rng::new(seed, stream::INIT_Q), device),
            ParamStore::new(Rng::new(seed, stream::INIT_D), device),
        );
        let g = models::generator_with_input(cfg, z_dim, gs.var_builder())?;
        let e = encoder(cfg, z_dim, es.var_builder())?;
        let joint = |vb| joint_discriminator(cfg, z_dim, b.latent_width, b.joint_width, big, vb);
        let d = joint(ds.var_builder())?;
        let d_frozen = joint(ds.frozen_var_builder())?;
        let mut model = Model::default();
        model.add_network("g", gs);
        model.add_network("e", es);
        model.add_network("d", ds);
        model.add_optimizer("d", &[Select::all("d")], &cfg.optim.d)?;
        model.add_optimizer("ge", &[Select::all("g"), Select::all("e")], &cfg.optim.g)?;
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
                e_ema = Some(encoder(cfg, z_dim, store.var_builder())?);
                model.add_ema("e", store, cfg.ema.decay, cfg.ema.start)?;
            }
        }
        Ok(Bigan {
            model,
            g,
            g_ema,
            e,
            e_ema,
            d,
            d_frozen,
            big,
            loss: cfg.train.loss,
            z_dim,
            device: device.clone(),
        })
    }

    fn noise(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        latent::noise(rng, n, self.z_dim, None, &self.device)
    }
}

impl Family for Bigan {
    fn model(&self) -> &Model {
        &self.model
    }

    fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["d_loss", "eg_loss", "d_real", "d_fake"]
    }

    fn d_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let x = &real.images;
        let n = x.dim(0)?;
        let ex = self.e.forward(x, &Mode::Train(rng))?.detach();
        let z = self.noise(n, rng)?;
        let gz = self.g.forward(&z, &mut Mode::Train(rng))?.detach();
        let r = self.d.forward(x, &ex, &Mode::Train(rng))?;
        let f = self.d.forward(&gz, &z, &Mode::Train(rng))?;
        let loss = if self.big {
            bigbigan_d_loss(&r, &f)?
        } else {
            adversarial::d_loss(self.loss, &r.s_xz, &f.s_xz)?
        };
        self.model.step("d", &loss.backward()?)?;
        Ok(vec![
            ("d_loss", scalar(&loss)?),
            ("d_real", mean(&r.s_xz)?),
            ("d_fake", mean(&f.s_xz)?),
        ])
    }

    fn g_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let x = &real.images;
        let n = x.dim(0)?;
        let ex = self.e.forward(x, &Mode::Train(rng))?;
        let z = self.noise(n, rng)?;
        let gz = self.g.forward(&z, &mut Mode::Train(rng))?;
        let r = self.d_frozen.forward(x, &ex, &Mode::Train(rng))?;
        let f = self.d_frozen.forward(&gz, &z, &Mode::Train(rng))?;
        let loss = if self.big {
            bigbigan_eg_loss(&r, &f)?
        } else {
            bigan_eg_loss(self.loss, &r.s_xz, &f.s_xz)?
        };
        self.model.step("ge", &loss.backward()?)?;
        Ok(vec![("eg_loss", scalar(&loss)?)])
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
            self.noise(64, rng)
        })
    }

    fn encode(&self, images: &Tensor, ema: bool) -> Result<Option<Tensor>> {
        let e = super::chosen(&self.e, self.e_ema.as_ref(), ema);
        Ok(Some(e.forward(images, &Mode::Eval)?))
    }

    fn critic(&self) -> Option<Critic<'_>> {
        None
    }
}
