//! GAN objectives. Each variant owns its discriminator and generator steps (losses, backward
//! passes and optimiser updates); the trainer only calls [`Objective::d_step`] and
//! [`Objective::g_step`] and logs the named statistics they return.

mod non_saturating;

pub use non_saturating::NonSaturating;

use candle_core::Tensor;

use crate::Result;
use crate::config::{Config, LossKind};
pub use crate::nets::Nets;
use crate::rng::Rng;

/// Named scalars a step reports (loss values, D's outputs, ...), in column order.
pub type Stats = Vec<(&'static str, f64)>;

/// One GAN training scheme.
pub trait Objective: Send {
    /// Update D once on a real batch (batch, C, H, W). `rng` feeds noise and dropout.
    fn d_step(&mut self, nets: &mut Nets, real: &Tensor, rng: &mut Rng) -> Result<Stats>;
    /// Update G once with `batch` fresh noise vectors.
    fn g_step(&mut self, nets: &mut Nets, batch: usize, rng: &mut Rng) -> Result<Stats>;
    /// The names of every statistic the two steps report, for the metrics header.
    fn columns(&self) -> Vec<&'static str>;
}

/// The objective a config asks for.
pub fn build(cfg: &Config) -> Box<dyn Objective> {
    match cfg.train.loss {
        LossKind::NonSaturating => Box::new(NonSaturating),
    }
}

/// A scalar tensor as f64 (for logging).
pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}
