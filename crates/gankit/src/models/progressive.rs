//! Progressive growing (Karras et al. 2018; report 001 §2.4): G and D start at a base × base
//! resolution (4, or 7 at 28×28) and gain one block per phase, each new block faded in
//! linearly over `progressive.fade_images` images, until the image side.
//!
//! Every block exists from the start (checkpoints have one shape), and which are active is a
//! pure function of the images shown, (iteration) × batch size ([`Schedule`]), so a run
//! resumed in the middle of a fade continues exactly. Tensors keep the full image side:
//! G's output at the current resolution is repeated (nearest neighbour) up to it, and D
//! average-pools its input down to the current resolution, so the trainer, grids and
//! evaluation see the same shapes in every phase.
//!
//! G: z → linear → base × base map → conv 3×3; each later block: ×2 → conv 3×3 → conv
//!    3×3; LeakyReLU 0.2 and pixel norm after every layer; a 1×1 "to RGB" per resolution.
//!    During a fade: (1 − α)·×2(toRGB_{k−1}(h_{k−1})) + α·toRGB_k(h_k). tanh at the end.
//! D: a 1×1 "from RGB" per resolution; each block: conv 3×3 → conv 3×3 → 2×2 average pool;
//!    during a fade the new block's output is blended with fromRGB_{k−1} of the pooled
//!    input; the last block: [minibatch standard deviation] → conv 3×3 → linear → linear to
//!    one score. Real images are faded the same way ([`Progress::fade_reals`]).
//! Channels: `w · 2^(n−k)` at level k (n levels above the base), at most 8w.
//! Options: the minibatch standard deviation feature, equalised learning rate (weights
//! drawn from N(0, 1) and scaled by He's constant √(2 / fan_in) at every use).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::{DOutput, Discriminator, Generator, ImageShape};
use crate::config::{Arch, Config, ProgressiveConfig};
use crate::kernels;
use crate::nn::resample::{avg_pool2x, downsample_to, upsample_to, upsample2x};
use crate::nn::{Mode, leaky_relu};

/// Where training is: the level being trained (0 = base) and the new block's weight α.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub level: usize,
    pub alpha: f64,
}

/// The phases of progressive growing, counted in images shown.
#[derive(Clone, Debug)]
pub struct Phases {
    /// Levels above the base (log₂ of image side / base).
    pub levels: usize,
    pub fade: u64,
    pub stable: u64,
}

impl Phases {
    pub fn of(cfg: &Config) -> Phases {
        let s = cfg.data.image_size;
        Phases {
            levels: (s / Arch::base_side(s)).trailing_zeros() as usize,
            fade: cfg.progressive.fade_images,
            stable: cfg.progressive.stable_images,
        }
    }

    /// The schedule after `images` images: the base phase lasts `stable` images, each later
    /// phase fades its block in over `fade` images, then trains it `stable` more.
    pub fn at(&self, images: u64) -> Schedule {
        if images < self.stable {
            return Schedule {
                level: 0,
                alpha: 1.0,
            };
        }
        let mut t = images - self.stable;
        for level in 1..=self.levels {
            if t < self.fade {
                return Schedule {
                    level,
                    alpha: t as f64 / self.fade as f64,
                };
            }
            t -= self.fade;
            if t < self.stable || level == self.levels {
                return Schedule { level, alpha: 1.0 };
            }
            t -= self.stable;
        }
        Schedule {
            level: self.levels,
            alpha: 1.0,
        }
    }
}

/// The progress G and D of one run share: the iteration about to run, set by the family.
#[derive(Clone, Debug)]
pub struct Progress {
    iteration: Arc<AtomicU64>,
    batch: u64,
    phases: Phases,
    base: usize,
}

impl Progress {
    pub fn new(cfg: &Config) -> Progress {
        Progress {
            iteration: Arc::new(AtomicU64::new(1)),
            batch: cfg.train.batch_size as u64,
            phases: Phases::of(cfg),
            base: Arch::base_side(cfg.data.image_size),
        }
    }

    /// Set the iteration (1-based) whose images are being shown.
    pub fn set_iteration(&self, iteration: u64) {
        self.iteration.store(iteration.max(1), Ordering::Relaxed);
    }

    pub fn schedule(&self) -> Schedule {
        let it = self.iteration.load(Ordering::Relaxed);
        self.phases.at((it - 1) * self.batch)
    }

    fn side(&self, level: usize) -> usize {
        self.base << level
    }

