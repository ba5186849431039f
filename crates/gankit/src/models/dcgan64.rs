//! Report 000's DCGAN, for any power-of-two image size S ≥ 32 (64 in the report).
//!
//! G: z → FC(8w·(S/16)²) → BN → ReLU → 4 × [ConvT 5×5 stride 2: 8w→4w→2w→w→C],
//!    BN + ReLU after the first three, tanh after the last.
//! D: 4 × [Conv 5×5 stride 2: C→w→2w→4w→8w], BN after all but the first, LeakyReLU(0.2)
//!    after each, then FC → 1. With w = 64 these are the report's 512/256/128/64 tables.
//! Padding 2 (and output padding 1 for the transposed convs) halves / doubles each side
//! exactly, like TensorFlow's "SAME" padding the report's code used.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::conv_discriminator::{ConvDiscriminator, conv_discriminator};
use super::{Generator, ImageShape};
use crate::config::Norm;
use crate::nn::{
    BatchNorm, Conv2dConfig, ConvTranspose2d, Linear, Mode, batch_norm, conv_transpose2d,
    dcgan_init, linear,
};

const K5S2: Conv2dConfig = Conv2dConfig {
    kernel: 5,
    stride: 2,
    padding: 2,
    output_padding: 1,
    bias: true,
};
const K5S2_NO_BIAS: Conv2dConfig = Conv2dConfig {
    bias: false,
    ..K5S2
};

pub struct Dcgan64Generator {
    fc: Linear,
    bn0: BatchNorm,
    deconvs: Vec<ConvTranspose2d>,
    bns: Vec<BatchNorm>,
    width: usize,
    base: usize,
}

pub fn generator(
    z_dim: usize,
    w: usize,
    shape: ImageShape,
    vb: VarBuilder,
) -> Result<Dcgan64Generator> {
    let base = shape.size / 16;
    let chans = [8 * w, 4 * w, 2 * w, w, shape.channels];
    let mut deconvs = Vec::new();
    let mut bns = Vec::new();
    for i in 0..4 {
        let last = i == 3;
        let cfg = if last { K5S2 } else { K5S2_NO_BIAS };
        deconvs.push(conv_transpose2d(
            chans[i],
            chans[i + 1],
            cfg,
            vb.pp(format!("deconv{}", i + 1)),
        )?);
        if !last {
            bns.push(batch_norm(
                chans[i + 1],
                Default::default(),
                vb.pp(format!("bn{}", i + 1)),
            )?);
        }
    }
    Ok(Dcgan64Generator {
        fc: linear(z_dim, 8 * w * base * base, false, dcgan_init(), vb.pp("fc"))?,
        bn0: batch_norm(8 * w * base * base, Default::default(), vb.pp("bn0"))?,
        deconvs,
        bns,
        width: w,
        base,
    })
}

impl Generator for Dcgan64Generator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let h = self.forward_stage(z, self.bns.len(), mode)?;
        crate::kernels::tanh(&self.deconvs[self.bns.len()].forward(&h)?)
    }

    fn stages(&self) -> Vec<(usize, usize)> {
        (0..=self.bns.len())
            .map(|s| ((8 * self.width) >> s, self.base << s))
            .collect()
    }

    fn forward_stage(&self, z: &Tensor, stage: usize, mode: &mut Mode) -> Result<Tensor> {
        if stage > self.bns.len() {
            candle_core::bail!("dcgan64 has stages 0 to {}, not {stage}", self.bns.len())
        }
        let b = z.dim(0)?;
        let h = self
            .bn0
            .forward_activated(&self.fc.forward(z)?, 0.0, mode)?;
        let mut h = h.reshape((b, 8 * self.width, self.base, self.base))?;
        for (deconv, bn) in self.deconvs.iter().zip(&self.bns).take(stage) {
            h = bn.forward_activated(&deconv.forward(&h)?, 0.0, mode)?;
        }
        Ok(h)
    }
}

/// The discriminator: 5×5 stride-2 convs C → w → 2w → 4w → 8w, `norm` after all but the
/// first (batch norm in DCGAN, layer norm in report 000's WGAN-GP critic), LeakyReLU(0.2),
/// then FC → 1.
pub fn discriminator(
    w: usize,
    norm: Norm,
    spectral_norm: bool,
    shape: ImageShape,
    vb: VarBuilder,
) -> Result<ConvDiscriminator> {
    let chans = [shape.channels, w, 2 * w, 4 * w, 8 * w];
    conv_discriminator(&chans, K5S2, norm, spectral_norm, shape.size, vb)
}
