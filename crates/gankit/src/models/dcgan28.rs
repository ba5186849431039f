//! The 28×28 DCGAN (MNIST-sized images, 4×4 kernels).
//!
//! G: z → Linear(2w·7·7) → BN → ReLU → ConvT(2w→w, k4 s2 p1) → BN → ReLU → ConvT(w→C) → tanh
//! D: Conv(C→w, k4 s2 p1) → LReLU(0.2) → Conv(w→2w) → BN → LReLU(0.2) → Linear(2w·7·7 → 1)
//! with w = 64 by default, as in the foundation issue.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::{DOutput, Discriminator, Generator, ImageShape};
use crate::config::Norm;
use crate::nn::{
    BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d, Linear, Mode, Norm2d, batch_norm,
    conv_transpose2d, conv2d, dcgan_init, leaky_relu, linear, norm2d,
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
    width: usize,
}

pub fn generator(
    z_dim: usize,
    w: usize,
    shape: ImageShape,
    vb: VarBuilder,
) -> Result<Dcgan28Generator> {
    Ok(Dcgan28Generator {
        fc: linear(z_dim, 2 * w * 49, false, dcgan_init(), vb.pp("fc"))?,
        bn0: batch_norm(2 * w * 49, Default::default(), vb.pp("bn0"))?,
        deconv1: conv_transpose2d(2 * w, w, K4S2P1_NO_BIAS, vb.pp("deconv1"))?,
        bn1: batch_norm(w, Default::default(), vb.pp("bn1"))?,
        deconv2: conv_transpose2d(w, shape.channels, K4S2P1, vb.pp("deconv2"))?,
        width: w,
    })
}

impl Generator for Dcgan28Generator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let b = z.dim(0)?;
        let h = self.bn0.forward(&self.fc.forward(z)?, mode)?.relu()?;
        let h = h.reshape((b, 2 * self.width, 7, 7))?;
        let h = self.bn1.forward(&self.deconv1.forward(&h)?, mode)?.relu()?;
        self.deconv2.forward(&h)?.tanh()
    }
}

pub struct Dcgan28Discriminator {
    conv1: Conv2d,
    conv2: Conv2d,
    norm2: Norm2d,
    fc: Linear,
}

/// The discriminator; `norm` after conv2 is batch norm in DCGAN, layer norm or none for
/// critics with a gradient penalty.
pub fn discriminator(
    w: usize,
    norm: Norm,
    shape: ImageShape,
    vb: VarBuilder,
) -> Result<Dcgan28Discriminator> {
    let conv2_cfg = if norm == Norm::None {
        K4S2P1
    } else {
        K4S2P1_NO_BIAS
    };
    Ok(Dcgan28Discriminator {
        conv1: conv2d(shape.channels, w, K4S2P1, vb.pp("conv1"))?,
        conv2: conv2d(w, 2 * w, conv2_cfg, vb.pp("conv2"))?,
        norm2: norm2d(norm, 2 * w, vb.pp(format!("{}2", Norm2d::prefix(norm))))?,
        fc: linear(2 * w * 49, 1, true, dcgan_init(), vb.pp("fc"))?,
    })
}

impl Discriminator for Dcgan28Discriminator {
    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<DOutput> {
        let h = leaky_relu(&self.conv1.forward(x)?, 0.2)?;
        let h = leaky_relu(&self.norm2.forward(&self.conv2.forward(&h)?, mode)?, 0.2)?;
        let features = h.flatten_from(1)?;
        let logits = self.fc.forward(&features)?.squeeze(1)?;
        Ok(DOutput { logits, features })
    }
}
