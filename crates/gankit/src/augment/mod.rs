//! What happens to an image on its way into D: DiffAugment's transforms (`[augment]`) and
//! annealed instance noise (`[instance_noise]`). Both apply the same way to real and fake
//! batches, in D's step and in G's step, and both are differentiable, so G learns through
//! them. G's own output (samples, evaluation) never passes through here.
//!
//! The random draws come from the run's noise generator, so a run stays deterministic under
//! its seed and resumes exactly; with both off nothing is drawn and runs are unchanged.

mod diff_augment;

pub use diff_augment::{brightness, contrast, cutout, saturation, translation};

use candle_core::Tensor;

use crate::Result;
use crate::config::{AugmentOp, AugmentPolicy, Config};
use crate::rng::Rng;

/// The transform of D's inputs for one run.
#[derive(Clone, Debug)]
pub struct DInputs {
    policy: AugmentPolicy,
    translation: f64,
    cutout: f64,
    noise_std: f64,
    anneal_steps: u64,
    /// The current iteration (1-based), for the noise schedule.
    iteration: u64,
}

impl DInputs {
    pub fn new(cfg: &Config) -> Result<DInputs> {
        let n = &cfg.instance_noise;
        Ok(DInputs {
            policy: cfg.augment.policy.clone(),
            translation: cfg.augment.translation,
            cutout: cfg.augment.cutout,
            noise_std: n.std,
            anneal_steps: if n.anneal_steps == 0 {
                cfg.train.steps
            } else {
                n.anneal_steps
            },
            iteration: 1,
        })
    }

    /// Set the iteration the next inputs belong to (1-based).
    pub fn set_iteration(&mut self, iteration: u64) {
        self.iteration = iteration;
    }

    /// The instance noise's standard deviation now: `std` at iteration 1, falling linearly
    /// to 0 at iteration `anneal_steps` + 1 and staying there.
    pub fn noise_std(&self) -> f64 {
        let done = (self.iteration.saturating_sub(1)) as f64 / self.anneal_steps.max(1) as f64;
        self.noise_std * (1.0 - done).max(0.0)
    }

    /// `x` (b, C, H, W) as D sees it: augmented by the policy's transforms in the order
    /// it names them, plus the instance noise.
    pub fn apply(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        let mut x = x.clone();
        for op in &self.policy.ops {
            x = match op {
                AugmentOp::Color => contrast(&saturation(&brightness(&x, rng)?, rng)?, rng)?,
                AugmentOp::Translation => translation(&x, self.translation, rng)?,
                AugmentOp::Cutout => cutout(&x, self.cutout, rng)?,
            };
        }
        let std = self.noise_std();
        if std > 0.0 {
            let noise = rng.normal_vec(x.elem_count(), 0.0, std as f32);
            let noise = Tensor::from_vec(noise, x.dims(), x.device())?.to_dtype(x.dtype())?;
            x = (x + noise)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests;
