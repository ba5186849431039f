//! The Inception-v3 of pytorch-fid (Heusel et al. 2017's FID network: the TensorFlow
//! Inception of 2015-12-05 as ported by pytorch-fid), for inference: the FID-specific
//! blocks (average pools that do not count the padding, the max pool in the last E block),
//! the 2048-d pool3 features and the 1008-class head, on gankit's CPU kernels.
//!
//! Input as pytorch-fid: images in [0, 1], grayscale repeated to 3 channels, bilinear
//! resize to 299×299 (`align_corners = false`, no antialiasing), scaled to [−1, 1].
//! Each `BasicConv2d` (convolution, batch norm with ε = 0.001, ReLU) runs as one
//! convolution with the batch norm folded into its weights and bias.
//!
//! The real weights are never downloaded or shipped; tests fill the network with
//! [`synthetic`] weights, which `scripts/reference_inception.py` also builds for
//! pytorch-fid's own network.

mod extractor;
pub mod layout;
mod pool;
mod resize;
pub mod store;
pub mod synthetic;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor};

use crate::kernels::planes::stack_shifts;
use crate::{Error, Result};
pub use extractor::{Inception, to_unit_range};
use layout::{Block, ConvSpec};

/// Batch norm's ε in every `BasicConv2d`.
const BN_EPS: f64 = 0.001;
/// The side images are resized to.
pub const SIDE: usize = 299;

/// Tensor `key` of the state dict, checked to have `shape`, as `dtype`.
fn tensor(t: &HashMap<String, Tensor>, key: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let v = t
        .get(key)
        .ok_or_else(|| Error::Config(format!("the Inception weights lack {key}")))?;
    if v.dims() != shape {
        return Err(Error::Config(format!(
            "the Inception weights' {key} has shape {:?}, not {shape:?}",
            v.dims()
        )));
    }
    Ok(v.to_dtype(dtype)?)
}

/// A convolution with its batch norm folded in, then ReLU.
struct Conv {
    w: Tensor,
    b: Tensor,
    spec: ConvSpec,
}

impl Conv {
    fn load(t: &HashMap<String, Tensor>, name: &str, spec: ConvSpec) -> Result<Conv> {
        let get = |suffix: &str, shape: &[usize]| {
            tensor(t, &format!("{name}.{suffix}"), shape, DType::F64)
        };
        let s = spec;
        let w = get("conv.weight", &[s.c_out, s.c_in, s.k.0, s.k.1])?;
        let gamma = get("bn.weight", &[s.c_out])?;
        let beta = get("bn.bias", &[s.c_out])?;
        let mean = get("bn.running_mean", &[s.c_out])?;
        let var = get("bn.running_var", &[s.c_out])?;
        // y = γ (conv(x) − μ) / √(σ² + ε) + β = conv_{w·scale}(x) + (β − μ·scale).
        let scale = gamma.div(&(var + BN_EPS)?.sqrt()?)?;
        let w = w.broadcast_mul(&scale.reshape((s.c_out, 1, 1, 1))?)?;
        let b = beta.sub(&mean.mul(&scale)?)?;
        // A 1×k or k×1 kernel runs as a 1×1 convolution over k shifted copies of the
        // input stacked on the channels (`kernels::planes::stack_shifts`): its weights ordered tap-major.
        let (rows, columns) = s.k;
        if rows != columns {
            assert!(
                s.stride == 1 && (rows == 1 || columns == 1) && s.pad.0 * s.pad.1 == 0,
                "the layout's rectangular kernels are 1×k or k×1 at stride 1"
            );
        }
        let w = match s.k {
            (1, k) if k > 1 => w
                .permute((0, 3, 1, 2))?
                .reshape((s.c_out, k * s.c_in, 1, 1))?,
            (k, 1) if k > 1 => w
                .permute((0, 2, 1, 3))?
                .reshape((s.c_out, k * s.c_in, 1, 1))?,
            _ => w,
        };
        Ok(Conv {
            w: w.to_dtype(DType::F32)?.contiguous()?,
            b: b.to_dtype(DType::F32)?,
            spec,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = &self.spec;
        let relu = |x: &Tensor, stride: usize, pad: usize| -> Result<Tensor> {
            // Convolution, bias and ReLU (a leaky ReLU of slope 0) in one pass.
            Ok(crate::kernels::conv2d_bias_leaky(
                x, &self.w, &self.b, stride, pad, 0.0,
            )?)
        };
        match s.k {
            (1, k) if k > 1 => relu(&stack_shifts(x, 3, k, s.pad.1)?, 1, 0),
            (k, 1) if k > 1 => relu(&stack_shifts(x, 2, k, s.pad.0)?, 1, 0),
            _ => relu(x, s.stride, s.pad.0),
        }
    }
}

struct Mixed {
    kind: Block,
    convs: Vec<Conv>,
}

impl Mixed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = &self.convs;
        let chain = |x: &Tensor, from: usize, to: usize| -> Result<Tensor> {
            let mut y = x.clone();
            for conv in &c[from..to] {
                y = conv.forward(&y)?;
            }
            Ok(y)
        };
        let parts = match self.kind {
            Block::A { .. } => vec![
                chain(x, 0, 1)?,
                chain(x, 1, 3)?,
                chain(x, 3, 6)?,
                c[6].forward(&pool::avg_same(x)?)?,
            ],
            Block::B { .. } => vec![chain(x, 0, 1)?, chain(x, 1, 4)?, pool::max_down(x)?],
            Block::C { .. } => vec![
                chain(x, 0, 1)?,
                chain(x, 1, 4)?,
                chain(x, 4, 9)?,
                c[9].forward(&pool::avg_same(x)?)?,
            ],
            Block::D { .. } => vec![chain(x, 0, 2)?, chain(x, 2, 6)?, pool::max_down(x)?],
            Block::E { max_pool, .. } => {
                let a = chain(x, 1, 2)?;
                let b = chain(x, 4, 6)?;
                let pooled = if max_pool {
                    pool::max_same(x)?
                } else {
                    pool::avg_same(x)?
                };
                vec![
                    chain(x, 0, 1)?,
                    c[2].forward(&a)?,
                    c[3].forward(&a)?,
                    c[6].forward(&b)?,
                    c[7].forward(&b)?,
                    c[8].forward(&pooled)?,
                ]
            }
        };
        Ok(crate::kernels::planes::cat_channels(&parts)?)
    }
}

