//! The GAN family's objectives. Each variant owns its discriminator and generator steps
//! (losses, backward passes, optimiser updates, weight clipping) on the generator /
//! discriminator pair ([`Nets`]), names the statistics it logs, and states its own rules on
//! the config ([`check`]) and whether it needs second-order gradients.

pub mod adversarial;
mod bce;
pub(crate) mod common;
mod hinge;
mod lsgan;
pub mod penalty;
mod targets;
mod wgan;
mod wgan_gp;

pub use bce::Bce;
pub use hinge::Hinge;
pub use lsgan::Lsgan;
pub use targets::Targets;
pub use wgan::Wgan;
pub use wgan_gp::WganGp;

use candle_core::Tensor;

use crate::Result;
use crate::config::{Config, LossKind};
pub use crate::family::gan::Nets;
use crate::rng::Rng;

/// Named scalars a step reports (loss values, D's outputs, ...).
pub type Stats = Vec<(&'static str, f64)>;

/// A batch of real images (batch, C, H, W) and, in a conditional run, their classes
/// (batch, u32). The fakes of a step are generated for the same classes.
#[derive(Clone, Debug)]
pub struct RealBatch {
    pub images: Tensor,
    pub labels: Option<Tensor>,
    /// The epoch of the data stream the batch comes from (0-based).
    pub epoch: u64,
}

impl RealBatch {
    /// Images without labels (an unconditional run).
    pub fn unlabelled(images: Tensor) -> Self {
        RealBatch {
            images,
            labels: None,
            epoch: 0,
        }
    }

    pub fn labels(&self) -> Option<&Tensor> {
        self.labels.as_ref()
    }
}

/// One GAN training scheme.
pub trait Objective: Send {
    /// Called before each iteration (1-based), for schedules such as LSGAN's α.
    fn begin_iteration(&mut self, _iteration: u64) {}
    /// Update D once on a real batch (batch, C, H, W). `rng` feeds noise, targets, dropout.
    fn d_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats>;
    /// Update G once with a batch of fresh noise; `real` is the iteration's last real batch
    /// (used by feature matching) and sets the batch size.
    fn g_step(&mut self, nets: &mut Nets, real: &RealBatch, rng: &mut Rng) -> Result<Stats>;
    /// The names of every statistic the two steps report, for the metrics header.
    fn columns(&self) -> Vec<&'static str>;
}

/// What the objectives refuse in a config, each rule stated next to the objective it
/// protects.
pub fn check(cfg: &Config) -> Result<()> {
    wgan_gp::check(cfg)?;
    targets::check(cfg)
}

/// Whether the objective differentiates a gradient (WGAN-GP's exact penalty).
pub fn needs_second_order(cfg: &Config) -> bool {
    wgan_gp::needs_second_order(cfg)
}

/// The objective a config asks for.
pub fn build(cfg: &Config) -> Box<dyn Objective> {
    let t = &cfg.train;
    let targets = Targets::new(t.label_smoothing);
    let fm = t.feature_matching;
    match t.loss {
        LossKind::Minimax => Box::new(Bce::new(true, targets, fm)),
        LossKind::NonSaturating => Box::new(Bce::new(false, targets, fm)),
        LossKind::Wgan => Box::new(Wgan::new(cfg.wgan.clip, cfg.wgan.alpha.clone(), fm)),
        LossKind::WganGp => Box::new(WganGp::new(cfg.gp.clone(), fm)),
        LossKind::Lsgan => Box::new(Lsgan::new(cfg.lsgan.alpha.clone(), targets, fm)),
        LossKind::Hinge => Box::new(Hinge::new(fm)),
    }
}
