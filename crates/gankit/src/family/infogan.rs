//! InfoGAN (Chen et al. 2016; report 003 §5.1): G's input is incompressible noise z′ joined
//! to structured codes c — one categorical code of K values (one-hot) and M continuous
//! codes uniform in [−1, 1] — and a head Q on D's features predicts c from G's images.
//! The variational lower bound of the mutual information I(c; G(z′, c)),
//! L_I = −E[log Q(c | G(z′, c))] (up to the codes' constant entropy), enters with weights
//! λ_cat and λ_cont:
//!
//! - D's step minimises the adversarial loss plus λ·L_I on the (detached) fakes and updates
//!   D and Q together (optimiser `d` over networks `d` and `q`), so the MI term's gradient
//!   reaches D's shared body, as in the paper's official code;
//! - G's step minimises G's adversarial loss plus λ·L_I through D's and Q's detached
//!   weights and updates G (optimiser `g`).
//!
//! Q is the paper's head: linear → batch norm → LeakyReLU(0.1) → linear to K logits and M
//! means (and M log-variances with `infogan.sigma = "learned"`; σ = 1 when "fixed", the
//! official code's choice). No class label is read anywhere: the categorical code must
//! find the classes by itself.

use candle_core::{D, Device, Module, Tensor};
use candle_nn::VarBuilder;

use super::latent::{self, Draw};
use super::model::{Model, Select};
use super::{Critic, Family};
use crate::config::{Config, InfoGanConfig, LossKind, SigmaMode};
use crate::losses::cross_entropy;
use crate::models::{self, Discriminator, Generator};
use crate::nn::{BatchNorm, Linear, Mode, ParamStore, batch_norm, dcgan_init, linear};
use crate::objectives::adversarial;
use crate::objectives::common::{mean, scalar};
use crate::objectives::{RealBatch, Stats};
use crate::rng::{Rng, stream};
use crate::{Error, Result};

/// Q: features → hidden → (K logits, M means[, M log-variances]).
struct QHead {
    fc1: Linear,
    bn: BatchNorm,
    fc2: Linear,
}

fn q_head(features: usize, c: &InfoGanConfig, vb: VarBuilder) -> Result<QHead> {
    let outputs = c.categories
        + c.continuous
            * match c.sigma {
                SigmaMode::Fixed => 1,
                SigmaMode::Learned => 2,
            };
    Ok(QHead {
        fc1: linear(features, c.q_hidden, false, dcgan_init(), vb.pp("fc1"))?,
        bn: batch_norm(c.q_hidden, Default::default(), vb.pp("bn1"))?,
        fc2: linear(c.q_hidden, outputs, true, dcgan_init(), vb.pp("fc2"))?,
    })
}

impl QHead {
    fn forward(&self, features: &Tensor, mode: &Mode) -> Result<Tensor> {
        let h = self.fc1.forward(features)?;
        Ok(self
            .fc2
            .forward(&self.bn.forward_activated(&h, 0.1, mode)?)?)
    }
}

/// The codes of one batch: the categorical values (n) and the continuous codes (n, M).
pub struct Codes {
    pub categorical: Vec<u32>,
    pub continuous: Tensor,
}

/// The mutual-information terms of a batch: −E log Q(c_cat | x) (cross-entropy) and the
/// mean over the batch of the continuous codes' negative log-likelihood, summed over codes
/// (a factored Gaussian: ½ log 2π + ½ log σ² + (c − μ)² / 2σ², σ = 1 when fixed).
pub fn mi_terms(
    q_out: &Tensor,
    codes: &Codes,
    c: &InfoGanConfig,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (k, m) = (c.categories, c.continuous);
    let labels = Tensor::new(codes.categorical.as_slice(), device)?;
    let cat = cross_entropy(&q_out.narrow(1, 0, k)?, &labels)?;
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let cont = if m == 0 {
        Tensor::zeros((), q_out.dtype(), device)?
    } else {
        let mu = q_out.narrow(1, k, m)?;
        let sq = (mu - codes.continuous.to_dtype(q_out.dtype())?)?.sqr()?;
        let per = match c.sigma {
            SigmaMode::Fixed => ((sq * 0.5)? + half_log_2pi)?,
            SigmaMode::Learned => {
                let log_var = q_out.narrow(1, k + m, m)?;
                let inv = log_var.neg()?.exp()?;
                (((log_var * 0.5)? + (sq * inv)? * 0.5)? + half_log_2pi)?
            }
        };
        per.sum(D::Minus1)?.mean_all()?
    };
    Ok((cat, cont))
}