/// The network, ready for inference on the CPU in f32.
pub struct InceptionV3 {
    stem: Vec<Conv>,
    blocks: Vec<Mixed>,
    fc_w: Tensor,
    fc_b: Tensor,
}

impl InceptionV3 {
    /// Build from a state dict with pytorch-fid's tensor names (`Mixed_5b.branch1x1.conv.weight`,
    /// ..., `fc.weight`); a missing tensor or a wrong shape is an error naming it.
    pub fn new(t: &HashMap<String, Tensor>) -> Result<InceptionV3> {
        let stem = layout::STEM
            .iter()
            .map(|(name, spec)| Conv::load(t, name, *spec))
            .collect::<Result<Vec<_>>>()?;
        let blocks = layout::BLOCKS
            .iter()
            .map(|(name, kind)| {
                let convs = layout::block_convs(*kind)
                    .into_iter()
                    .map(|(branch, spec)| Conv::load(t, &format!("{name}.{branch}"), spec))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Mixed { kind: *kind, convs })
            })
            .collect::<Result<Vec<_>>>()?;
        let fc = |key: &str, shape: &[usize]| tensor(t, key, shape, DType::F32);
        Ok(InceptionV3 {
            stem,
            blocks,
            fc_w: fc("fc.weight", &[layout::CLASSES, layout::FEATURES])?,
            fc_b: fc("fc.bias", &[layout::CLASSES])?,
        })
    }

    /// pool3 features (n, 2048) and logits (n, 1008) of images (n, 3, 299, 299) in [−1, 1].
    pub fn forward_prepared(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut y = self.stem[0].forward(x)?;
        y = self.stem[1].forward(&y)?;
        y = self.stem[2].forward(&y)?;
        y = pool::max_down(&y)?;
        y = self.stem[3].forward(&y)?;
        y = self.stem[4].forward(&y)?;
        y = pool::max_down(&y)?;
        for b in &self.blocks {
            y = b.forward(&y)?;
        }
        let pool3 = y.mean(D::Minus1)?.mean(D::Minus1)?;
        let logits = pool3.matmul(&self.fc_w.t()?)?.broadcast_add(&self.fc_b)?;
        Ok((pool3, logits))
    }

    /// pool3 features and logits of `n` images (n, C, H, W) with C = 1 or 3, values in
    /// [0, 1], prepared as pytorch-fid prepares its input.
    pub fn forward(
        &self,
        images: &[f32],
        n: usize,
        channels: usize,
        side: usize,
    ) -> Result<(Tensor, Tensor)> {
        let x = prepare(images, n, channels, side, &Device::Cpu)?;
        self.forward_prepared(&x)
    }
}

/// Images (n, C, side, side) in [0, 1] → (n, 3, 299, 299) in [−1, 1]: grayscale repeated,
/// bilinear resize (`align_corners = false`, no antialiasing), x ↦ 2x − 1.
pub fn prepare(
    images: &[f32],
    n: usize,
    channels: usize,
    side: usize,
    device: &Device,
) -> Result<Tensor> {
    if channels != 1 && channels != 3 {
        return Err(Error::Data(format!(
            "Inception takes 1- or 3-channel images, not {channels}"
        )));
    }
    let x = Tensor::from_slice(images, (n * channels, side, side), device)?;
    let x = resize::bilinear(&x, SIDE)?.reshape((n, channels, SIDE, SIDE))?;
    let x = if channels == 1 {
        x.repeat((1, 3, 1, 1))?
    } else {
        x
    };
    Ok(x.affine(2.0, -1.0)?)
}
