//! Progressive pretraining (report 001 §4.3, `[pretrain]`), run once before the GAN phase
//! of the GAN family.
//!
//! 1. Each training image i is paired with a fixed zᵢ ~ N(0, I). For every stage of the
//!    generator ([`Generator::stages`], e.g. 7×7 and 14×14 for dcgan28, 4×4 … 32×32 for
//!    dcgan64 at 64 px) and then for its full output, G up to that stage, followed by a 1×1
//!    convolution to image channels and tanh (a head used only here), learns G(zᵢ) ≈ imageᵢ
//!    average-pooled to the stage's side under the L1 loss, `g_epochs` epochs per stage with
//!    Adam (lr, β = 0.5, 0.999). Each stage adds one upsampling block to the previous one.
//! 2. The pretrained G draws one sample per image, which are stored; D learns to give real
//!    images 1 and those samples 0 under the squared error (LSGAN's form), `d_epochs` epochs.
//!
//! A grid of each stage's output goes to `RUN/pretrain/stage_K_SxS.png` and every epoch's
//! mean loss to `RUN/pretrain/losses.csv`.

use std::path::Path;

use candle_core::{Device, Module, Tensor};

use crate::config::{Config, PretrainLoss};
use crate::data::ImageSet;
use crate::family::gan::Nets;
use crate::nn::{Conv2d, Conv2dConfig, Mode, ParamStore, conv2d};
use crate::objectives::common::scalar;
use crate::optim::{self, Optimizer};
use crate::report::grid;
use crate::rng::{Rng, stream};
use crate::{Error, Result};

/// One epoch's mean loss of one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLoss {
    /// "g" (with the stage's side) or "d".
    pub phase: &'static str,
    pub side: usize,
    pub epoch: usize,
    pub loss: f64,
}

const HEAD: Conv2dConfig = Conv2dConfig {
    kernel: 1,
    stride: 1,
    padding: 0,
    output_padding: 0,
    bias: true,
};

/// The images, their paired noise and the order source of one pretraining.
struct Pairs<'a> {
    data: &'a ImageSet,
    /// Indices of the images used.
    index: Vec<usize>,
    /// z for each used image, (n, z_dim) row-major.
    z: Vec<f32>,
    z_dim: usize,
    rng: Rng,
}

impl Pairs<'_> {
    fn len(&self) -> usize {
        self.index.len()
    }

    /// Batches of positions (into `index`) for one epoch, shuffled; a last batch of one
    /// image is dropped (batch norm needs two).
    fn epoch(&mut self, batch: usize) -> Vec<Vec<usize>> {
        let order = self.rng.permutation(self.len());
        order
            .chunks(batch)
            .filter(|c| c.len() > 1)
            .map(|c| c.iter().map(|&i| i as usize).collect())
            .collect()
    }

    fn images(&self, positions: &[usize], device: &Device) -> Result<Tensor> {
        let d = self.data;
        let n = d.image_len();
        let mut px = vec![0f32; positions.len() * n];
        for (k, &p) in positions.iter().enumerate() {
            d.write_scaled(self.index[p], &mut px[k * n..(k + 1) * n])?;
        }
        let shape = (positions.len(), d.channels, d.size, d.size);
        Ok(Tensor::from_vec(px, shape, device)?)
    }

    fn noise(&self, positions: &[usize], device: &Device) -> Result<Tensor> {
        let mut z = Vec::with_capacity(positions.len() * self.z_dim);
        for &p in positions {
            z.extend_from_slice(&self.z[p * self.z_dim..(p + 1) * self.z_dim]);
        }
        Ok(Tensor::from_vec(z, (positions.len(), self.z_dim), device)?)
    }
}