pub struct InfoGan {
    model: Model,
    g: Box<dyn Generator>,
    g_ema: Option<Box<dyn Generator>>,
    d: Box<dyn Discriminator>,
    /// D and Q over detached weights, for G's step: their weights get no gradient there.
    d_frozen: Box<dyn Discriminator>,
    q: QHead,
    q_frozen: QHead,
    cfg: InfoGanConfig,
    loss: LossKind,
    z_dim: usize,
    device: Device,
}

/// What this family refuses in a config.
pub fn check(cfg: &Config) -> Result<()> {
    adversarial::check(cfg.train.loss, "infogan")?;
    let c = &cfg.infogan;
    let bad = |m: String| Err(Error::Config(m));
    if cfg.model.classes > 0 {
        return bad("model.family = \"infogan\" learns its categories without labels: set model.classes = 0 (the categorical code has infogan.categories values)".into());
    }
    if !(2..=256).contains(&c.categories) || c.continuous > 16 || c.q_hidden == 0 {
        return bad(format!(
            "infogan.categories = {} must be 2 to 256, infogan.continuous = {} at most 16, infogan.q_hidden at least 1",
            c.categories, c.continuous
        ));
    }
    for (key, v) in [
        ("lambda_categorical", c.lambda_categorical),
        ("lambda_continuous", c.lambda_continuous),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            return bad(format!("infogan.{key} = {v} must be ≥ 0"));
        }
    }
    if !cfg.augment.policy.is_empty() || cfg.instance_noise.std > 0.0 {
        return bad("[augment] and [instance_noise] are for the gan family; InfoGAN's Q reads D's features of the images as G made them".into());
    }
    if cfg.model.arch == crate::config::Arch::Progressive {
        return bad("model.arch = \"progressive\" grows the gan family's networks; infogan takes dcgan28, dcgan64, allconv, resnet or mlp".into());
    }
    if cfg.pretrain.enabled() || cfg.train.feature_matching {
        return bad(
            "[pretrain] and train.feature_matching are for the gan family, not infogan".into(),
        );
    }
    if cfg.train.label_smoothing != crate::config::LabelSmoothing::None {
        return bad("train.label_smoothing is for the gan family, not infogan".into());
    }
    Ok(())
}

impl InfoGan {
    pub fn build(cfg: &Config, device: &Device) -> Result<InfoGan> {
        let seed = cfg.train.seed;
        let c = cfg.infogan.clone();
        let input = cfg.model.z_dim + c.categories + c.continuous;
        let (gs, ds, qs) = (
            ParamStore::new(Rng::new(seed, stream::INIT_G), device),
            ParamStore::new(Rng::new(seed, stream::INIT_D), device),
            ParamStore::new(Rng::new(seed, stream::INIT_Q), device),
        );
        let g = models::generator_with_input(cfg, input, gs.var_builder())?;
        let (d, features) = models::discriminator_and_features(cfg, ds.var_builder())?;
        let (d_frozen, _) = models::discriminator_and_features(cfg, ds.frozen_var_builder())?;
        let q = q_head(features, &c, qs.var_builder())?;
        let q_frozen = q_head(features, &c, qs.frozen_var_builder())?;
        let mut model = Model::default();
        model.add_network("g", gs);
        model.add_network("d", ds);
        model.add_network("q", qs);
        model.add_optimizer("g", &[Select::all("g")], &cfg.optim.g)?;
        model.add_optimizer("d", &[Select::all("d"), Select::all("q")], &cfg.optim.d)?;
        let g_ema = if cfg.ema.enabled() {
            let store = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
            let g = models::generator_with_input(cfg, input, store.var_builder())?;
            model.add_ema("g", store, cfg.ema.decay, cfg.ema.start)?;
            Some(g)
        } else {
            None
        };
        Ok(InfoGan {
            model,
            g,
            g_ema,
            d,
            d_frozen,
            q,
            q_frozen,
            cfg: c,
            loss: cfg.train.loss,
            z_dim: cfg.model.z_dim,
            device: device.clone(),
        })
    }

