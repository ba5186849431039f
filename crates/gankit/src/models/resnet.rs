//! Residual networks as in SN-GAN (Miyato et al. 2018, Appendix B; BigGAN's are the same
//! shape, larger), named in reports 002 and 003 §4.
//!
//! G: z → linear to a base × base map (base 4, or 7 at 28×28) → up-blocks, each doubling
//!    the side, to the image side → BN → ReLU → conv 3×3 → tanh. An up-block: BN → ReLU →
//!    ×2 (nearest) → conv 3×3 → BN → ReLU → conv 3×3, plus the shortcut ×2 → conv 1×1.
//! D: down-blocks halving the side to base × base (the first: conv 3×3 → ReLU → conv 3×3 →
//!    2×2 average pool, shortcut pool → conv 1×1; the others: ReLU → conv 3×3 → ReLU →
//!    conv 3×3 → pool, shortcut conv 1×1 → pool) → ReLU → sum over positions → linear →
//!    one score. No normalisation in D (spectral norm with `model.spectral_norm`).
//! Channels double towards the coarse maps, as in the DCGAN networks here.

use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

use super::{DOutput, Discriminator, Generator, ImageShape};
use crate::config::{Arch, Config};
use crate::nn::resample::{avg_pool2x, upsample2x};
use crate::nn::{
    BatchNorm, Conv2d, Conv2dConfig, Linear, Mode, batch_norm, conv2d, dcgan_init, linear,
};

const K3: Conv2dConfig = Conv2dConfig {
    kernel: 3,
    stride: 1,
    padding: 1,
    output_padding: 0,
    bias: true,
};
const K1: Conv2dConfig = Conv2dConfig {
    kernel: 1,
    stride: 1,
    padding: 0,
    output_padding: 0,
    bias: true,
};

fn conv(c_in: usize, c_out: usize, cfg: Conv2dConfig, sn: bool, vb: VarBuilder) -> Result<Conv2d> {
    let c = conv2d(c_in, c_out, cfg, vb.clone())?;
    if sn {
        c.spectrally_normalised(vb)
    } else {
        Ok(c)
    }
}

/// Channels of the maps, coarse (base) to fine (the image side): `w · 2^(n−j)` at map j,
/// n = log₂(side / base).
fn channels(w: usize, size: usize) -> Vec<usize> {
    let n = (size / Arch::base_side(size)).trailing_zeros() as usize;
    (0..=n).map(|j| w << (n - j)).collect()
}

struct UpBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Conv2d,
}

impl UpBlock {
    fn new(c_in: usize, c_out: usize, sn: bool, vb: VarBuilder) -> Result<UpBlock> {
        Ok(UpBlock {
            bn1: batch_norm(c_in, Default::default(), vb.pp("bn1"))?,
            conv1: conv(c_in, c_out, K3, sn, vb.pp("conv1"))?,
            bn2: batch_norm(c_out, Default::default(), vb.pp("bn2"))?,
            conv2: conv(c_out, c_out, K3, sn, vb.pp("conv2"))?,
            shortcut: conv(c_in, c_out, K1, sn, vb.pp("shortcut"))?,
        })
    }

    fn forward(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        let h = upsample2x(&self.bn1.forward_activated(x, 0.0, mode)?)?;
        let h = self
            .bn2
            .forward_activated(&self.conv1.forward_t(&h, mode)?, 0.0, mode)?;
        let h = self.conv2.forward_t(&h, mode)?;
        h + self.shortcut.forward_t(&upsample2x(x)?, mode)?
    }
}

pub struct ResnetGenerator {
    fc: Linear,
    blocks: Vec<UpBlock>,
    bn: BatchNorm,
    out: Conv2d,
    base: usize,
    c0: usize,
}

