//! What an encoder learned, for the families that have one (BiGAN, BigBiGAN, VAE-GAN):
//!
//! - representation: a linear probe (`metrics::probe`) on E(x) — fitted on images of the
//!   run's data, scored on held-out ones — beside the same probe on raw pixels and on the
//!   encoder as initialised (same seed, untrained), and the 1-nearest-neighbour accuracy
//!   of E(x) (each held-out image takes the label of its nearest fitted one);
//! - reconstruction, G(E(x)) on the held-out images (μ for a variational encoder): the
//!   evaluator's class agreement with the label, the pixel L1 distance, the FID of the
//!   reconstructions against the images themselves, and sharpness — the mean absolute
//!   difference between neighbouring pixels, of the reconstructions and of the images
//!   (report 003 §3.3: VAE-GAN's reconstructions are faithful but blurry, BiGAN's sharp
//!   but not always the same instance).
//!
//! Held-out images are the Fashion-MNIST test split for Fashion-MNIST runs, else a disjoint
//! seeded part of the run's own data. Probes need labels; without them only the
//! reconstruction's label-free numbers are reported.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::Extractor;
use crate::data::ImageSet;
use crate::family::Family;
use crate::metrics::{self, GaussianStats, probe};
use crate::rng::Rng;
use crate::{Error, Result};

/// The representation and reconstruction numbers of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepresentationReport {
    /// Images the probes were fitted on, and held-out images everything is scored on.
    pub fit_images: usize,
    pub held_out_images: usize,
    /// Linear-probe accuracy on E(x), on raw pixels, on the untrained encoder (labelled
    /// data only).
    pub probe_encoder: Option<f64>,
    pub probe_pixels: Option<f64>,
    pub probe_untrained_encoder: Option<f64>,
    /// 1-nearest-neighbour accuracy on E(x).
    pub nearest_neighbour: Option<f64>,
    /// The evaluator's class of G(E(x)) equals x's label.
    pub reconstruction_class_agreement: Option<f64>,
    /// Mean |G(E(x)) − x| per pixel, images in [-1, 1].
    pub reconstruction_l1: f64,
    /// FID of the reconstructions against the held-out images.
    pub reconstruction_fid: f64,
    /// Mean absolute difference of neighbouring pixels: reconstructions, images.
    pub sharpness_reconstruction: f64,
    pub sharpness_real: f64,
}

/// The inputs: the images and their labels.
pub struct Labelled {
    pub images: Vec<f32>,
    pub labels: Option<Vec<u8>>,
    pub n: usize,
}

/// `n` images of `set` from position `skip` of a seeded permutation (disjoint slices of one
/// permutation never share an image).
pub fn slice_of(set: &ImageSet, skip: usize, n: usize, seed: u64) -> Result<Labelled> {
    let order = Rng::new(seed, 43).permutation(set.len);
    let n = n.min(set.len.saturating_sub(skip));
    let per = set.image_len();
    let mut images = vec![0f32; n * per];
    let mut labels = set.labels.as_ref().map(|_| Vec::with_capacity(n));
    for (k, &i) in order[skip..skip + n].iter().enumerate() {
        set.write_scaled(i as usize, &mut images[k * per..(k + 1) * per])?;
        if let (Some(l), Some(all)) = (labels.as_mut(), set.labels.as_ref()) {
            l.push(all[i as usize]);
        }
    }
    Ok(Labelled { images, labels, n })
}