/// Pretrain `nets` on `data` as `cfg.pretrain` says, writing grids and losses under
/// `dir/pretrain/`; `note` hears one line per epoch. Returns every epoch's loss.
pub fn run(
    cfg: &Config,
    nets: &mut Nets,
    data: &ImageSet,
    dir: &Path,
    note: &mut dyn FnMut(&str),
) -> Result<Vec<EpochLoss>> {
    let p = &cfg.pretrain;
    let seed = cfg.train.seed;
    let mut rng = Rng::new(seed, stream::PRETRAIN);
    let n = if p.images == 0 {
        data.len
    } else {
        p.images.min(data.len)
    };
    let mut index: Vec<usize> = rng
        .permutation(data.len)
        .iter()
        .map(|&i| i as usize)
        .collect();
    index.truncate(n);
    let z = rng.normal_vec(n * nets.z_dim, 0.0, 1.0);
    let mut pairs = Pairs {
        data,
        index,
        z,
        z_dim: nets.z_dim,
        rng,
    };
    let out = dir.join("pretrain");
    std::fs::create_dir_all(&out).map_err(|e| Error::Run(format!("{}: {e}", out.display())))?;
    let mut losses = Vec::new();
    if p.g_epochs > 0 {
        let loss_fn = StageLoss::of(cfg)?;
        let stages = nets.g.stages();
        let heads = ParamStore::new(Rng::new(seed, stream::PRETRAIN), &nets.device);
        for stage in 0..=stages.len() {
            let head = match stages.get(stage) {
                Some(&(c, _)) => Some(conv2d(
                    c,
                    data.channels,
                    HEAD,
                    heads.var_builder().pp(format!("head{stage}")),
                )?),
                None => None,
            };
            let side = stages.get(stage).map_or(data.size, |s| s.1);
            // One optimiser per stage, over G and this stage's head.
            let mut params = nets.g_params.trainable();
            let prefix = format!("head{stage}.");
            params.extend(
                heads
                    .trainable()
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(&prefix)),
            );
            let mut opt = adam(cfg, params)?;
            for epoch in 0..p.g_epochs {
                let loss = g_epoch(
                    cfg,
                    nets,
                    &mut pairs,
                    opt.as_mut(),
                    (stage, side),
                    head.as_ref(),
                    &loss_fn,
                )?;
                note(&format!(
                    "pretrain G stage {} ({side}×{side}), epoch {}: {} {loss:.4}",
                    stage + 1,
                    epoch + 1,
                    loss_fn.name()
                ));
                losses.push(EpochLoss {
                    phase: "g",
                    side,
                    epoch: epoch + 1,
                    loss,
                });
            }
            let grid_n = cfg.log.grid.min(n);
            let z = pairs.noise(&(0..grid_n).collect::<Vec<_>>(), &nets.device)?;
            let x = stage_output(nets, &z, stage, head.as_ref(), &mut Mode::Eval)?;
            let path = out.join(format!("stage_{}_{side}x{side}.png", stage + 1));
            grid::write_png(
                &path,
                &x.flatten_all()?.to_vec1::<f32>()?,
                grid_n,
                data.channels,
                side,
            )?;
        }
    }
    if p.d_epochs > 0 {
        let fakes = stored_fakes(nets, n, &mut pairs.rng)?;
        let mut opt = adam(cfg, nets.d_params.trainable())?;
        for epoch in 0..p.d_epochs {
            let loss = d_epoch(cfg, nets, &mut pairs, opt.as_mut(), &fakes)?;
            note(&format!("pretrain D, epoch {}: MSE {loss:.4}", epoch + 1));
            losses.push(EpochLoss {
                phase: "d",
                side: data.size,
                epoch: epoch + 1,
                loss,
            });
        }
    }
    write_losses(&out.join("losses.csv"), &losses)?;
    Ok(losses)
}

/// G's image at `stage`: the stage's activations through its head and tanh, or G's own
/// output after the last stage.
fn stage_output(
    nets: &Nets,
    z: &Tensor,
    stage: usize,
    head: Option<&Conv2d>,
    mode: &mut Mode,
) -> Result<Tensor> {
    Ok(match head {
        Some(h) => crate::kernels::tanh(&h.forward(&nets.g.forward_stage(z, stage, mode)?)?)?,
        None => nets.g.forward(z, mode)?,
    })
}

/// An Adam optimiser with the report's betas at `pretrain.lr` over `params`.
fn adam(cfg: &Config, params: Vec<(String, candle_core::Var)>) -> Result<Box<dyn Optimizer>> {
    let o = crate::config::OptimizerConfig {
        lr: cfg.pretrain.lr,
        beta1: 0.5,
        beta2: 0.999,
        ..Default::default()
    };
    optim::build(params, &o)
}

/// The loss between a stage's output and its target: L1, or the perceptual loss on the
/// reference evaluator's features (`pretrain.loss`).
enum StageLoss {
    L1,
    Perceptual(Box<crate::evaluator::Evaluator>),
}