    /// Real images (n, C, S, S) as D should see them now: at the current resolution, and
    /// during a fade the blend (1 − α)·×2(pool(x)) + α·x of Karras et al. §3, repeated back
    /// up to the full side.
    pub fn fade_reals(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.schedule();
        let full = x.dim(2)?;
        let cur = downsample_to(x, self.side(s.level))?;
        let cur = if s.alpha < 1.0 {
            let low = upsample2x(&avg_pool2x(&cur)?)?;
            ((low * (1.0 - s.alpha))? + (cur * s.alpha)?)?
        } else {
            cur
        };
        upsample_to(&cur, full)
    }
}

/// A layer with an optional runtime weight scale (equalised learning rate).
struct Layer {
    w: Tensor,
    b: Tensor,
    scale: f64,
    /// Padding of a convolution; `None` for a linear layer.
    pad: Option<usize>,
}

impl Layer {
    fn new(vb: &VarBuilder, shape: &[usize], eq: bool, pad: Option<usize>) -> Result<Layer> {
        let fan_in: usize = shape[1..].iter().product();
        let he = (2.0 / fan_in as f64).sqrt();
        let (stdev, scale) = if eq { (1.0, he) } else { (he, 1.0) };
        Ok(Layer {
            w: vb.get_with_hints(shape, "weight", Init::Randn { mean: 0.0, stdev })?,
            b: vb.get_with_hints(shape[0], "bias", Init::Const(0.0))?,
            scale,
            pad,
        })
    }

    fn conv(c_in: usize, c_out: usize, k: usize, eq: bool, vb: VarBuilder) -> Result<Layer> {
        Layer::new(&vb, &[c_out, c_in, k, k], eq, Some(k / 2))
    }

    fn linear(i: usize, o: usize, eq: bool, vb: VarBuilder) -> Result<Layer> {
        Layer::new(&vb, &[o, i], eq, None)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = if self.scale == 1.0 {
            self.w.clone()
        } else {
            (&self.w * self.scale)?
        };
        match self.pad {
            Some(p) => kernels::conv2d_bias(x, &w, &self.b, 1, p),
            None => kernels::matmul(x, &w, false, true)?.broadcast_add(&self.b),
        }
    }
}

/// Pixel norm (Karras et al. §4.2): each pixel's feature vector divided by its RMS.
fn pixel_norm(x: &Tensor) -> Result<Tensor> {
    let rms = (x.sqr()?.mean_keepdim(1)? + 1e-8)?.sqrt()?;
    x.broadcast_div(&rms)
}

fn act(x: &Tensor) -> Result<Tensor> {
    leaky_relu(x, 0.2)
}

/// Channels at each level, base first: w · 2^(n − k), at most 8w.
fn channels(w: usize, levels: usize) -> Vec<usize> {
    (0..=levels)
        .map(|k| (w << (levels - k)).min(8 * w))
        .collect()
}

pub struct ProgressiveGenerator {
    fc: Layer,
    conv0: Layer,
    /// Per level above the base: two 3×3 convolutions.
    blocks: Vec<(Layer, Layer)>,
    to_rgb: Vec<Layer>,
    progress: Progress,
    c0: usize,
    base: usize,
    size: usize,
}

/// G for `cfg` taking `z_dim` inputs, sharing `progress`: weights `fc`, `conv0`,
/// `block{k}.conv{1,2}`, `to_rgb{k}`.
pub fn generator(
    z_dim: usize,
    cfg: &Config,
    progress: Progress,
    vb: VarBuilder,
) -> Result<ProgressiveGenerator> {
    let shape = ImageShape::of(cfg);
    let p: &ProgressiveConfig = &cfg.progressive;
    let eq = p.equalized_lr;
    let levels = progress.phases.levels;
    let ch = channels(cfg.model.g_width, levels);
    let base = progress.base;
    let mut blocks = Vec::new();
    for k in 1..=levels {
        let vbk = vb.pp(format!("block{k}"));
        blocks.push((
            Layer::conv(ch[k - 1], ch[k], 3, eq, vbk.pp("conv1"))?,
            Layer::conv(ch[k], ch[k], 3, eq, vbk.pp("conv2"))?,
        ));
    }
    let to_rgb = (0..=levels)
        .map(|k| Layer::conv(ch[k], shape.channels, 1, eq, vb.pp(format!("to_rgb{k}"))))
        .collect::<Result<_>>()?;
    Ok(ProgressiveGenerator {
        fc: Layer::linear(z_dim, ch[0] * base * base, eq, vb.pp("fc"))?,
        conv0: Layer::conv(ch[0], ch[0], 3, eq, vb.pp("conv0"))?,
        blocks,
        to_rgb,
        progress,
        c0: ch[0],
        base,
        size: shape.size,
    })
}

