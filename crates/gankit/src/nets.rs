//! The generator and discriminator of a run with their parameters and optimisers, the
//! generator's weight average and the transform of D's inputs, and the conversion of all of
//! it to and from checkpoint tensors.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::Result;
use crate::augment::DInputs;
use crate::config::Config;
use crate::ema::Ema;
use crate::models::{self, Discriminator, Generator};
use crate::nn::Mode;
use crate::nn::ParamStore;
use crate::optim::{self, Optimizer};
use crate::rng::{Rng, stream};

/// The checkpoint file of G's weight average.
const EMA_FILE: &str = "g_ema.safetensors";

/// Batches [`Nets::refresh_ema_statistics`] runs: with batch norm's momentum 0.1, what is
/// left of the copied statistics is 0.9⁵⁰ ≈ 0.5 %.
pub const STATISTICS_BATCHES: usize = 50;

/// The two networks, their parameters and their optimisers.
pub struct Nets {
    pub g: Box<dyn Generator>,
    pub d: Box<dyn Discriminator>,
    /// D again, over the same weights detached ([`ParamStore::frozen_var_builder`]): G's
    /// step runs D through it, so its backward pass skips D's weight gradients, which G's
    /// update never uses.
    pub d_frozen: Box<dyn Discriminator>,
    pub g_params: ParamStore,
    pub d_params: ParamStore,
    pub opt_g: Box<dyn Optimizer>,
    pub opt_d: Box<dyn Optimizer>,
    /// The average of G's weights (`[ema]`), which samples and evaluation use when on.
    pub ema: Option<Ema>,
    /// What D's inputs go through: DiffAugment and instance noise (identity when off).
    pub d_inputs: DInputs,
    pub z_dim: usize,
    /// Classes of a conditional run; 0 when unconditional.
    pub classes: usize,
    pub device: Device,
}

impl Nets {
    /// Build and initialise both networks for `cfg`, seeded by `cfg.train.seed`.
    pub fn build(cfg: &Config, device: &Device) -> Result<Nets> {
        let seed = cfg.train.seed;
        let g_params = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
        let d_params = ParamStore::new(Rng::new(seed, stream::INIT_D), device);
        let (g, d) = models::build(cfg, &g_params, &d_params)?;
        let d_frozen = models::build_discriminator(cfg, d_params.frozen_var_builder())?;
        let opt_g = optim::build(g_params.trainable(), &cfg.optim.g)?;
        let opt_d = optim::build(d_params.trainable(), &cfg.optim.d)?;
        let ema = if cfg.ema.enabled() {
            let params = ParamStore::new(Rng::new(seed, stream::INIT_G), device);
            let g_ema = models::build_generator(cfg, params.var_builder())?;
            Some(Ema::new(
                g_ema,
                params,
                &g_params,
                cfg.ema.decay,
                cfg.ema.start,
            )?)
        } else {
            None
        };
        Ok(Nets {
            ema,
            d_inputs: DInputs::new(cfg)?,
            g,
            d,
            d_frozen,
            g_params,
            d_params,
            opt_g,
            opt_d,
            z_dim: cfg.model.z_dim,
            classes: cfg.model.classes,
            device: device.clone(),
        })
    }

    /// A batch of noise z ~ N(0, I), (n, z_dim), drawn from `rng`.
    pub fn noise(&self, rng: &mut Rng, n: usize) -> Result<Tensor> {
        let v = rng.normal_vec(n * self.z_dim, 0.0, 1.0);
        Ok(Tensor::from_vec(v, (n, self.z_dim), &self.device)?)
    }

    /// G's input for `n` images: noise, joined in a conditional run to the one-hot of
    /// `labels` (n, u32), which it then needs.
    pub fn latent(&self, rng: &mut Rng, n: usize, labels: Option<&Tensor>) -> Result<Tensor> {
        let z = self.noise(rng, n)?;
        if self.classes == 0 {
            return Ok(z);
        }
        let labels = labels.ok_or_else(|| {
            crate::Error::Run("a conditional generator needs the classes to draw".into())
        })?;
        let one_hot = one_hot(&labels.to_vec1::<u32>()?, self.classes, &self.device)?;
        Ok(Tensor::cat(&[&z, &one_hot], 1)?)
    }

    /// Class labels (n, u32) on this device.
    pub fn labels(&self, classes: &[u32]) -> Result<Tensor> {
        Ok(Tensor::new(classes, &self.device)?)
    }

    /// The classes [`Nets::generate`] draws for `n` images: `class` for all, or (in a
    /// conditional run) every class in turn; `None` when unconditional.
    pub fn sample_classes(&self, n: usize, class: Option<u32>) -> Option<Vec<u32>> {
        (self.classes > 0).then(|| {
            (0..n)
                .map(|i| class.unwrap_or((i % self.classes) as u32))
                .collect()
        })
    }

    /// The classes of a sample grid of `n` images: one class per row, in turn; `None` when
    /// unconditional.
    pub fn grid_classes(&self, n: usize) -> Option<Vec<u32>> {
        let cols = crate::report::grid::columns(n);
        (self.classes > 0).then(|| (0..n).map(|i| ((i / cols) % self.classes) as u32).collect())
    }

    /// The generator samples and evaluation use: the weight average when `[ema]` is on,
    /// else G itself.
    pub fn sampler(&self) -> &dyn Generator {
        match &self.ema {
            Some(e) => e.g.as_ref(),
            None => self.g.as_ref(),
        }
    }