    /// Codes for `n` images: the categorical one uniform over its values (or `fixed`, one
    /// per image), the continuous ones uniform in [−1, 1].
    fn draw_codes(&self, n: usize, fixed: Option<&[u32]>, rng: &mut Rng) -> Result<Codes> {
        let k = self.cfg.categories;
        let categorical = match fixed {
            Some(c) => {
                if let Some(bad) = c.iter().find(|&&v| v as usize >= k) {
                    return Err(Error::Config(format!(
                        "categorical code {bad} does not exist: this run has values 0 to {}",
                        k - 1
                    )));
                }
                c.to_vec()
            }
            None => (0..n).map(|_| rng.int_in(0, k as i64 - 1) as u32).collect(),
        };
        let m = self.cfg.continuous;
        let continuous = Tensor::from_vec(rng.uniform_vec(n * m, -1.0, 1.0), (n, m), &self.device)?;
        Ok(Codes {
            categorical,
            continuous,
        })
    }

    /// G's input: noise z′ (truncated at ±ψ when asked), one-hot code, continuous codes.
    fn join(&self, z: &Tensor, codes: &Codes) -> Result<Tensor> {
        let one_hot = latent::one_hot(&codes.categorical, self.cfg.categories, &self.device)?;
        Ok(Tensor::cat(&[z, &one_hot, &codes.continuous], 1)?)
    }

    /// λ_cat · categorical term + λ_cont · continuous term.
    fn weighted(&self, cat: &Tensor, cont: &Tensor) -> Result<Tensor> {
        Ok(((cat * self.cfg.lambda_categorical)? + (cont * self.cfg.lambda_continuous)?)?)
    }

    /// A fresh latent batch and its codes.
    fn sample_latent(&self, n: usize, rng: &mut Rng) -> Result<(Tensor, Codes)> {
        let z = latent::noise(rng, n, self.z_dim, None, &self.device)?;
        let codes = self.draw_codes(n, None, rng)?;
        Ok((self.join(&z, &codes)?, codes))
    }
}

