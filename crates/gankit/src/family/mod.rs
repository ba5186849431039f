//! Model families: what is trained. A family owns its named networks, the optimisers over
//! their parameter groups (a [`Model`]) and its discriminator and generator steps, which
//! compose the reusable losses (`losses`, `objectives`). The trainer, checkpoints, resume,
//! the NaN check and rollback, weight averages, Lipschitz tracking, `gankit bench`,
//! `sample` and `eval` work through the [`Family`] trait and the [`Model`] registry without
//! knowing which family runs.
//!
//! | `model.family` | networks | module |
//! |---|---|---|
//! | `"gan"` (default) | `g`, `d` | [`gan`]: every objective of `train.loss` |
//! | `"infogan"` | `g`, `d`, `q` | [`infogan`]: codes in G's latent, a Q head on D's features |
//! | `"bigan"`, `"bigbigan"` | `g`, `e`, `d` | [`bigan`]: an encoder and a discriminator of pairs (x, z) |
//! | `"vaegan"` | `e`, `g`, `d` | [`vaegan`]: a VAE whose decoder is G, reconstruction in D's features |

pub mod bigan;
pub mod gan;
pub mod infogan;
pub mod latent;
pub mod model;
#[cfg(test)]
mod testing;
pub mod vaegan;

pub use latent::Draw;
pub use model::{Model, Network, Select};

use std::path::Path;

use candle_core::{Device, Tensor};

use crate::config::{Config, FamilyKind};
use crate::data::ImageSet;
use crate::models::Discriminator;
use crate::objectives::{RealBatch, Stats};
use crate::rng::Rng;
use crate::{Error, Result};

/// A critic whose Lipschitz constant `log.lipschitz_every` tracks: the module, and the
/// network in the [`Model`] holding its weights.
pub struct Critic<'a> {
    pub network: &'static str,
    pub d: &'a dyn Discriminator,
}

/// One model family. Images are (n, C, H, W) in [-1, 1].
pub trait Family: Send {
    /// The networks and optimisers (checkpointed, averaged, counted by the trainer).
    fn model(&self) -> &Model;
    fn model_mut(&mut self) -> &mut Model;

    /// The names of every statistic the steps report, for the metrics header.
    fn columns(&self) -> Vec<&'static str>;
    /// Called before each iteration (1-based), for schedules.
    fn begin_iteration(&mut self, _iteration: u64) {}
    /// Bring step-dependent state (progressive growing's resolution) to `step` completed
    /// iterations, for drawing after a start, a resume or a checkpoint load.
    fn at_step(&mut self, _step: u64) {}
    /// The discriminator-side update on one real batch.
    fn d_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats>;
    /// The generator-side update; `real` is the iteration's last real batch.
    fn g_step(&mut self, real: &RealBatch, rng: &mut Rng) -> Result<Stats>;

    /// Classes of a conditional family; 0 when unconditional.
    fn classes(&self) -> usize {
        0
    }
    /// Values of the family's categorical latent code ([`Draw::codes`] sets it); 0 when it
    /// has none.
    fn codes(&self) -> usize {
        0
    }
    /// The latent of a traversal figure: one row per categorical value, `columns` columns
    /// sweeping continuous code `code` from −2 to 2, the noise fixed; `None` for families
    /// without codes.
    fn traversal(&self, _code: usize, _columns: usize, _rng: &mut Rng) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// The generator's input for `n` images, drawn from `rng` as `draw` says (truncation
    /// applies to the noise part only).
    fn latent(&self, n: usize, draw: &Draw, rng: &mut Rng) -> Result<Tensor>;
    /// Images from a latent, in evaluation mode; from the weight average when `ema` and
    /// the family keeps one.
    fn render(&self, latent: &Tensor, ema: bool) -> Result<Tensor>;
    /// Make the weight average ready to draw (e.g. its batch-norm statistics); called
    /// before grids, `sample` and evaluation.
    fn prepare_sampling(&self) -> Result<()> {
        Ok(())
    }

    /// In evaluation mode: the images of `latent` and the attention map β (n, N, N_keys)
    /// of the generator's self-attention layer after its hidden map of side `side`; `None`
    /// without one.
    fn attention_map(&self, _latent: &Tensor, _side: usize) -> Result<Option<(Tensor, Tensor)>> {
        Ok(None)
    }

    /// The encoder's codes of images (n, C, H, W) in evaluation mode (E(x), or μ for a
    /// variational encoder), from its average when `ema` and there is one; `None` for
    /// families without an encoder.
    fn encode(&self, _images: &Tensor, _ema: bool) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// The critic whose Lipschitz constant can be tracked, if any.
    fn critic(&self) -> Option<Critic<'_>> {
        None
    }
    /// Pretraining before iteration 1 (`[pretrain]`); families without one refuse it in
    /// their config check.
    fn pretrain(
        &mut self,
        _cfg: &Config,
        _data: &ImageSet,
        _dir: &Path,
        _note: &mut dyn FnMut(&str),
    ) -> Result<()> {
        Err(Error::Config(
            "[pretrain] is not available for this model.family".into(),
        ))
    }
}

