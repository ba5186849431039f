//! The GAN family's networks as its objectives see them: the generator and discriminator
//! (and D over detached weights for G's step), their weight average, the transform of D's
//! inputs, and the [`Model`] registry holding their stores and optimisers (`g`, `d`).

use candle_core::{Device, Tensor};

use crate::Result;
use crate::augment::DInputs;
use crate::config::Config;
use crate::family::latent;
use crate::family::model::{Model, Select};
use crate::models::{self, Discriminator, Generator};
use crate::nn::ParamStore;
use crate::rng::{Rng, stream};

/// The generator network's name (its checkpoint file and optimiser).
pub const G: &str = "g";
/// The discriminator network's name.
pub const D: &str = "d";

/// The two networks, their stores and optimisers (in `model`), and what surrounds them.
pub struct Nets {
    pub g: Box<dyn Generator>,
    pub d: Box<dyn Discriminator>,
    /// D again, over the same weights detached ([`ParamStore::frozen_var_builder`]): G's
    /// step runs D through it, so its backward pass skips D's weight gradients, which G's
    /// update never uses.
    pub d_frozen: Box<dyn Discriminator>,
    /// G's variables (also `model`'s network `g`; the store is shared).
    pub g_params: ParamStore,
    /// D's variables (also `model`'s network `d`).
    pub d_params: ParamStore,
    /// G over its weight average (`[ema]`), which samples and evaluation use when on.
    pub g_ema: Option<Box<dyn Generator>>,
    /// The networks and optimisers the generic machinery checkpoints.
    pub model: Model,
    /// What D's inputs go through: DiffAugment and instance noise (identity when off).
    pub d_inputs: DInputs,
    pub z_dim: usize,
    /// Classes of a conditional run; 0 when unconditional.
    pub classes: usize,
    /// Progressive growing's schedule (`model.arch = "progressive"`), shared with G and D.
    pub progress: Option<models::progressive::Progress>,
    /// Log ‖∇θ_G‖ at each G step (`log.g_grad_norm`).
    pub log_g_grad_norm: bool,
    pub device: Device,
}

impl Nets {
    /// Build and initialise both networks for `cfg`, seeded by `cfg.train.seed`.
    pub fn build(cfg: &Config, device: &Device) -> Result<Nets> {
        let seed = cfg.train.seed;
        let g_params = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
        let d_params = ParamStore::new(Rng::new(seed, stream::INIT_D), device);
        let shared = models::Shared::of(cfg);
        let (g, d) = models::build_shared(cfg, &shared, &g_params, &d_params)?;
        let d_frozen = models::discriminator_in(cfg, &shared, d_params.frozen_var_builder())?;
        let mut model = Model::default();
        model.add_network(G, g_params.clone());
        model.add_network(D, d_params.clone());
        model.add_optimizer(G, &[Select::all(G)], &cfg.optim.g)?;
        model.add_optimizer(D, &[Select::all(D)], &cfg.optim.d)?;
        let g_ema = if cfg.ema.enabled() {
            let store = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
            let input = cfg.model.z_dim + cfg.model.classes;
            let g_ema = models::generator_in(cfg, input, &shared, store.var_builder())?;
            model.add_ema(G, store, cfg.ema.decay, cfg.ema.start)?;
            Some(g_ema)
        } else {
            None
        };
        Ok(Nets {
            progress: shared.progress,
            g_ema,
            model,
            d_inputs: DInputs::new(cfg)?,
            g,
            d,
            d_frozen,
            g_params,
            d_params,
            z_dim: cfg.model.z_dim,
            classes: cfg.model.classes,
            log_g_grad_norm: cfg.log.g_grad_norm,
            device: device.clone(),
        })
    }

    /// A batch of noise z ~ N(0, I), (n, z_dim), drawn from `rng`.
    pub fn noise(&self, rng: &mut Rng, n: usize) -> Result<Tensor> {
        latent::noise(rng, n, self.z_dim, None, &self.device)
    }

    /// G's input for `n` images: noise, joined in a conditional run to the one-hot of
    /// `labels` (n, u32), which it then needs.
    pub fn latent(&self, rng: &mut Rng, n: usize, labels: Option<&Tensor>) -> Result<Tensor> {
        let classes = labels.map(|l| l.to_vec1::<u32>()).transpose()?;
        self.latent_of(rng, n, classes.as_deref(), None)
    }