impl Generator for ProgressiveGenerator {
    fn forward(&self, z: &Tensor, _mode: &mut Mode) -> Result<Tensor> {
        let s = self.progress.schedule();
        let b = z.dim(0)?;
        let h = act(&self
            .fc
            .forward(&pixel_norm(&z.reshape((b, z.dim(1)?, 1, 1))?)?.flatten_from(1)?)?)?;
        let h = pixel_norm(&h.reshape((b, self.c0, self.base, self.base))?)?;
        let mut h = pixel_norm(&act(&self.conv0.forward(&h)?)?)?;
        let mut prev = None;
        for (k, (c1, c2)) in self.blocks.iter().enumerate().take(s.level) {
            if k + 1 == s.level {
                prev = Some(h.clone());
            }
            let u = upsample2x(&h)?;
            let u = pixel_norm(&act(&c1.forward(&u)?)?)?;
            h = pixel_norm(&act(&c2.forward(&u)?)?)?;
        }
        let mut img = self.to_rgb[s.level].forward(&h)?;
        if let (Some(p), true) = (prev, s.alpha < 1.0) {
            let low = upsample2x(&self.to_rgb[s.level - 1].forward(&p)?)?;
            img = ((low * (1.0 - s.alpha))? + (img * s.alpha)?)?;
        }
        kernels::tanh(&upsample_to(&img, self.size)?)
    }
}

pub struct ProgressiveDiscriminator {
    from_rgb: Vec<Layer>,
    /// Per level above the base: two 3×3 convolutions then a 2×2 average pool.
    blocks: Vec<(Layer, Layer)>,
    conv0: Layer,
    fc1: Layer,
    fc2: Layer,
    progress: Progress,
    minibatch_stddev: bool,
}

/// D for `cfg`, sharing `progress`: weights `from_rgb{k}`, `block{k}.conv{1,2}`, `conv0`,
/// `fc1`, `fc2`.
pub fn discriminator(
    cfg: &Config,
    progress: Progress,
    vb: VarBuilder,
) -> Result<ProgressiveDiscriminator> {
    let shape = ImageShape::of(cfg);
    let p = &cfg.progressive;
    let eq = p.equalized_lr;
    let levels = progress.phases.levels;
    let ch = channels(cfg.model.d_width, levels);
    let from_rgb = (0..=levels)
        .map(|k| Layer::conv(shape.channels, ch[k], 1, eq, vb.pp(format!("from_rgb{k}"))))
        .collect::<Result<_>>()?;
    let mut blocks = Vec::new();
    for k in 1..=levels {
        let vbk = vb.pp(format!("block{k}"));
        blocks.push((
            Layer::conv(ch[k], ch[k], 3, eq, vbk.pp("conv1"))?,
            Layer::conv(ch[k], ch[k - 1], 3, eq, vbk.pp("conv2"))?,
        ));
    }
    let extra = usize::from(p.minibatch_stddev);
    let base = progress.base;
    Ok(ProgressiveDiscriminator {
        from_rgb,
        blocks,
        conv0: Layer::conv(ch[0] + extra, ch[0], 3, eq, vb.pp("conv0"))?,
        fc1: Layer::linear(ch[0] * base * base, ch[0], eq, vb.pp("fc1"))?,
        fc2: Layer::linear(ch[0], 1, eq, vb.pp("fc2"))?,
        progress,
        minibatch_stddev: p.minibatch_stddev,
    })
}

impl ProgressiveDiscriminator {
    pub fn feature_dim(&self) -> usize {
        self.fc2.w.dims()[1]
    }
}

/// The minibatch standard deviation (Karras et al. §3): the mean over features and
/// positions of each feature's standard deviation over the batch, appended as one more
/// constant channel.
fn with_stddev(h: &Tensor) -> Result<Tensor> {
    let (b, _, hh, ww) = h.dims4()?;
    let centred = h.broadcast_sub(&h.mean_keepdim(0)?)?;
    let std = (centred.sqr()?.mean_keepdim(0)? + 1e-8)?.sqrt()?;
    let s = std.mean_all()?;
    let map = s.broadcast_as((b, 1, hh, ww))?;
    Tensor::cat(&[h, &map], 1)
}

