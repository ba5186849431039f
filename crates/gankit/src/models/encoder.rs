//! An encoder E: images → a latent code, for the families that invert the generator
//! (BiGAN, BigBiGAN, VAE-GAN). Its body is the discriminator's conv stack (report 000's
//! DCGAN layout at 64×64, dcgan28's at 28×28) with batch norm after every block but the
//! first, then a hidden layer and a linear output of `outputs` values: z itself (BiGAN, a
//! deterministic encoder) or (μ, log σ²) (VAE-GAN).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::conv_discriminator::ConvDiscriminator;
use crate::config::{Config, Norm};
use crate::nn::{BatchNorm, Linear, Mode, batch_norm, dcgan_init, linear};

/// Width of the encoder's hidden fully connected layer (Larsen et al. 2016 use 2048 at
/// 64×64; DCGAN-sized runs here take a quarter of the body's features, at most 1024).
fn hidden_width(features: usize) -> usize {
    (features / 4).clamp(64, 1024)
}

pub struct Encoder {
    body: ConvDiscriminator,
    fc1: Linear,
    bn: BatchNorm,
    fc2: Linear,
    outputs: usize,
}

/// An encoder for `cfg`'s images with `outputs` values per image; weights `conv*`, `bn*`,
/// `fc1`, `bn_fc`, `fc2`.
pub fn encoder(cfg: &Config, outputs: usize, vb: VarBuilder) -> Result<Encoder> {
    let body = super::image_body(cfg, Norm::Batch, false, vb.clone())?;
    let hidden = hidden_width(body.feature_dim());
    Ok(Encoder {
        fc1: linear(
            body.feature_dim(),
            hidden,
            false,
            dcgan_init(),
            vb.pp("fc1"),
        )?,
        bn: batch_norm(hidden, Default::default(), vb.pp("bn_fc"))?,
        fc2: linear(hidden, outputs, true, dcgan_init(), vb.pp("fc2"))?,
        body,
        outputs,
    })
}

impl Encoder {
    /// (n, outputs) for images (n, C, H, W).
    pub fn forward(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        let f = self.body.features(x, mode)?;
        let h = self
            .bn
            .forward_activated(&self.fc1.forward_t(&f, mode)?, 0.2, mode)?;
        self.fc2.forward_t(&h, mode)
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }
}
