//! Inception-v3 as a feature extractor for the metrics (`gankit eval --evaluator inception`):
//! pool3 features (2048) and the softmax of the 1008 logits (for the Inception Score),
//! images taken as pytorch-fid takes PNG files: in [0, 1], by default quantised to 8 bits.

use candle_core::DType;
use nalgebra::DMatrix;

use super::InceptionV3;
use super::store::{InceptionInfo, NAME};
use crate::Result;
use crate::evaluator::Extractor;

/// Images run through the network at once. Measured on 2 cores (AVX-512), seconds per
/// image: 0.104 at 8 to 24, 0.14 at 4, 0.125 at 50 (larger batches spend more time
/// faulting in fresh memory for the big early maps).
const BATCH: usize = 16;

/// The imported Inception network, ready to score images.
pub struct Inception {
    net: InceptionV3,
    quantize: bool,
    /// The weights' hash, plus the quantisation: the key of cached real-set features.
    hash: String,
}

impl Inception {
    /// `quantize`: round images to 8 bits first, as saving them as PNG files and scoring
    /// the files with pytorch-fid does (torchvision's `save_image` rounds x·255 + 0.5 down).
    pub fn new(net: InceptionV3, info: &InceptionInfo, quantize: bool) -> Inception {
        let hash = if quantize {
            format!("{}-8bit", info.sha256)
        } else {
            info.sha256.clone()
        };
        Inception {
            net,
            quantize,
            hash,
        }
    }

    /// The network imported under `home` (see [`super::store::load`]).
    pub fn open(home: &std::path::Path, quantize: bool) -> Result<Inception> {
        let (net, info) = super::store::load(home)?;
        Ok(Inception::new(net, &info, quantize))
    }
}

/// Images in [−1, 1] → [0, 1], rounded to the 8-bit values a PNG file would hold when
/// `quantize` (clamped, x·255 + 0.5 rounded down, / 255).
pub fn to_unit_range(images: &[f32], quantize: bool) -> Vec<f32> {
    images
        .iter()
        .map(|&v| {
            let u = (v + 1.0) * 0.5;
            if quantize {
                (u * 255.0 + 0.5).clamp(0.0, 255.0).floor() / 255.0
            } else {
                u
            }
        })
        .collect()
}

impl Extractor for Inception {
    fn name(&self) -> &str {
        NAME
    }
    fn hash(&self) -> &str {
        &self.hash
    }
    fn feature_dims(&self) -> usize {
        super::layout::FEATURES
    }
    fn data_classes(&self) -> bool {
        false
    }
    fn extract(&self, images: &[f32], n: usize) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
        let per = images.len() / n.max(1);
        let (channels, side) = shape_of(per)?;
        let mut feats = Vec::with_capacity(n * super::layout::FEATURES);
        let mut probs = Vec::with_capacity(n * super::layout::CLASSES);
        for start in (0..n).step_by(BATCH) {
            let b = (n - start).min(BATCH);
            let x = to_unit_range(&images[start * per..(start + b) * per], self.quantize);
            let (pool3, logits) = self.net.forward(&x, b, channels, side)?;
            let p = candle_nn::ops::softmax(&logits.to_dtype(DType::F64)?, 1)?;
            feats.extend(
                pool3
                    .to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?,
            );
            probs.extend(p.flatten_all()?.to_vec1::<f64>()?);
        }
        Ok((
            DMatrix::from_row_slice(n, super::layout::FEATURES, &feats),
            DMatrix::from_row_slice(n, super::layout::CLASSES, &probs),
        ))
    }
}

/// (channels, side) of square images of `per` values each: 1 or 3 channels.
fn shape_of(per: usize) -> Result<(usize, usize)> {
    for c in [3, 1] {
        let side = ((per / c) as f64).sqrt().round() as usize;
        if side * side * c == per && side > 0 {
            return Ok((c, side));
        }
    }
    Err(crate::Error::Data(format!(
        "Inception scores square 1- or 3-channel images; {per} values an image are neither"
    )))
}
