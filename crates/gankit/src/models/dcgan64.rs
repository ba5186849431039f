//! Report 000's DCGAN, for any power-of-two image size S ≥ 32 (64 in the report).
//!
//! G: z → FC(8w·(S/16)²) → BN → ReLU → 4 × [ConvT 5×5 stride 2: 8w→4w→2w→w→C],
//!    BN + ReLU after the first three, tanh after the last.
//! D: 4 × [Conv 5×5 stride 2: C→w→2w→4w→8w], BN after all but the first, LeakyReLU(0.2)
//!    after each, then FC → 1. With w = 64 these are the report's 512/256/128/64 tables.
//! Padding 2 (and output padding 1 for the transposed convs) halves / doubles each side
//! exactly, like TensorFlow's "SAME" padding the report's code used.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{AttentionSpec, Attentions};
use super::{Generator, ImageShape};
use crate::config::Config;
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
    attention: Attentions,
    width: usize,
    base: usize,
}

/// G for `cfg` taking `z_dim` inputs; its layers spectrally normalised with
/// `model.g_spectral_norm`, self-attention after the hidden maps `model.attention` names.
pub fn generator(z_dim: usize, cfg: &Config, vb: VarBuilder) -> Result<Dcgan64Generator> {
    let (w, shape, sn) = (
        cfg.model.g_width,
        ImageShape::of(cfg),
        cfg.model.g_spectral_norm,
    );
    let base = shape.size / 16;
    let chans = [8 * w, 4 * w, 2 * w, w, shape.channels];
    let mut deconvs = Vec::new();
    let mut bns = Vec::new();
    for i in 0..4 {
        let last = i == 3;
        let cfg = if last { K5S2 } else { K5S2_NO_BIAS };
        let name = format!("deconv{}", i + 1);
        let deconv = conv_transpose2d(chans[i], chans[i + 1], cfg, vb.pp(&name))?;
        deconvs.push(if sn {
            deconv.spectrally_normalised(vb.pp(&name))?
        } else {
            deconv
        });
        if !last {
            bns.push(batch_norm(
                chans[i + 1],
                Default::default(),
                vb.pp(format!("bn{}", i + 1)),
            )?);
        }
    }
    let fc = linear(z_dim, 8 * w * base * base, false, dcgan_init(), vb.pp("fc"))?;
    let fc = if sn {
        fc.spectrally_normalised(vb.pp("fc"))?
    } else {
        fc
    };
    let maps: Vec<(usize, usize)> = (0..4).map(|s| (chans[s], base << s)).collect();
    Ok(Dcgan64Generator {
        fc,
        bn0: batch_norm(8 * w * base * base, Default::default(), vb.pp("bn0"))?,
        attention: Attentions::build(&AttentionSpec::of(cfg), &maps, sn, &vb)?,
        deconvs,
        bns,
        width: w,
        base,
    })
}

impl Generator for Dcgan64Generator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let h = self.forward_stage(z, self.bns.len(), mode)?;
        crate::kernels::tanh(&self.deconvs[self.bns.len()].forward_t(&h, mode)?)
    }

    fn stages(&self) -> Vec<(usize, usize)> {
        (0..=self.bns.len())
            .map(|s| ((8 * self.width) >> s, self.base << s))
            .collect()
    }

    fn forward_stage(&self, z: &Tensor, stage: usize, mode: &mut Mode) -> Result<Tensor> {
        let h = self.forward_stage_before_attention(z, stage, mode)?;
        self.attention.apply(h, self.base << stage, mode)
    }

    fn attention_map(&self, z: &Tensor, side: usize) -> Result<Option<(Tensor, Tensor)>> {
        let Some(layer) = self.attention.at(side) else {
            return Ok(None);
        };
        let stage = (0..=self.bns.len())
            .find(|s| self.base << s == side)
            .expect("attention layers sit at stage sides");
        let h = self.forward_stage_before_attention(z, stage, &mut Mode::Eval)?;
        Ok(Some((
            self.forward(z, &mut Mode::Eval)?,
            layer.forward_with_map(&h, &Mode::Eval)?.1,
        )))
    }
}

impl Dcgan64Generator {
    /// The activations of `stage` (side base·2^stage), before that stage's own attention
    /// layer (earlier stages' are applied).
    fn forward_stage_before_attention(
        &self,
        z: &Tensor,
        stage: usize,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        if stage > self.bns.len() {
            candle_core::bail!("dcgan64 has stages 0 to {}, not {stage}", self.bns.len())
        }
        let b = z.dim(0)?;
        let h = self
            .bn0
            .forward_activated(&self.fc.forward_t(z, mode)?, 0.0, mode)?;
        let mut h = h.reshape((b, 8 * self.width, self.base, self.base))?;
        for (s, (deconv, bn)) in self.deconvs.iter().zip(&self.bns).take(stage).enumerate() {
            h = self.attention.apply(h, self.base << s, mode)?;
            h = bn.forward_activated(&deconv.forward_t(&h, mode)?, 0.0, mode)?;
        }
        Ok(h)
    }
}

/// The discriminator: 5×5 stride-2 convs C → w → 2w → 4w → 8w, `norm` after all but the
/// first (batch norm in DCGAN, layer norm in report 000's WGAN-GP critic), LeakyReLU(0.2),
/// then FC → 1.
///
/// These are the channels and kernel of its conv blocks (also an encoder's and a joint
/// discriminator's image body), built by `conv_discriminator`.
pub fn d_layout(w: usize, shape: ImageShape) -> (Vec<usize>, Conv2dConfig) {
    (vec![shape.channels, w, 2 * w, 4 * w, 8 * w], K5S2)
}