impl Discriminator for ProgressiveDiscriminator {
    fn forward(&self, x: &Tensor, _: Option<&Tensor>, _mode: &mut Mode) -> Result<DOutput> {
        let s = self.progress.schedule();
        let x = downsample_to(x, self.progress.side(s.level))?;
        let mut h = act(&self.from_rgb[s.level].forward(&x)?)?;
        for k in (1..=s.level).rev() {
            let (c1, c2) = &self.blocks[k - 1];
            h = avg_pool2x(&act(&c2.forward(&act(&c1.forward(&h)?)?)?)?)?;
            if k == s.level && s.alpha < 1.0 {
                let low = act(&self.from_rgb[k - 1].forward(&avg_pool2x(&x)?)?)?;
                h = ((low * (1.0 - s.alpha))? + (h * s.alpha)?)?;
            }
        }
        if self.minibatch_stddev {
            h = with_stddev(&h)?;
        }
        let h = act(&self.conv0.forward(&h)?)?;
        let features = act(&self.fc1.forward(&h.flatten_from(1)?)?)?;
        let logits = self.fc2.forward(&features)?.squeeze(D::Minus1)?;
        Ok(DOutput { logits, features })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases() -> Phases {
        Phases {
            levels: 2,
            fade: 100,
            stable: 50,
        }
    }

    fn config(sets: &[&str]) -> Config {
        let mut all = vec![
            "model.arch=progressive".to_string(),
            "model.g_width=4".into(),
            "model.d_width=4".into(),
            "train.batch_size=4".into(),
            "progressive.fade_images=8".into(),
            "progressive.stable_images=8".into(),
        ];
        all.extend(sets.iter().map(|s| s.to_string()));
        Config::from_toml_str("", "t", &all).unwrap()
    }

    /// G's image and D's score just before a block is faded in (the previous level, α = 1)
    /// and as the fade starts (the new level, α = 0) are the same: the fade is continuous.
    #[test]
    fn the_fade_in_is_continuous_at_phase_boundaries_and_shapes_stay_full_size() {
        for size in [28, 16] {
            let cfg = config(&[&format!("data.image_size={size}")]);
            let store = |s| {
                crate::nn::ParamStore::new(crate::rng::Rng::new(0, s), &candle_core::Device::Cpu)
            };
            let shared = super::super::Shared::of(&cfg);
            let (g, d) = super::super::build_shared(&cfg, &shared, &store(1), &store(2)).unwrap();
            let p = shared.progress.clone().unwrap();
            let z = Tensor::randn(0f32, 1.0, (4, 100), &candle_core::Device::Cpu).unwrap();
            let x =
                Tensor::randn(0f32, 1.0, (4, 1, size, size), &candle_core::Device::Cpu).unwrap();
            let levels = p.phases.levels;
            // Iteration i shows images (i − 1)·4; the boundary of level k's fade:
            for k in 1..=levels {
                let start = 8 + (k as u64 - 1) * 16; // base stable, then fade + stable each
                let before = start / 4; // iteration whose images end just before it
                let at = start / 4 + 1;
                p.set_iteration(before);
                assert_eq!(p.schedule().level, k - 1);
                let (g0, d0) = (
                    g.forward(&z, &mut Mode::Eval).unwrap(),
                    d.forward(&x, None, &mut Mode::Eval).unwrap().logits,
                );
                assert_eq!(g0.dims(), &[4, 1, size, size]);
                p.set_iteration(at);
                assert_eq!((p.schedule().level, p.schedule().alpha), (k, 0.0));
                let (g1, d1) = (
                    g.forward(&z, &mut Mode::Eval).unwrap(),
                    d.forward(&x, None, &mut Mode::Eval).unwrap().logits,
                );
                let diff = |a: &Tensor, b: &Tensor| {
                    (a - b)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap()
                };
                assert!(
                    diff(&g0, &g1) < 1e-6,
                    "{size} px, level {k}: G jumps {}",
                    diff(&g0, &g1)
                );
                assert!(
                    diff(&d0, &d1) < 1e-5,
                    "{size} px, level {k}: D jumps {}",
                    diff(&d0, &d1)
                );
                // Half way through the fade the image differs from both ends.
                p.set_iteration(at + 1);
                assert!(p.schedule().alpha > 0.0 && p.schedule().alpha < 1.0);
            }
            // A real image at the base level is piecewise constant over base-sized cells.
            p.set_iteration(1);
            let r = p.fade_reals(&x).unwrap();
            let cell = size / Arch::base_side(size);
            let v = r.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(v[0], v[cell - 1]);
        }
    }

    #[test]
    fn the_schedule_steps_through_base_fade_stable_phases() {
        let p = phases();
        let at = |i| {
            let s = p.at(i);
            (s.level, s.alpha)
        };
        assert_eq!(at(0), (0, 1.0));
        assert_eq!(at(49), (0, 1.0));
        assert_eq!(at(50), (1, 0.0), "the fade starts at the boundary");
        assert_eq!(at(100), (1, 0.5));
        assert_eq!(at(150), (1, 1.0));
        assert_eq!(at(199), (1, 1.0));
        assert_eq!(at(200), (2, 0.0));
        assert_eq!(at(275), (2, 0.75));
        assert_eq!(at(300), (2, 1.0));
        assert_eq!(at(10_000), (2, 1.0), "the last level stays");
    }
}