/// E(x) for `n` images, in batches of 256: (n, codes) row-major and the code width.
pub fn encode_all(
    family: &dyn Family,
    images: &[f32],
    n: usize,
    ema: bool,
) -> Result<(Vec<f32>, usize)> {
    let per = images.len() / n.max(1);
    let shape = image_shape(family, per)?;
    let mut out = Vec::new();
    let mut width = 0;
    for start in (0..n).step_by(256) {
        let b = (n - start).min(256);
        let x = candle_core::Tensor::from_slice(
            &images[start * per..(start + b) * per],
            (b, shape.0, shape.1, shape.1),
            &candle_core::Device::Cpu,
        )?;
        let z = family
            .encode(&x, ema)?
            .ok_or_else(|| Error::Config("this model family has no encoder".into()))?;
        width = z.dim(1)?;
        out.extend(z.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((out, width))
}

/// G(codes) for `n` codes of `width` values, in batches of 256.
pub fn decode_all(
    family: &dyn Family,
    codes: &[f32],
    n: usize,
    width: usize,
    ema: bool,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for start in (0..n).step_by(256) {
        let b = (n - start).min(256);
        let z = candle_core::Tensor::from_slice(
            &codes[start * width..(start + b) * width],
            (b, width),
            &candle_core::Device::Cpu,
        )?;
        out.extend(family.render(&z, ema)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// (channels, side) of images of `per` values (1 or 3 channels, square).
fn image_shape(_family: &dyn Family, per: usize) -> Result<(usize, usize)> {
    for c in [1, 3] {
        let s = ((per / c) as f64).sqrt().round() as usize;
        if c * s * s == per {
            return Ok((c, s));
        }
    }
    Err(Error::Data(format!("{per} values are not a square image")))
}

/// Mean absolute difference between horizontally and vertically neighbouring pixels.
pub fn sharpness(images: &[f32], n: usize, channels: usize, side: usize) -> f64 {
    let mut total = 0.0;
    let mut count = 0usize;
    for plane in images.chunks(side * side).take(n * channels) {
        for y in 0..side {
            for x in 0..side {
                let v = plane[y * side + x];
                if x + 1 < side {
                    total += (plane[y * side + x + 1] - v).abs() as f64;
                    count += 1;
                }
                if y + 1 < side {
                    total += (plane[(y + 1) * side + x] - v).abs() as f64;
                    count += 1;
                }
            }
        }
    }
    total / count.max(1) as f64
}

/// Score the encoder of `family` (and, for the probe's baseline, of `untrained`, the same
/// family freshly built) with the evaluator `ev`: fit on `fit`, score on `held_out`.
pub fn evaluate(
    family: &dyn Family,
    untrained: &dyn Family,
    ev: &dyn Extractor,
    fit: &Labelled,
    held_out: &Labelled,
    ema: bool,
    seed: u64,
) -> Result<RepresentationReport> {
    let per = held_out.images.len() / held_out.n.max(1);
    let (c, s) = image_shape(family, per)?;
    let (codes_fit, width) = encode_all(family, &fit.images, fit.n, ema)?;
    let (codes_held, _) = encode_all(family, &held_out.images, held_out.n, ema)?;
    let opts = probe::ProbeOptions {
        seed,
        ..Default::default()
    };
    let labelled = match (&fit.labels, &held_out.labels) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let (mut probe_encoder, mut probe_pixels, mut probe_untrained, mut nn) =
        (None, None, None, None);
    if let Some((lf, lh)) = labelled {
        let classes = lf
            .iter()
            .chain(lh.iter())
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(1);
        probe_encoder = Some(probe::linear_probe(
            &codes_fit,
            lf,
            &codes_held,
            lh,
            width,
            classes,
            opts,
        )?);
        probe_pixels = Some(probe::linear_probe(
            &fit.images,
            lf,
            &held_out.images,
            lh,
            per,
            classes,
            opts,
        )?);
        let (u_fit, _) = encode_all(untrained, &fit.images, fit.n, false)?;
        let (u_held, _) = encode_all(untrained, &held_out.images, held_out.n, false)?;
        probe_untrained = Some(probe::linear_probe(
            &u_fit, lf, &u_held, lh, width, classes, opts,
        )?);
        let to_matrix = |v: &[f32], n: usize| {
            DMatrix::from_row_slice(n, width, &v.iter().map(|&x| x as f64).collect::<Vec<_>>())
        };
        let nearest = metrics::nearest_rows(
            &to_matrix(&codes_held, held_out.n),
            &to_matrix(&codes_fit, fit.n),
        );
        let hits = nearest
            .iter()
            .zip(lh)
            .filter(|(j, l)| lf[**j] == **l)
            .count();
        nn = Some(hits as f64 / held_out.n.max(1) as f64);
    }
    // Reconstructions of the held-out images.
    let recon = decode_all(family, &codes_held, held_out.n, width, ema)?;
    let l1 = recon
        .iter()
        .zip(&held_out.images)
        .map(|(a, b)| (a - b).abs() as f64)
        .sum::<f64>()
        / recon.len().max(1) as f64;
    let (f_recon, p_recon) = ev.extract(&recon, held_out.n)?;
    let (f_real, _) = ev.extract(&held_out.images, held_out.n)?;
    let fid = metrics::fid_from_stats(&GaussianStats::of(&f_real), &GaussianStats::of(&f_recon));
    // Only a classifier of the data's own classes can say whether a class was kept.
    let agreement = held_out
        .labels
        .as_ref()
        .filter(|_| ev.data_classes())
        .map(|l| {
            let predicted = metrics::argmax_rows(&p_recon);
            predicted
                .iter()
                .zip(l)
                .filter(|(p, l)| **p == **l as usize)
                .count() as f64
                / l.len().max(1) as f64
        });
    Ok(RepresentationReport {
        fit_images: fit.n,
        held_out_images: held_out.n,
        probe_encoder,
        probe_pixels,
        probe_untrained_encoder: probe_untrained,
        nearest_neighbour: nn,
        reconstruction_class_agreement: agreement,
        reconstruction_l1: l1,
        reconstruction_fid: fid,
        sharpness_reconstruction: sharpness(&recon, held_out.n, c, s),
        sharpness_real: sharpness(&held_out.images, held_out.n, c, s),
    })
}

impl RepresentationReport {
    /// Rows for the eval table.
    pub fn rows(&self) -> Vec<(String, String)> {
        let pct = |v: Option<f64>| v.map_or("n/a (no labels)".into(), |v| format!("{:.4}", v));
        vec![
            (
                "probe on E(x)".into(),
                format!(
                    "{} (pixels {}, untrained E {}; fitted on {}, scored on {})",
                    pct(self.probe_encoder),
                    pct(self.probe_pixels),
                    pct(self.probe_untrained_encoder),
                    self.fit_images,
                    self.held_out_images
                ),
            ),
            ("1-NN on E(x)".into(), pct(self.nearest_neighbour)),
            (
                "reconstruction".into(),
                format!(
                    "class agreement {}, L1 {:.4}, FID {:.3}, sharpness {:.4} (real {:.4})",
                    self.reconstruction_class_agreement.map_or(
                        "n/a (no labels, or an evaluator without the data's classes)".into(),
                        |v| format!("{v:.4}")
                    ),
                    self.reconstruction_l1,
                    self.reconstruction_fid,
                    self.sharpness_reconstruction,
                    self.sharpness_real
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharpness_of_a_flat_and_a_checkerboard_image() {
        let flat = vec![0.3f32; 16];
        assert_eq!(sharpness(&flat, 1, 1, 4), 0.0);
        let board: Vec<f32> = (0..16)
            .map(|i| if (i / 4 + i % 4) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(sharpness(&board, 1, 1, 4), 2.0);
    }
}