/// G for `cfg` taking `z_dim` inputs: weights `fc`, `block{j}.*`, `bn`, `out`.
pub fn generator(z_dim: usize, cfg: &Config, vb: VarBuilder) -> Result<ResnetGenerator> {
    let (m, shape) = (&cfg.model, ImageShape::of(cfg));
    let sn = m.g_spectral_norm;
    let ch = channels(m.g_width, shape.size);
    let base = Arch::base_side(shape.size);
    let fc = linear(z_dim, ch[0] * base * base, true, dcgan_init(), vb.pp("fc"))?;
    let fc = if sn {
        fc.spectrally_normalised(vb.pp("fc"))?
    } else {
        fc
    };
    let blocks = (1..ch.len())
        .map(|j| UpBlock::new(ch[j - 1], ch[j], sn, vb.pp(format!("block{j}"))))
        .collect::<Result<_>>()?;
    let last = ch[ch.len() - 1];
    Ok(ResnetGenerator {
        fc,
        blocks,
        bn: batch_norm(last, Default::default(), vb.pp("bn"))?,
        out: conv(last, shape.channels, K3, sn, vb.pp("out"))?,
        base,
        c0: ch[0],
    })
}

impl Generator for ResnetGenerator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let b = z.dim(0)?;
        let mut h = self
            .fc
            .forward_t(z, mode)?
            .reshape((b, self.c0, self.base, self.base))?;
        for block in &self.blocks {
            h = block.forward(&h, mode)?;
        }
        let h = self.bn.forward_activated(&h, 0.0, mode)?;
        crate::kernels::tanh(&self.out.forward_t(&h, mode)?)
    }
}

struct DownBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    shortcut: Conv2d,
    /// The first block takes the image itself: no activation before its first convolution,
    /// and its shortcut pools before the 1×1 convolution.
    first: bool,
}

impl DownBlock {
    fn forward(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        let h = if self.first { x.clone() } else { x.relu()? };
        let h = self.conv1.forward_t(&h, mode)?.relu()?;
        let h = avg_pool2x(&self.conv2.forward_t(&h, mode)?)?;
        let s = if self.first {
            self.shortcut.forward_t(&avg_pool2x(x)?, mode)?
        } else {
            avg_pool2x(&self.shortcut.forward_t(x, mode)?)?
        };
        h + s
    }
}

pub struct ResnetDiscriminator {
    blocks: Vec<DownBlock>,
    fc: Linear,
}

/// D for `cfg`: weights `block{j}.*`, `fc`.
pub fn discriminator(cfg: &Config, vb: VarBuilder) -> Result<ResnetDiscriminator> {
    let (m, shape) = (&cfg.model, ImageShape::of(cfg));
    let sn = m.spectral_norm;
    let mut ch: Vec<usize> = channels(m.d_width, shape.size);
    ch.reverse(); // fine → coarse
    let mut blocks = Vec::new();
    for j in 1..ch.len() {
        let c_in = if j == 1 { shape.channels } else { ch[j - 1] };
        let vb = vb.pp(format!("block{j}"));
        blocks.push(DownBlock {
            conv1: conv(c_in, ch[j], K3, sn, vb.pp("conv1"))?,
            conv2: conv(ch[j], ch[j], K3, sn, vb.pp("conv2"))?,
            shortcut: conv(c_in, ch[j], K1, sn, vb.pp("shortcut"))?,
            first: j == 1,
        });
    }
    let last = ch[ch.len() - 1];
    let fc = linear(last, 1, true, dcgan_init(), vb.pp("fc"))?;
    let fc = if sn {
        fc.spectrally_normalised(vb.pp("fc"))?
    } else {
        fc
    };
    Ok(ResnetDiscriminator { blocks, fc })
}

impl ResnetDiscriminator {
    pub fn feature_dim(&self) -> usize {
        self.fc.weight().dims()[1]
    }
}

impl Discriminator for ResnetDiscriminator {
    fn forward(&self, x: &Tensor, _: Option<&Tensor>, mode: &mut Mode) -> Result<DOutput> {
        let blocks = self.hidden(x, mode)?;
        let last = blocks.last().expect("at least one block");
        // ReLU, then the sum over positions.
        let features = last.relu()?.sum(D::Minus1)?.sum(D::Minus1)?;
        let logits = self.fc.forward_t(&features, mode)?.squeeze(1)?;
        Ok(DOutput { logits, features })
    }

    fn hidden(&self, x: &Tensor, mode: &mut Mode) -> Result<Vec<Tensor>> {
        let mut h = x.clone();
        let mut out = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            h = b.forward(&h, mode)?;
            out.push(h.clone());
        }
        Ok(out)
    }
}
