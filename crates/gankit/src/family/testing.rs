//! A family for the trainer's tests, shaped like InfoGAN (Chen et al. 2016): three networks
//! — a generator `g`, a discriminator `d` (a body and a real/fake head) and a head `q` on
//! D's body that predicts the two continuous codes G was given — and a parameter group that
//! spans networks and splits one: optimiser `d` updates all of `d` on the adversarial
//! loss, optimiser `gq` updates `g`, `q` and `d`'s body on G's loss plus the code
//! reconstruction. It uses nothing but the generic machinery (the [`Model`] registry, the
//! [`Family`] trait), so the tests of checkpoints, resume, rollback and the weight average
//! on it show those work for any family.
//!
//! Tiny MLPs on 28×28 images; selected by `model.family = "three-net-test"` (test builds
//! only).

use candle_core::{Device, Module, Tensor};

use super::latent::{self, Draw};
use super::model::{Model, Select};
use super::{Critic, Family};
use crate::config::Config;
use crate::losses::bce_with_logits;
use crate::models::{DOutput, Discriminator};
use crate::nn::{Linear, Mode, ParamStore, linear};
use crate::objectives::common::scalar;
use crate::objectives::{RealBatch, Stats};
use crate::rng::{Rng, stream};
use crate::{Error, Result};

const NOISE: usize = 8;
const CODES: usize = 2;
const HIDDEN: usize = 16;
const PIXELS: usize = 28 * 28;
const INIT: candle_nn::Init = candle_nn::Init::Randn {
    mean: 0.0,
    stdev: 0.05,
};

/// G: (noise ‖ codes) → 784 → tanh image.
struct Gen(Linear);

impl Gen {
    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let n = z.dim(0)?;
        Ok(self.0.forward(z)?.tanh()?.reshape((n, 1, 28, 28))?)
    }
}

/// D's body (784 → 16, LeakyReLU) and its real/fake head (16 → 1).
struct Dis {
    body: Linear,
    head: Linear,
}

impl Dis {
    fn body(&self, x: &Tensor) -> Result<Tensor> {
        let flat = x.flatten_from(1)?;
        Ok(crate::nn::leaky_relu(&self.body.forward(&flat)?, 0.2)?)
    }
}

impl Discriminator for Dis {
    fn forward(
        &self,
        x: &Tensor,
        _labels: Option<&Tensor>,
        _mode: &mut Mode,
    ) -> candle_core::Result<DOutput> {
        let flat = x.flatten_from(1)?;
        let features = crate::nn::leaky_relu(&self.body.forward(&flat)?, 0.2)?;
        let logits = self.head.forward(&features)?.flatten_all()?;
        Ok(DOutput { logits, features })
    }
}

pub struct ThreeNets {
    model: Model,
    g: Gen,
    g_ema: Option<Gen>,
    d: Dis,
    /// D over its weights detached: G's adversarial loss reaches G only, never D's body.
    d_frozen: Dis,
    q: Linear,
    device: Device,
}

fn dis(vb: candle_nn::VarBuilder) -> Result<Dis> {
    Ok(Dis {
        body: linear(PIXELS, HIDDEN, true, INIT, vb.pp("body"))?,
        head: linear(HIDDEN, 1, true, INIT, vb.pp("head"))?,
    })
}

impl ThreeNets {
    pub fn build(cfg: &Config, device: &Device) -> Result<ThreeNets> {
        if (cfg.data.image_size, cfg.data.channels) != (28, 1) {
            return Err(Error::Config("the test family is 28×28 grayscale".into()));
        }
        let seed = cfg.train.seed;
        let (gs, ds, qs) = (
            ParamStore::new(Rng::new(seed, stream::INIT_G), device),
            ParamStore::new(Rng::new(seed, stream::INIT_D), device),
            ParamStore::new(Rng::new(seed, stream::INIT_Q), device),
        );
        let g = Gen(linear(
            NOISE + CODES,
            PIXELS,
            true,
            INIT,
            gs.var_builder().pp("fc"),
        )?);
        let d = dis(ds.var_builder())?;
        let d_frozen = dis(ds.frozen_var_builder())?;
        let q = linear(HIDDEN, CODES, true, INIT, qs.var_builder().pp("head"))?;
        let mut model = Model::default();
        model.add_network("g", gs);
        model.add_network("d", ds);
        model.add_network("q", qs);
        model.add_optimizer("d", &[Select::all("d")], &cfg.optim.d)?;
        let gq = [
            Select::all("g"),
            Select::all("q"),
            Select::part("d", "body."),
        ];
        model.add_optimizer("gq", &gq, &cfg.optim.g)?;
        let g_ema = if cfg.ema.enabled() {
            let store = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
            let g = Gen(linear(
                NOISE + CODES,
                PIXELS,
                true,
                INIT,
                store.var_builder().pp("fc"),
            )?);
            model.add_ema("g", store, cfg.ema.decay, cfg.ema.start)?;
            Some(g)
        } else {
            None
        };
        Ok(ThreeNets {
            model,
            g,
            g_ema,
            d,
            d_frozen,
            q,
            device: device.clone(),
        })
    }

    /// Noise and codes: (n, NOISE + CODES), and the codes alone.
    fn draw(&self, n: usize, truncation: Option<f64>, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
        let z = latent::noise(rng, n, NOISE, truncation, &self.device)?;
        let c = Tensor::from_vec(
            rng.uniform_vec(n * CODES, -1.0, 1.0),
            (n, CODES),
            &self.device,
        )?;
        Ok((Tensor::cat(&[&z, &c], 1)?, c))
    }
}

impl Family for ThreeNets {
    fn model(&self) -> &Model {
        &self.model
    }

    fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["d_loss", "g_loss", "code_loss"]
    }

    fn d_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let n = real.images.dim(0)?;
        let (z, _) = self.draw(n, None, rng)?;
        let fake = self.g.forward(&z)?.detach();
        let mut mode = Mode::Train(rng);
        let r = self.d.forward(&real.images, None, &mut mode)?;
        let f = self.d.forward(&fake, None, &mut mode)?;
        let loss = (bce_with_logits(&r.logits, 1.0)? + bce_with_logits(&f.logits, 0.0)?)?;
        self.model.step("d", &loss.backward()?)?;
        Ok(vec![("d_loss", scalar(&loss)?)])
    }

    fn g_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats> {
        let n = real.images.dim(0)?;
        let (z, codes) = self.draw(n, None, rng)?;
        let fake = self.g.forward(&z)?;
        let adversarial = self.d_frozen.forward(&fake, None, &mut Mode::Train(rng))?;
        let g_loss = bce_with_logits(&adversarial.logits, 1.0)?;
        // The code reconstruction goes through D's live body into Q.
        let predicted = self.q.forward(&self.d.body(&fake)?)?;
        let code_loss = (predicted - &codes)?.sqr()?.mean_all()?;
        let loss = (&g_loss + &code_loss)?;
        self.model.step("gq", &loss.backward()?)?;
        Ok(vec![
            ("g_loss", scalar(&g_loss)?),
            ("code_loss", scalar(&code_loss)?),
        ])
    }

    fn latent(&self, n: usize, draw: &Draw, rng: &mut Rng) -> Result<Tensor> {
        Ok(self.draw(n, draw.truncation, rng)?.0)
    }

    fn render(&self, latent: &Tensor, ema: bool) -> Result<Tensor> {
        match &self.g_ema {
            Some(g) if ema => g.forward(latent),
            _ => self.g.forward(latent),
        }
    }

    fn critic(&self) -> Option<Critic<'_>> {
        Some(Critic {
            network: "d",
            d: &self.d,
        })
    }
}
