//! The all-convolutional DCGAN (Radford et al. 2016 as in the PyTorch reference code;
//! report 002's "all convolutional net", report 001 §4.1's 64×64 networks: 4×4 kernels,
//! stride 2, padding 1).
//!
//! G: z (as a 1×1 map) → ConvT(k = base, stride 1) to a base × base map (base 4, or 7 at
//!    28×28) → BN → ReLU → [ConvT 4×4 s2 p1 → BN → ReLU] … → ConvT 4×4 s2 p1 → tanh, the
//!    channels halving as the maps double (8w → 4w → 2w → w at 64×64, 2w → w at 28×28);
//!    `model.extra_layers` 3×3 stride-1 layers at the last hidden map.
//! D: [Conv 4×4 s2 p1 → norm → LeakyReLU 0.2] … down to base × base (no norm on the first),
//!    `extra_layers` 3×3 layers after the first, then Conv(k = base) to one score.
//! No fully connected layer anywhere: both ends are convolutions.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{AttentionSpec, Attentions};
use super::conv_discriminator::{ConvDiscriminator, conv_body};
use super::{DOutput, Discriminator, Generator, ImageShape};
use crate::config::{Arch, Config};
use crate::nn::{
    BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d, Mode, batch_norm, conv_transpose2d, conv2d,
};

const K4S2P1: Conv2dConfig = Conv2dConfig {
    kernel: 4,
    stride: 2,
    padding: 1,
    output_padding: 0,
    bias: false,
};

const K3S1P1: Conv2dConfig = Conv2dConfig {
    kernel: 3,
    stride: 1,
    padding: 1,
    output_padding: 0,
    bias: false,
};

/// The hidden maps, coarse to fine: (channels, side), channels `w · 2^(n−1−j)` at map j.
pub fn maps(w: usize, size: usize) -> Vec<(usize, usize)> {
    let base = Arch::base_side(size);
    let n = (size / base).trailing_zeros() as usize;
    (0..n).map(|j| (w << (n - 1 - j), base << j)).collect()
}

pub struct AllConvGenerator {
    first: ConvTranspose2d,
    bn0: BatchNorm,
    ups: Vec<(ConvTranspose2d, BatchNorm)>,
    extras: Vec<(Conv2d, BatchNorm)>,
    last: ConvTranspose2d,
    attention: Attentions,
    maps: Vec<(usize, usize)>,
}

fn sn_t(c: ConvTranspose2d, sn: bool, vb: VarBuilder) -> Result<ConvTranspose2d> {
    if sn {
        c.spectrally_normalised(vb)
    } else {
        Ok(c)
    }
}

fn sn_c(c: Conv2d, sn: bool, vb: VarBuilder) -> Result<Conv2d> {
    if sn {
        c.spectrally_normalised(vb)
    } else {
        Ok(c)
    }
}

/// G for `cfg` taking `z_dim` inputs; weights `first`, `bn0`, `up{j}`, `bn{j}`, `extra{k}`,
/// `extra_bn{k}`, `last`.
pub fn generator(z_dim: usize, cfg: &Config, vb: VarBuilder) -> Result<AllConvGenerator> {
    let (m, shape) = (&cfg.model, ImageShape::of(cfg));
    let sn = m.g_spectral_norm;
    let maps = maps(m.g_width, shape.size);
    let (c0, base) = maps[0];
    let first = Conv2dConfig {
        kernel: base,
        stride: 1,
        padding: 0,
        output_padding: 0,
        bias: false,
    };
    let first = sn_t(
        conv_transpose2d(z_dim, c0, first, vb.pp("first"))?,
        sn,
        vb.pp("first"),
    )?;
    let bn0 = batch_norm(c0, Default::default(), vb.pp("bn0"))?;
    let mut ups = Vec::new();
    for j in 1..maps.len() {
        let name = format!("up{j}");
        let up = conv_transpose2d(maps[j - 1].0, maps[j].0, K4S2P1, vb.pp(&name))?;
        let up = sn_t(up, sn, vb.pp(&name))?;
        ups.push((
            up,
            batch_norm(maps[j].0, Default::default(), vb.pp(format!("bn{j}")))?,
        ));
    }
    let w_last = maps[maps.len() - 1].0;
    let mut extras = Vec::new();
    for k in 1..=m.extra_layers {
        let name = format!("extra{k}");
        let c = sn_c(
            conv2d(w_last, w_last, K3S1P1, vb.pp(&name))?,
            sn,
            vb.pp(&name),
        )?;
        extras.push((
            c,
            batch_norm(w_last, Default::default(), vb.pp(format!("extra_bn{k}")))?,
        ));
    }
    let last_cfg = Conv2dConfig {
        bias: true,
        ..K4S2P1
    };
    let last = conv_transpose2d(w_last, shape.channels, last_cfg, vb.pp("last"))?;
    let last = sn_t(last, sn, vb.pp("last"))?;
    Ok(AllConvGenerator {
        first,
        bn0,
        ups,
        extras,
        last,
        attention: Attentions::build(&AttentionSpec::of(cfg), &maps, sn, &vb)?,
        maps,
    })
}

