//! The 28×28 DCGAN (MNIST-sized images, 4×4 kernels).
//!
//! G: z → Linear(2w·7·7) → BN → ReLU → ConvT(2w→w, k4 s2 p1) → BN → ReLU → ConvT(w→C) → tanh
//! D: Conv(C→w, k4 s2 p1) → LReLU(0.2) → Conv(w→2w) → BN → LReLU(0.2) → Linear(2w·7·7 → 1)
//! with w = 64 by default, as in the foundation issue.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{AttentionSpec, Attentions};
use super::{Generator, ImageShape};
use crate::config::Config;
use crate::nn::{
    BatchNorm, Conv2dConfig, ConvTranspose2d, Linear, Mode, batch_norm, conv_transpose2d,
    dcgan_init, linear,
};

const K4S2P1: Conv2dConfig = Conv2dConfig {
    kernel: 4,
    stride: 2,
    padding: 1,
    output_padding: 0,
    bias: true,
};
const K4S2P1_NO_BIAS: Conv2dConfig = Conv2dConfig {
    bias: false,
    ..K4S2P1
};

pub struct Dcgan28Generator {
    fc: Linear,
    bn0: BatchNorm,
    deconv1: ConvTranspose2d,
    bn1: BatchNorm,
    deconv2: ConvTranspose2d,
    attention: Attentions,
    width: usize,
}

/// G for `cfg` taking `z_dim` inputs; its layers spectrally normalised with
/// `model.g_spectral_norm`, self-attention after the 7×7 and / or 14×14 maps with
/// `model.attention`.
pub fn generator(z_dim: usize, cfg: &Config, vb: VarBuilder) -> Result<Dcgan28Generator> {
    let (w, shape, sn) = (
        cfg.model.g_width,
        ImageShape::of(cfg),
        cfg.model.g_spectral_norm,
    );
    let fc = linear(z_dim, 2 * w * 49, false, dcgan_init(), vb.pp("fc"))?;
    let bn0 = batch_norm(2 * w * 49, Default::default(), vb.pp("bn0"))?;
    let deconv1 = conv_transpose2d(2 * w, w, K4S2P1_NO_BIAS, vb.pp("deconv1"))?;
    let bn1 = batch_norm(w, Default::default(), vb.pp("bn1"))?;
    let deconv2 = conv_transpose2d(w, shape.channels, K4S2P1, vb.pp("deconv2"))?;
    let (fc, deconv1, deconv2) = if sn {
        (
            fc.spectrally_normalised(vb.pp("fc"))?,
            deconv1.spectrally_normalised(vb.pp("deconv1"))?,
            deconv2.spectrally_normalised(vb.pp("deconv2"))?,
        )
    } else {
        (fc, deconv1, deconv2)
    };
    Ok(Dcgan28Generator {
        fc,
        bn0,
        deconv1,
        bn1,
        deconv2,
        attention: Attentions::build(&AttentionSpec::of(cfg), &[(2 * w, 7), (w, 14)], sn, &vb)?,
        width: w,
    })
}

impl Generator for Dcgan28Generator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let h = self.forward_stage(z, 1, mode)?;
        crate::kernels::tanh(&self.deconv2.forward_t(&h, mode)?)
    }

    fn attention_map(&self, z: &Tensor, side: usize) -> Result<Option<(Tensor, Tensor)>> {
        let Some(layer) = self.attention.at(side) else {
            return Ok(None);
        };
        let stage = if side == 7 { 0 } else { 1 };
        let h = self.forward_stage_before_attention(z, stage, &mut Mode::Eval)?;
        Ok(Some((
            self.forward(z, &mut Mode::Eval)?,
            layer.forward_with_map(&h, &Mode::Eval)?.1,
        )))
    }

    fn stages(&self) -> Vec<(usize, usize)> {
        vec![(2 * self.width, 7), (self.width, 14)]
    }

    fn forward_stage(&self, z: &Tensor, stage: usize, mode: &mut Mode) -> Result<Tensor> {
        let h = self.forward_stage_before_attention(z, stage, mode)?;
        self.attention
            .apply(h, if stage == 0 { 7 } else { 14 }, mode)
    }
}

impl Dcgan28Generator {
    /// The activations of `stage` (0: 7×7, 1: 14×14), before that stage's own attention
    /// layer (the earlier stage's is applied).
    fn forward_stage_before_attention(
        &self,
        z: &Tensor,
        stage: usize,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let b = z.dim(0)?;
        let h = self
            .bn0
            .forward_activated(&self.fc.forward_t(z, mode)?, 0.0, mode)?;
        let h = h.reshape((b, 2 * self.width, 7, 7))?;
        match stage {
            0 => Ok(h),
            1 => {
                let h = self.attention.apply(h, 7, mode)?;
                self.bn1
                    .forward_activated(&self.deconv1.forward_t(&h, mode)?, 0.0, mode)
            }
            s => candle_core::bail!("dcgan28 has stages 0 and 1, not {s}"),
        }
    }
}

/// The discriminator: Conv(C→w) → LReLU → Conv(w→2w) → norm → LReLU → Linear(2w·7·7 → 1);
/// `norm` is batch norm in DCGAN, layer norm or none for critics with a gradient penalty.
///
/// These are the channels and kernel of its conv blocks (also an encoder's and a joint
/// discriminator's image body), built by `conv_discriminator`.
pub fn d_layout(w: usize, shape: ImageShape) -> (Vec<usize>, Conv2dConfig) {
    (vec![shape.channels, w, 2 * w], K4S2P1)
}
