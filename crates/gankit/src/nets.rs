//! The generator and discriminator of a run with their parameters and optimisers, and the
//! conversion of all of it to and from checkpoint tensors.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::Result;
use crate::config::Config;
use crate::models::{self, Discriminator, Generator};
use crate::nn::Mode;
use crate::nn::ParamStore;
use crate::optim::{self, Optimizer};
use crate::rng::{Rng, stream};

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
    pub z_dim: usize,
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
        Ok(Nets {
            g,
            d,
            d_frozen,
            g_params,
            d_params,
            opt_g,
            opt_d,
            z_dim: cfg.model.z_dim,
            device: device.clone(),
        })
    }

    /// A batch of noise z ~ N(0, I), (n, z_dim), drawn from `rng`.
    pub fn noise(&self, rng: &mut Rng, n: usize) -> Result<Tensor> {
        let v = rng.normal_vec(n * self.z_dim, 0.0, 1.0);
        Ok(Tensor::from_vec(v, (n, self.z_dim), &self.device)?)
    }

    /// `n` images (n, C, H, W) in [-1, 1] from noise drawn from `rng`, generated in batches
    /// of 256 with batch norm in evaluation mode (running statistics).
    pub fn generate(&self, n: usize, rng: &mut Rng) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let b = left.min(256);
            let z = self.noise(rng, b)?;
            out.extend(
                self.g
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
        Ok(vec![
            ("g.safetensors", self.g_params.tensors()),
            ("d.safetensors", self.d_params.tensors()),
            ("opt_g.safetensors", self.opt_g.state()?),
            ("opt_d.safetensors", self.opt_d.state()?),
        ])
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
        Ok(())
    }
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
            d.forward(&fake, &mut Mode::Eval)
                .unwrap()
                .logits
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(score(nets.d.as_ref()), score(nets.d_frozen.as_ref()));
        // An optimiser step on D shows through the frozen view.
        let loss = nets.d.forward(&fake.detach(), &mut Mode::Eval).unwrap();
        let grads = loss.logits.sum_all().unwrap().backward().unwrap();
        nets.opt_d.step(&grads).unwrap();
        assert_eq!(score(nets.d.as_ref()), score(nets.d_frozen.as_ref()));
        // Through the frozen view, G still gets its gradients and D's weights get none.
        let out = nets.d_frozen.forward(&fake, &mut Mode::Eval).unwrap();
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
