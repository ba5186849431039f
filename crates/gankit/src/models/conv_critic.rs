//! Seed 004's convolutional critic: four conv blocks (3×3, stride 2, padding 1), 16 filters
//! doubling per block (16, 32, 64, 128), LeakyReLU(0.2) after each, then a linear score.
//! It halves the side each block: 28 → 14 → 7 → 4 → 2, 64 → 32 → 16 → 8 → 4. The
//! normalisation after blocks 2–4 is configurable (none in the seed).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::{DOutput, Discriminator, ImageShape};
use crate::config::Norm;
use crate::nn::{
    Conv2d, Conv2dConfig, Linear, Mode, Norm2d, conv2d, dcgan_init, leaky_relu, linear, norm2d,
};

const K3S2P1: Conv2dConfig = Conv2dConfig {
    kernel: 3,
    stride: 2,
    padding: 1,
    output_padding: 0,
    bias: true,
};

pub struct ConvCritic {
    convs: Vec<Conv2d>,
    norms: Vec<Norm2d>,
    fc: Linear,
}

pub fn critic(norm: Norm, shape: ImageShape, vb: VarBuilder) -> Result<ConvCritic> {
    let chans = [shape.channels, 16, 32, 64, 128];
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    let mut side = shape.size;
    for i in 0..4 {
        let cfg = Conv2dConfig {
            bias: i == 0 || norm == Norm::None,
            ..K3S2P1
        };
        convs.push(conv2d(
            chans[i],
            chans[i + 1],
            cfg,
            vb.pp(format!("conv{}", i + 1)),
        )?);
        if i > 0 {
            let name = format!("{}{}", Norm2d::prefix(norm), i + 1);
            norms.push(norm2d(norm, chans[i + 1], vb.pp(name))?);
        }
        side = (side + 1) / 2;
    }
    Ok(ConvCritic {
        convs,
        norms,
        fc: linear(128 * side * side, 1, true, dcgan_init(), vb.pp("fc"))?,
    })
}

impl Discriminator for ConvCritic {
    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<DOutput> {
        let mut h = x.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(&h)?;
            if i > 0 {
                h = self.norms[i - 1].forward(&h, mode)?;
            }
            h = leaky_relu(&h, 0.2)?;
        }
        let features = h.flatten_from(1)?;
        let logits = self.fc.forward(&features)?.squeeze(1)?;
        Ok(DOutput { logits, features })
    }
}
