//! The evaluator network: a small CNN classifier whose penultimate layer gives the features
//! FID, KID, precision / recall and density / coverage compare, and whose class
//! probabilities give the Inception Score and the mode histogram.
//!
//! conv 3×3 (C→16) → BN → ReLU → conv 4×4 s2 (16→32) → BN → ReLU → conv 4×4 s2 (32→64) →
//! BN → ReLU → linear (64·(S/4)² → 128) → BN → ReLU [features] → dropout 0.3 → linear → K.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::nn::{
    BatchNorm, Conv2d, Conv2dConfig, Dropout, Linear, Mode, batch_norm, conv2d, linear,
};

/// Width of the feature vector.
pub const FEATURES: usize = 128;

pub struct Classifier {
    convs: Vec<(Conv2d, BatchNorm)>,
    fc1: Linear,
    bn_fc: BatchNorm,
    dropout: Dropout,
    fc2: Linear,
}

pub fn classifier(
    channels: usize,
    size: usize,
    classes: usize,
    vb: VarBuilder,
) -> Result<Classifier> {
    let kaiming = |fan_in: usize| candle_nn::Init::Randn {
        mean: 0.0,
        stdev: (2.0 / fan_in as f64).sqrt(),
    };
    let blocks = [
        (channels, 16, 3, 1, 1),
        (16, 32, 4, 2, 1),
        (32, 64, 4, 2, 1),
    ];
    let mut convs = Vec::new();
    for (i, &(ci, co, k, s, p)) in blocks.iter().enumerate() {
        let cfg = Conv2dConfig {
            kernel: k,
            stride: s,
            padding: p,
            output_padding: 0,
            bias: false,
        };
        let conv = conv2d(ci, co, cfg, vb.pp(format!("conv{}", i + 1)))?;
        convs.push((
            conv,
            batch_norm(co, Default::default(), vb.pp(format!("bn{}", i + 1)))?,
        ));
    }
    let flat = 64 * (size / 4) * (size / 4);
    Ok(Classifier {
        convs,
        fc1: linear(flat, FEATURES, false, kaiming(flat), vb.pp("fc1"))?,
        bn_fc: batch_norm(FEATURES, Default::default(), vb.pp("bn_fc"))?,
        dropout: Dropout { p: 0.3 },
        fc2: linear(FEATURES, classes, true, kaiming(FEATURES), vb.pp("fc2"))?,
    })
}

impl Classifier {
    /// (features (n, 128), logits (n, classes)) for images in [-1, 1].
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<(Tensor, Tensor)> {
        let mut h = x.clone();
        for (conv, bn) in &self.convs {
            h = bn.forward(&conv.forward(&h)?, mode)?.relu()?;
        }
        let features = self
            .bn_fc
            .forward(&self.fc1.forward(&h.flatten_from(1)?)?, mode)?
            .relu()?;
        let logits = self.fc2.forward(&self.dropout.forward(&features, mode)?)?;
        Ok((features, logits))
    }
}