    /// Re-estimate the weight average's batch-norm running statistics for its own weights
    /// ("standing statistics"): [`STATISTICS_BATCHES`] batches of 64 from a fixed noise
    /// stream through it in training mode. The statistics copied from G belong to G's
    /// weights, not the average's; sampling and evaluation call this first. Nothing to do
    /// without `[ema]` or without batch norm.
    pub fn refresh_ema_statistics(&self) -> Result<()> {
        let Some(e) = &self.ema else {
            return Ok(());
        };
        if !e.params.vars().keys().any(|n| n.ends_with("running_mean")) {
            return Ok(());
        }
        let mut rng = Rng::new(0, stream::EMA_STATISTICS);
        for _ in 0..STATISTICS_BATCHES {
            let classes = self.sample_classes(64, None);
            let labels = classes.map(|c| self.labels(&c)).transpose()?;
            let z = self.latent(&mut rng, 64, labels.as_ref())?;
            e.g.forward(&z, &mut Mode::Train(&mut rng))?;
        }
        Ok(())
    }

    /// Fold G's weights into the average (after a G update at `iteration`), when it is on.
    pub fn update_ema(&self, iteration: u64) -> Result<()> {
        match &self.ema {
            Some(e) => e.update(&self.g_params, iteration),
            None => Ok(()),
        }
    }

    /// `x` as D sees it: augmented and noised as configured (see [`DInputs`]).
    pub fn d_input(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        self.d_inputs.apply(x, rng)
    }

    /// `n` images (n, C, H, W) in [-1, 1] from noise drawn from `rng` by
    /// [`Nets::sampler`], generated in batches of 256 with batch norm in evaluation mode
    /// (running statistics). A conditional run draws the classes of
    /// [`Nets::sample_classes`] (`class`, or each class in turn).
    pub fn generate(&self, n: usize, class: Option<u32>, rng: &mut Rng) -> Result<Vec<f32>> {
        self.generate_classes(n, self.sample_classes(n, class).as_deref(), rng)
    }

    /// Like [`Nets::generate`], for the given classes (one per image; `None` when
    /// unconditional).
    pub fn generate_classes(
        &self,
        n: usize,
        classes: Option<&[u32]>,
        rng: &mut Rng,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let b = left.min(256);
            let labels = match classes {
                Some(c) => Some(self.labels(&c[n - left..n - left + b])?),
                None => None,
            };
            let z = self.latent(rng, b, labels.as_ref())?;
            out.extend(
                self.sampler()
                    .forward(&z, &mut Mode::Eval)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            left -= b;
        }
        Ok(out)
    }

    /// Set both optimisers' learning rates to the configured ones times `scale`.
    pub fn scale_learning_rates(&mut self, cfg: &Config, scale: f64) {
        self.opt_g.set_lr(cfg.optim.g.lr * scale);
        self.opt_d.set_lr(cfg.optim.d.lr * scale);
    }

    /// The name of the first trainable weight holding a NaN or an infinity, if any.
    pub fn first_non_finite_weight(&self) -> Result<Option<String>> {
        for (net, store) in [("G", &self.g_params), ("D", &self.d_params)] {
            for (name, v) in store.trainable() {
                let sum = v
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
                if !sum.is_finite() && !finite_all(v.as_tensor())? {
                    return Ok(Some(format!("{net} {name}")));
                }
            }
        }
        Ok(None)
    }

    /// Everything to checkpoint, by file name (see `checkpoint::TENSOR_FILES`).
    pub fn checkpoint_tensors(&self) -> Result<Vec<(&'static str, HashMap<String, Tensor>)>> {
        let mut files = vec![
            ("g.safetensors", self.g_params.tensors()),
            ("d.safetensors", self.d_params.tensors()),
            ("opt_g.safetensors", self.opt_g.state()?),
            ("opt_d.safetensors", self.opt_d.state()?),
        ];
        if let Some(e) = &self.ema {
            files.push((EMA_FILE, e.params.tensors()));
        }
        Ok(files)
    }

    /// Restore what [`Nets::checkpoint_tensors`] saved.
    pub fn restore(&mut self, files: &HashMap<String, HashMap<String, Tensor>>) -> Result<()> {
        let get = |f: &str| {
            files
                .get(f)
                .ok_or_else(|| crate::Error::Run(format!("checkpoint lacks {f}")))
        };
        self.g_params
            .assign(get("g.safetensors")?, "g.safetensors")?;
        self.d_params
            .assign(get("d.safetensors")?, "d.safetensors")?;
        self.opt_g
            .load_state(get("opt_g.safetensors")?, "opt_g.safetensors")?;
        self.opt_d
            .load_state(get("opt_d.safetensors")?, "opt_d.safetensors")?;
        if let Some(e) = &self.ema {
            let saved = files.get(EMA_FILE).ok_or_else(|| {
                crate::Error::Run(format!(
                    "checkpoint lacks {EMA_FILE}: it was written without [ema]"
                ))
            })?;
            e.params.assign(saved, EMA_FILE)?;
        }
        Ok(())
    }
}

/// Rows of the identity for `labels`: (n, classes).
fn one_hot(labels: &[u32], classes: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        if l as usize >= classes {
            return Err(crate::Error::Config(format!(
                "class {l} does not exist: this run has classes 0 to {}",
                classes - 1
            )));
        }
        v[i * classes + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(v, (labels.len(), classes), device)?)
}

/// True when every element of `t` is finite (a sum can overflow where no element does).
fn finite_all(t: &Tensor) -> Result<bool> {
    let v = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    Ok(v.iter().all(|x| x.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        nets.update_ema(1).unwrap();
        let mean =
            |s: &ParamStore| -> Vec<f32> { s.tensors()["bn1.running_mean"].to_vec1().unwrap() };
        let ema = &nets.ema.as_ref().unwrap().params;
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
        nets.opt_d.step(&grads).unwrap();
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