impl Family for InfoGan {
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
            "mi_categorical",
            "mi_continuous",
            "d_real",
            "d_fake",
        ]
    }

    fn d_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let n = real.images.dim(0)?;
        let (z, codes) = self.sample_latent(n, rng)?;
        let fake = self.g.forward(&z, &mut Mode::Train(rng))?.detach();
        let real_out = self.d.forward(&real.images, None, &mut Mode::Train(rng))?;
        let fake_out = self.d.forward(&fake, None, &mut Mode::Train(rng))?;
        let adv = adversarial::d_loss(self.loss, &real_out.logits, &fake_out.logits)?;
        let q_out = self.q.forward(&fake_out.features, &Mode::Train(rng))?;
        let (cat, cont) = mi_terms(&q_out, &codes, &self.cfg, &self.device)?;
        let loss = (&adv + self.weighted(&cat, &cont)?)?;
        self.model.step("d", &loss.backward()?)?;
        Ok(vec![
            ("d_loss", scalar(&adv)?),
            ("mi_categorical", scalar(&cat)?),
            ("mi_continuous", scalar(&cont)?),
            ("d_real", mean(&real_out.logits)?),
            ("d_fake", mean(&fake_out.logits)?),
        ])
    }

    fn g_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let n = real.images.dim(0)?;
        let (z, codes) = self.sample_latent(n, rng)?;
        let fake = self.g.forward(&z, &mut Mode::Train(rng))?;
        let out = self.d_frozen.forward(&fake, None, &mut Mode::Train(rng))?;
        let adv = adversarial::g_loss(self.loss, &out.logits)?;
        let q_out = self.q_frozen.forward(&out.features, &Mode::Train(rng))?;
        let (cat, cont) = mi_terms(&q_out, &codes, &self.cfg, &self.device)?;
        let loss = (&adv + self.weighted(&cat, &cont)?)?;
        self.model.step("g", &loss.backward()?)?;
        Ok(vec![("g_loss", scalar(&adv)?)])
    }

    fn codes(&self) -> usize {
        self.cfg.categories
    }

    fn latent(&self, n: usize, draw: &Draw, rng: &mut Rng) -> Result<Tensor> {
        let z = latent::noise(rng, n, self.z_dim, draw.truncation, &self.device)?;
        let codes = self.draw_codes(n, draw.codes, rng)?;
        self.join(&z, &codes)
    }

    fn render(&self, latent: &Tensor, ema: bool) -> Result<Tensor> {
        let g = super::chosen(self.g.as_ref(), self.g_ema.as_deref(), ema);
        Ok(g.forward(latent, &mut Mode::Eval)?)
    }

    fn prepare_sampling(&self) -> Result<()> {
        super::refresh_average(&self.model, "g", self.g_ema.as_deref(), |rng| {
            Ok(self.sample_latent(64, rng)?.0)
        })
    }

    fn traversal(&self, code: usize, columns: usize, rng: &mut Rng) -> Result<Option<Tensor>> {
        let (k, m) = (self.cfg.categories, self.cfg.continuous);
        if code >= m {
            return Err(Error::Config(format!(
                "--code {code}: this run has continuous codes 0 to {} (infogan.continuous = {m})",
                m.saturating_sub(1)
            )));
        }
        // One z′ for the whole figure; row r has categorical value r, column j sets code
        // `code` to −2 + 4j / (columns − 1), the other continuous codes 0.
        let z = latent::noise(rng, 1, self.z_dim, None, &self.device)?;
        let n = k * columns;
        let z = z.broadcast_as((n, self.z_dim))?.contiguous()?;
        let categorical: Vec<u32> = (0..n).map(|i| (i / columns) as u32).collect();
        let mut cont = vec![0f32; n * m];
        for i in 0..n {
            let j = i % columns;
            cont[i * m + code] = -2.0 + 4.0 * j as f32 / (columns.max(2) - 1) as f32;
        }
        let codes = Codes {
            categorical,
            continuous: Tensor::from_vec(cont, (n, m), &self.device)?,
        };
        Ok(Some(self.join(&z, &codes)?))
    }

    fn attention_map(&self, latent: &Tensor, side: usize) -> Result<Option<(Tensor, Tensor)>> {
        let g = self.g_ema.as_ref().unwrap_or(&self.g);
        Ok(g.attention_map(latent, side)?)
    }

    fn critic(&self) -> Option<Critic<'_>> {
        Some(Critic {
            network: "d",
            d: self.d.as_ref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: Q logits (2, 0, 0) for category 0 and (0, 0, 1) for 2; means 0.5 and
    /// −1 for codes 1 and −1.
    #[test]
    fn the_mutual_information_terms_match_hand_computed_values() {
        let d = Device::Cpu;
        let mut c = InfoGanConfig {
            categories: 3,
            continuous: 1,
            ..Default::default()
        };
        let q = Tensor::new(&[[2f64, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, -1.0]], &d).unwrap();
        let codes = Codes {
            categorical: vec![0, 2],
            continuous: Tensor::new(&[[1f64], [-1.0]], &d).unwrap(),
        };
        let (cat, cont) = mi_terms(&q, &codes, &c, &d).unwrap();
        let ce = |x: f64, others: f64| -(x - (x.exp() + others).ln());
        let want_cat = (ce(2.0, 2.0) + ce(1.0, 2.0)) / 2.0;
        let h = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let want_cont = ((0.5 * 0.25 + h) + h) / 2.0;
        let v = |t: Tensor| t.to_scalar::<f64>().unwrap();
        assert!((v(cat) - want_cat).abs() < 1e-12);
        assert!((v(cont) - want_cont).abs() < 1e-12);
        // Learned σ: log σ² = ln 4 for the first, 0 for the second.
        c.sigma = SigmaMode::Learned;
        let q = Tensor::new(
            &[[2f64, 0.0, 0.0, 0.5, 4f64.ln()], [0.0, 0.0, 1.0, -1.0, 0.0]],
            &d,
        )
        .unwrap();
        let (_, cont) = mi_terms(&q, &codes, &c, &d).unwrap();
        let first = h + 0.5 * 4f64.ln() + 0.25 / (2.0 * 4.0);
        let want = (first + h) / 2.0;
        assert!((v(cont) - want).abs() < 1e-12, "{want}");
    }
}