impl StageLoss {
    fn of(cfg: &Config) -> Result<StageLoss> {
        Ok(match cfg.pretrain.loss {
            PretrainLoss::L1 => StageLoss::L1,
            PretrainLoss::Perceptual => {
                StageLoss::Perceptual(Box::new(crate::evaluator::Evaluator::reference()?))
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            StageLoss::L1 => "L1",
            StageLoss::Perceptual(_) => "perceptual",
        }
    }

    fn loss(&self, x: &Tensor, target: &Tensor) -> Result<Tensor> {
        Ok(match self {
            StageLoss::L1 => (x - target)?.abs()?.mean_all()?,
            StageLoss::Perceptual(ev) => {
                let side = ev.info.size;
                let up = |t: &Tensor| crate::nn::resample::upsample_to(t, side);
                let (fx, _) = ev.net.forward(&up(x)?, &mut Mode::Eval)?;
                let (ft, _) = ev.net.forward(&up(target)?, &mut Mode::Eval)?;
                (fx - ft.detach())?.sqr()?.mean_all()?
            }
        })
    }
}

/// One epoch of stage `stage`'s pretraining (images of `side` pixels); returns the mean
/// loss.
fn g_epoch(
    cfg: &Config,
    nets: &Nets,
    pairs: &mut Pairs,
    opt: &mut dyn Optimizer,
    (stage, side): (usize, usize),
    head: Option<&Conv2d>,
    loss_fn: &StageLoss,
) -> Result<f64> {
    let device = nets.device.clone();
    let pool = pairs.data.size / side;
    let mut total = 0.0;
    let batches = pairs.epoch(cfg.train.batch_size);
    for b in &batches {
        let target = pairs.images(b, &device)?;
        let target = if pool > 1 {
            target.avg_pool2d(pool)?
        } else {
            target
        };
        let z = pairs.noise(b, &device)?;
        let mut rng = Rng::new(0, 0); // batch norm in training mode draws nothing
        let x = stage_output(nets, &z, stage, head, &mut Mode::Train(&mut rng))?;
        let loss = loss_fn.loss(&x, &target)?;
        opt.step(&loss.backward()?)?;
        total += scalar(&loss)?;
    }
    Ok(total / batches.len().max(1) as f64)
}

/// One sample of the pretrained G per pretraining image, (n, C, H, W) flattened.
fn stored_fakes(nets: &Nets, n: usize, rng: &mut Rng) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let b = left.min(256);
        let z = nets.noise(rng, b)?;
        let x = nets.g.forward(&z, &mut Mode::Train(&mut Rng::new(0, 0)))?;
        out.extend(x.flatten_all()?.to_vec1::<f32>()?);
        left -= b;
    }
    Ok(out)
}

/// One epoch of D's MSE pretraining: D(real) → 1, D(stored fake) → 0; returns the mean
/// loss.
fn d_epoch(
    cfg: &Config,
    nets: &Nets,
    pairs: &mut Pairs,
    opt: &mut dyn Optimizer,
    fakes: &[f32],
) -> Result<f64> {
    let device = nets.device.clone();
    let d = pairs.data;
    let per = d.image_len();
    let mut total = 0.0;
    let batches = pairs.epoch(cfg.train.batch_size);
    for b in &batches {
        let real = pairs.images(b, &device)?;
        let mut px = Vec::with_capacity(b.len() * per);
        for &p in b {
            px.extend_from_slice(&fakes[p * per..(p + 1) * per]);
        }
        let fake = Tensor::from_vec(px, real.dims(), &device)?;
        let r = nets
            .d
            .forward(&real, None, &mut Mode::Train(&mut pairs.rng))?;
        let f = nets
            .d
            .forward(&fake, None, &mut Mode::Train(&mut pairs.rng))?;
        let loss = ((r.logits - 1.0)?.sqr()?.mean_all()? + f.logits.sqr()?.mean_all()?)?;
        opt.step(&loss.backward()?)?;
        total += scalar(&loss)?;
    }
    Ok(total / batches.len().max(1) as f64)
}

fn write_losses(path: &Path, losses: &[EpochLoss]) -> Result<()> {
    let mut text = String::from("phase,side,epoch,loss\n");
    for l in losses {
        text += &format!("{},{},{},{}\n", l.phase, l.side, l.epoch, l.loss);
    }
    crate::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests;
