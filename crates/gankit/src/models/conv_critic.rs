//! Report 004's convolutional critic: four conv blocks (3×3, stride 2, padding 1), 16 filters
//! doubling per block (16, 32, 64, 128), LeakyReLU(0.2) after each, then a linear score.
//! It halves the side each block: 28 → 14 → 7 → 4 → 2, 64 → 32 → 16 → 8 → 4. The
//! normalisation after blocks 2–4 is configurable (none in the report).

use candle_core::Result;
use candle_nn::VarBuilder;

use super::ImageShape;
use super::attention::AttentionSpec;
use super::conv_discriminator::{ConvDiscriminator, conv_discriminator};
use crate::config::Norm;
use crate::nn::Conv2dConfig;

const K3S2P1: Conv2dConfig = Conv2dConfig {
    kernel: 3,
    stride: 2,
    padding: 1,
    output_padding: 0,
    bias: true,
};

pub fn critic(
    norm: Norm,
    spectral_norm: bool,
    shape: ImageShape,
    attention: &AttentionSpec,
    vb: VarBuilder,
) -> Result<ConvDiscriminator> {
    let chans = [shape.channels, 16, 32, 64, 128];
    conv_discriminator(
        &chans,
        K3S2P1,
        norm,
        spectral_norm,
        shape.size,
        attention,
        vb,
    )
}