/// Build the family `cfg` asks for, its weights initialised from `train.seed`.
pub fn build(cfg: &Config, device: &Device) -> Result<Box<dyn Family>> {
    let family = build_family(cfg, device)?;
    family.model().normalize_init(&cfg.model.normalized_init)?;
    Ok(family)
}

fn build_family(cfg: &Config, device: &Device) -> Result<Box<dyn Family>> {
    Ok(match cfg.model.family {
        FamilyKind::Gan => Box::new(gan::Gan::build(cfg, device)?),
        FamilyKind::Infogan => Box::new(infogan::InfoGan::build(cfg, device)?),
        FamilyKind::Bigan | FamilyKind::Bigbigan => Box::new(bigan::Bigan::build(cfg, device)?),
        FamilyKind::Vaegan => Box::new(vaegan::VaeGan::build(cfg, device)?),
        #[cfg(test)]
        FamilyKind::ThreeNetTest => Box::new(testing::ThreeNets::build(cfg, device)?),
    })
}

/// The family's and its objective's rules on top of the config's own ranges: what they
/// refuse (e.g. a batch-norm critic with a gradient penalty), with what to change.
pub fn check(cfg: &Config) -> Result<()> {
    cfg.validate()?;
    crate::models::check(cfg)?;
    match cfg.model.family {
        FamilyKind::Gan => gan::check(cfg),
        FamilyKind::Infogan => infogan::check(cfg),
        FamilyKind::Bigan | FamilyKind::Bigbigan => bigan::check(cfg),
        FamilyKind::Vaegan => vaegan::check(cfg),
        #[cfg(test)]
        FamilyKind::ThreeNetTest => Ok(()),
    }
}

/// Whether training differentiates a gradient (WGAN-GP's exact penalty), which candle
/// supports only with `CANDLE_GRAD_DO_NOT_DETACH=1` set before the thread's first backward
/// pass. Without it candle detaches each gradient as it goes, which frees intermediate
/// gradients sooner: set it only when needed.
pub fn needs_second_order(cfg: &Config) -> bool {
    crate::objectives::needs_second_order(cfg)
}

/// Batches [`standing_statistics`] runs: with batch norm's momentum 0.1, what is left of
/// the copied statistics is 0.9⁵⁰ ≈ 0.5 %.
pub const STATISTICS_BATCHES: usize = 50;

/// Re-estimate the batch-norm running statistics of a generator `g` built over a weight
/// average (`store`) for the average's own weights ("standing statistics"):
/// [`STATISTICS_BATCHES`] batches of `latent` (64 inputs drawn from a fixed stream)
/// through it in training mode. The statistics copied from the trained network belong to
/// its weights, not the average's. Nothing to do without batch norm.
pub fn standing_statistics(
    g: &dyn crate::models::Generator,
    store: &crate::nn::ParamStore,
    mut latent: impl FnMut(&mut Rng) -> Result<Tensor>,
) -> Result<()> {
    if !store.vars().keys().any(|n| n.ends_with("running_mean")) {
        return Ok(());
    }
    let mut rng = Rng::new(0, crate::rng::stream::EMA_STATISTICS);
    for _ in 0..STATISTICS_BATCHES {
        let z = latent(&mut rng)?;
        g.forward(&z, &mut crate::nn::Mode::Train(&mut rng))?;
    }
    Ok(())
}

/// The network sampling and evaluation use: the weight average `average` when `ema` asks
/// for it and the run keeps one, else the trained network `live`.
pub(crate) fn chosen<'a, T: ?Sized>(live: &'a T, average: Option<&'a T>, ema: bool) -> &'a T {
    match average {
        Some(a) if ema => a,
        _ => live,
    }
}

/// [`standing_statistics`] for a family's averaged generator `g_ema`, kept over the
/// weight average of `model`'s network `name`; nothing to do without one.
pub(crate) fn refresh_average(
    model: &Model,
    name: &str,
    g_ema: Option<&dyn crate::models::Generator>,
    latent: impl FnMut(&mut Rng) -> Result<Tensor>,
) -> Result<()> {
    let (Some(g), Some(e)) = (g_ema, &model.network(name).ema) else {
        return Ok(());
    };
    standing_statistics(g, &e.params, latent)
}

/// Images per generator call of [`generate`].
const BATCH: usize = 256;

/// `n` images from `family`, in batches of 256, noise from `rng`; `draw.classes` holds one
/// class per image in a conditional family.
pub fn generate(
    family: &dyn Family,
    n: usize,
    draw: &Draw,
    rng: &mut Rng,
    ema: bool,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let b = BATCH.min(n - start);
        let part = Draw {
            classes: draw.classes.map(|c| &c[start..start + b]),
            codes: draw.codes.map(|c| &c[start..start + b]),
            ..*draw
        };
        let z = family.latent(b, &part, rng)?;
        out.extend(family.render(&z, ema)?.flatten_all()?.to_vec1::<f32>()?);
        start += b;
    }
    Ok(out)
}
#[cfg(test)]
mod tests;