    /// G's input for `n` images of `classes` (a conditional run needs them), the noise
    /// truncated at ±ψ when `truncation` is set (the one-hot part never is).
    pub fn latent_of(
        &self,
        rng: &mut Rng,
        n: usize,
        classes: Option<&[u32]>,
        truncation: Option<f64>,
    ) -> Result<Tensor> {
        let z = latent::noise(rng, n, self.z_dim, truncation, &self.device)?;
        if self.classes == 0 {
            return Ok(z);
        }
        let classes = classes.ok_or_else(|| {
            crate::Error::Run("a conditional generator needs the classes to draw".into())
        })?;
        let one_hot = latent::one_hot(classes, self.classes, &self.device)?;
        Ok(Tensor::cat(&[&z, &one_hot], 1)?)
    }

    /// Class labels (n, u32) on this device.
    pub fn labels(&self, classes: &[u32]) -> Result<Tensor> {
        Ok(Tensor::new(classes, &self.device)?)
    }

    /// The generator samples and evaluation use: the weight average when `ema` and `[ema]`
    /// is on, else G itself.
    pub fn sampler(&self, ema: bool) -> &dyn Generator {
        crate::family::chosen(self.g.as_ref(), self.g_ema.as_deref(), ema)
    }

    /// Re-estimate the weight average's batch-norm running statistics for its own weights
    /// (`family::standing_statistics`); sampling and evaluation call this first. Nothing
    /// to do without `[ema]`.
    pub fn refresh_ema_statistics(&self) -> Result<()> {
        let classes = latent::cycle_classes(64, self.classes, None);
        crate::family::refresh_average(&self.model, G, self.g_ema.as_deref(), |rng| {
            self.latent_of(rng, 64, classes.as_deref(), None)
        })
    }

    /// `x` as D sees it: augmented and noised as configured (see [`DInputs`]).
    pub fn d_input(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        self.d_inputs.apply(x, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Mode;

    #[test]
    fn the_weight_average_gets_batch_norm_statistics_of_its_own() {
        let cfg = Config::from_toml_str(
            "[model]\ng_width = 4\nd_width = 4\n[ema]\ndecay = 0.9",
            "t",
            &[],
        )
        .unwrap();
        let nets = Nets::build(&cfg, &Device::Cpu).unwrap();
        // Train-mode passes move G's statistics; the average copies them.
        let mut rng = Rng::new(0, 0);
        let z = nets.noise(&mut rng, 8).unwrap();
        nets.g.forward(&z, &mut Mode::Train(&mut rng)).unwrap();
        nets.model.update_ema(1).unwrap();
        let mean =
            |s: &ParamStore| -> Vec<f32> { s.tensors()["bn1.running_mean"].to_vec1().unwrap() };
        let ema = &nets.model.network(G).ema.as_ref().unwrap().params;
        assert_eq!(mean(ema), mean(&nets.g_params));
        nets.refresh_ema_statistics().unwrap();
        let refreshed = mean(ema);
        assert_ne!(refreshed, mean(&nets.g_params));
        assert!(refreshed.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn frozen_d_matches_d_tracks_updates_and_yields_no_d_gradients() {
        let cfg = Config::from_toml_str(
            "[model]\ng_width = 4\nd_width = 4\n[train]\nbatch_size = 4",
            "t",
            &[],
        )
        .unwrap();
        let mut nets = Nets::build(&cfg, &Device::Cpu).unwrap();
        let mut rng = Rng::new(0, 0);
        let z = nets.noise(&mut rng, 4).unwrap();
        let fake = nets.g.forward(&z, &mut Mode::Eval).unwrap();
        let score = |d: &dyn Discriminator| {
            d.forward(&fake, None, &mut Mode::Eval)
                .unwrap()
                .logits
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(score(nets.d.as_ref()), score(nets.d_frozen.as_ref()));
        // An optimiser step on D shows through the frozen view.
        let loss = nets
            .d
            .forward(&fake.detach(), None, &mut Mode::Eval)
            .unwrap();
        let grads = loss.logits.sum_all().unwrap().backward().unwrap();
        nets.model.step(D, &grads).unwrap();
        assert_eq!(score(nets.d.as_ref()), score(nets.d_frozen.as_ref()));
        // Through the frozen view, G still gets its gradients and D's weights get none.
        let out = nets.d_frozen.forward(&fake, None, &mut Mode::Eval).unwrap();
        let grads = out.logits.sum_all().unwrap().backward().unwrap();
        assert!(
            nets.g_params
                .trainable()
                .iter()
                .all(|(_, v)| grads.get(v).is_some())
        );
        assert!(
            nets.d_params
                .trainable()
                .iter()
                .all(|(_, v)| grads.get(v).is_none())
        );
    }
}