impl AllConvGenerator {
    /// Hidden map `stage` (0 = base × base), before its own attention layer.
    fn stage_before_attention(&self, z: &Tensor, stage: usize, mode: &mut Mode) -> Result<Tensor> {
        let (b, zd) = z.dims2()?;
        let x = self.first.forward_t(&z.reshape((b, zd, 1, 1))?, mode)?;
        let mut h = self.bn0.forward_activated(&x, 0.0, mode)?;
        for (j, (up, bn)) in self.ups.iter().enumerate().take(stage) {
            h = self.attention.apply(h, self.maps[j].1, mode)?;
            h = bn.forward_activated(&up.forward_t(&h, mode)?, 0.0, mode)?;
        }
        Ok(h)
    }
}

impl Generator for AllConvGenerator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let mut h = self.forward_stage(z, self.maps.len() - 1, mode)?;
        for (c, bn) in &self.extras {
            h = bn.forward_activated(&c.forward_t(&h, mode)?, 0.0, mode)?;
        }
        crate::kernels::tanh(&self.last.forward_t(&h, mode)?)
    }

    fn stages(&self) -> Vec<(usize, usize)> {
        self.maps.clone()
    }

    fn forward_stage(&self, z: &Tensor, stage: usize, mode: &mut Mode) -> Result<Tensor> {
        if stage >= self.maps.len() {
            candle_core::bail!(
                "allconv has stages 0 to {}, not {stage}",
                self.maps.len() - 1
            )
        }
        let h = self.stage_before_attention(z, stage, mode)?;
        self.attention.apply(h, self.maps[stage].1, mode)
    }

    fn attention_map(&self, z: &Tensor, side: usize) -> Result<Option<(Tensor, Tensor)>> {
        let Some(layer) = self.attention.at(side) else {
            return Ok(None);
        };
        let stage = self
            .maps
            .iter()
            .position(|m| m.1 == side)
            .expect("a map side");
        let h = self.stage_before_attention(z, stage, &mut Mode::Eval)?;
        Ok(Some((
            self.forward(z, &mut Mode::Eval)?,
            layer.forward_with_map(&h, &Mode::Eval)?.1,
        )))
    }
}

/// D: the conv blocks down to base × base and a convolution covering that map.
pub struct AllConvDiscriminator {
    body: ConvDiscriminator,
    score: Conv2d,
}

/// D for `cfg`: weights `conv{i}`, its norms, `extra{k}`, `score`.
pub fn discriminator(cfg: &Config, vb: VarBuilder) -> Result<AllConvDiscriminator> {
    let (m, shape) = (&cfg.model, ImageShape::of(cfg));
    let sn = m.spectral_norm;
    let hidden: Vec<(usize, usize)> = maps(m.d_width, shape.size).into_iter().rev().collect();
    let mut chans = vec![shape.channels];
    chans.extend(hidden.iter().map(|(c, _)| *c));
    let body = conv_body(
        &chans,
        K4S2P1,
        m.d_norm(),
        sn,
        shape.size,
        &AttentionSpec::of(cfg),
        m.extra_layers,
        vb.clone(),
    )?;
    let (c_last, base) = hidden[hidden.len() - 1];
    let score_cfg = Conv2dConfig {
        kernel: base,
        stride: 1,
        padding: 0,
        output_padding: 0,
        bias: true,
    };
    let score = sn_c(
        conv2d(c_last, 1, score_cfg, vb.pp("score"))?,
        sn,
        vb.pp("score"),
    )?;
    Ok(AllConvDiscriminator { body, score })
}

impl AllConvDiscriminator {
    pub fn feature_dim(&self) -> usize {
        self.body.feature_dim()
    }
}

impl Discriminator for AllConvDiscriminator {
    fn forward(&self, x: &Tensor, _: Option<&Tensor>, mode: &mut Mode) -> Result<DOutput> {
        let blocks = self.body.blocks(x, mode)?;
        let last = blocks.last().expect("at least one block");
        let logits = self.score.forward_t(last, mode)?.flatten_all()?;
        Ok(DOutput {
            logits,
            features: last.flatten_from(1)?,
        })
    }

    fn hidden(&self, x: &Tensor, mode: &mut Mode) -> Result<Vec<Tensor>> {
        self.body.blocks(x, mode)
    }
}
