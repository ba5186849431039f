//! Report 004's vanilla GAN: four linear layers on each side with LeakyReLU(0.2).
//!
//! G: z → h → 2h → 4h → C·S·S, tanh (h = 256: 256 → 512 → 1024 → 784 for MNIST).
//! D: C·S·S → 4h → 2h → h → 1 (a logit: the sigmoid lives in the loss), with optional
//! dropout after each hidden layer (report 004 found it helps against collapse).
//! Weights use PyTorch's default `nn.Linear` initialisation, U(±1/√fan_in).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::{DOutput, Discriminator, Generator, ImageShape};
use crate::nn::{BatchNorm, Dropout, Linear, Mode, leaky_relu};

fn torch_linear(i: usize, o: usize, vb: VarBuilder) -> Result<Linear> {
    let bound = 1.0 / (i as f64).sqrt();
    let weight = vb.get_with_hints(
        (o, i),
        "weight",
        Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )?;
    let bias = vb.get_with_hints(
        o,
        "bias",
        Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )?;
    Ok(Linear::from_parts(weight, Some(bias)))
}

pub struct MlpGenerator {
    layers: Vec<Linear>,
    shape: ImageShape,
}

/// With `spectral_norm` every layer is spectrally normalised (SAGAN's G).
pub fn generator(
    z_dim: usize,
    h: usize,
    spectral_norm: bool,
    shape: ImageShape,
    vb: VarBuilder,
) -> Result<MlpGenerator> {
    let dims = [z_dim, h, 2 * h, 4 * h, shape.numel()];
    let layers = (0..4)
        .map(|i| {
            let vb = vb.pp(format!("fc{}", i + 1));
            let l = torch_linear(dims[i], dims[i + 1], vb.clone())?;
            if spectral_norm {
                l.spectrally_normalised(vb)
            } else {
                Ok(l)
            }
        })
        .collect::<Result<_>>()?;
    Ok(MlpGenerator { layers, shape })
}

impl Generator for MlpGenerator {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let mut h = z.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward_t(&h, mode)?;
            h = if i < 3 {
                leaky_relu(&h, 0.2)?
            } else {
                crate::kernels::tanh(&h)?
            };
        }
        let s = self.shape;
        h.reshape((z.dim(0)?, s.channels, s.size, s.size))
    }
}

pub struct MlpDiscriminator {
    layers: Vec<Linear>,
    /// Batch norm after each hidden layer (`model.d_norm = "batch"`; report 004 §2 tried it).
    norms: Vec<BatchNorm>,
    dropout: Dropout,
}

/// With `spectral_norm` every layer is spectrally normalised; with `batch_norm` each hidden
/// layer is followed by batch norm (weights `bn1`–`bn3`).
pub fn discriminator(
    h: usize,
    p: f32,
    spectral_norm: bool,
    batch_norm: bool,
    shape: ImageShape,
    vb: VarBuilder,
) -> Result<MlpDiscriminator> {
    let dims = [shape.numel(), 4 * h, 2 * h, h, 1];
    let layers = (0..4)
        .map(|i| {
            let layer_vb = vb.pp(format!("fc{}", i + 1));
            let l = torch_linear(dims[i], dims[i + 1], layer_vb.clone())?;
            if spectral_norm {
                l.spectrally_normalised(layer_vb)
            } else {
                Ok(l)
            }
        })
        .collect::<Result<_>>()?;
    let norms = if batch_norm {
        (0..3)
            .map(|i| {
                crate::nn::batch_norm(
                    dims[i + 1],
                    Default::default(),
                    vb.pp(format!("bn{}", i + 1)),
                )
            })
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    Ok(MlpDiscriminator {
        layers,
        norms,
        dropout: Dropout { p },
    })
}

impl MlpDiscriminator {
    /// Length of the feature vector feeding the last layer.
    pub fn feature_dim(&self) -> usize {
        self.layers[3].weight().dims()[1]
    }
}

impl Discriminator for MlpDiscriminator {
    fn forward(&self, x: &Tensor, _: Option<&Tensor>, mode: &mut Mode) -> Result<DOutput> {
        let mut h = x.flatten_from(1)?;
        for (i, l) in self.layers[..3].iter().enumerate() {
            let a = match self.norms.get(i) {
                Some(bn) => bn.forward_activated(&l.forward_t(&h, mode)?, 0.2, mode)?,
                None => leaky_relu(&l.forward_t(&h, mode)?, 0.2)?,
            };
            h = self.dropout.forward(&a, mode)?;
        }
        let logits = self.layers[3].forward_t(&h, mode)?.squeeze(1)?;
        Ok(DOutput {
            logits,
            features: h,
        })
    }
}
