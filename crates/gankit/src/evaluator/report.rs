//! Scoring generated images against real ones with an evaluator: every metric at once.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::Extractor;
use crate::Result;
use crate::data::ImageSet;
use crate::metrics::{self, GaussianStats, modes};
use crate::rng::Rng;

/// Every metric of one evaluation (written as eval.json).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub evaluator: String,
    pub evaluator_sha256: String,
    pub real_images: usize,
    pub fake_images: usize,
    pub fid: f64,
    pub kid: f64,
    pub kid_std: f64,
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
    pub inception_score: f64,
    pub inception_score_std: f64,
    /// Generated images per predicted class.
    pub class_histogram: Vec<usize>,
    /// Classes holding at least 1% of the samples (10% of the uniform share).
    pub classes_covered: usize,
    /// Conditional runs: the fraction of samples the evaluator's classifier assigns to the
    /// class they were generated for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub class_agreement: Option<f64>,
    /// What the numbers can be compared with, when the extractor is the fallback.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub caveat: Option<String>,
}

/// Features of a real set, as the evaluator computes them.
pub struct RealFeatures {
    pub features: DMatrix<f64>,
}

/// Features of `n` images of `set` (see [`sample_images`]), read from / written to a cache
/// under `cache_dir` keyed by the set's source, n, the seed and the evaluator's hash.
pub fn real_features(
    ev: &dyn Extractor,
    set: &ImageSet,
    n: usize,
    seed: u64,
    cache_dir: Option<&std::path::Path>,
) -> Result<RealFeatures> {
    use sha2::{Digest, Sha256};
    let key = format!("{}|{}|{n}|{seed}|{}", set.source, set.len, ev.hash());
    let file = cache_dir.map(|d| {
        d.join(format!(
            "real-{}.npy",
            &crate::config::hex(&Sha256::digest(key.as_bytes()))[..16]
        ))
    });
    if let Some(f) = file.as_ref().filter(|f| f.is_file()) {
        if let Ok(a) = crate::report::npy::read(f) {
            if a.shape.len() == 2 && a.shape[0] == n.min(set.len) {
                return Ok(RealFeatures {
                    features: DMatrix::from_row_slice(a.shape[0], a.shape[1], &a.data),
                });
            }
        }
    }
    let (images, n) = sample_images(set, n, seed);
    let (features, _) = ev.extract(&images, n)?;
    if let Some(f) = file {
        if let Some(dir) = f.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let flat: Vec<f32> = features.transpose().iter().map(|&v| v as f32).collect();
        // A cache: failing to write it only costs time next run.
        let _ = crate::report::npy::write_f32(&f, &flat, &[n, features.ncols()]);
    }
    Ok(RealFeatures { features })
}

/// `n` images of `set` (a seeded random subset when it holds more), scaled to [-1, 1].
pub fn sample_images(set: &ImageSet, n: usize, seed: u64) -> (Vec<f32>, usize) {
    let n = n.min(set.len);
    let order = Rng::new(seed, 31).permutation(set.len);
    let per = set.image_len();
    let mut out = vec![0f32; n * per];
    for (k, &i) in order[..n].iter().enumerate() {
        set.write_scaled(i as usize, &mut out[k * per..(k + 1) * per]);
    }
    (out, n)
}

/// Score `fake` (n, C, H, W in [-1, 1]) against real features; `fake_classes` are the
/// classes a conditional generator was asked for (scored as `class_agreement`).
pub fn score(
    ev: &dyn Extractor,
    real: &RealFeatures,
    fake: &[f32],
    n_fake: usize,
    fake_classes: Option<&[u32]>,
    seed: u64,
) -> Result<EvalReport> {
    let (f, probs) = ev.extract(fake, n_fake)?;
    let r = &real.features;
    let fid = metrics::fid_from_stats(&GaussianStats::of(r), &GaussianStats::of(&f));
    let (kid, kid_std) = metrics::kid(r, &f, 100, 1000, seed);
    let (precision, recall) = metrics::precision_recall(r, &f, 3);
    let (density, coverage) = metrics::density_coverage(r, &f, 5);
    let (is, is_std) = metrics::inception_score(&probs, 10);
    let predicted: Vec<usize> = probs
        .row_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect();
    let hist = modes::histogram(&predicted, probs.ncols());
    let class_agreement = fake_classes.map(|want| {
        let hits = want
            .iter()
            .zip(&predicted)
            .filter(|(w, p)| **w as usize == **p)
            .count();
        hits as f64 / want.len().max(1) as f64
    });
    Ok(EvalReport {
        evaluator: ev.name().to_string(),
        evaluator_sha256: ev.hash().to_string(),
        real_images: r.nrows(),
        fake_images: n_fake,
        fid,
        kid,
        kid_std,
        precision,
        recall,
        density,
        coverage,
        inception_score: is,
        inception_score_std: is_std,
        classes_covered: modes::covered(&hist, 0.1),
        class_agreement,
        class_histogram: hist,
        caveat: ev.caveat().map(str::to_string),
    })
}

impl EvalReport {
    /// A plain-text table.
    pub fn table(&self) -> String {
        let rows = [
            ("FID", format!("{:.4}", self.fid)),
            ("KID", format!("{:.5} ± {:.5}", self.kid, self.kid_std)),
            ("precision (k=3)", format!("{:.4}", self.precision)),
            ("recall (k=3)", format!("{:.4}", self.recall)),
            ("density (k=5)", format!("{:.4}", self.density)),
            ("coverage (k=5)", format!("{:.4}", self.coverage)),
            (
                "Inception Score",
                format!(
                    "{:.3} ± {:.3}",
                    self.inception_score, self.inception_score_std
                ),
            ),
            (
                "classes covered",
                format!("{} / {}", self.classes_covered, self.class_histogram.len()),
            ),
            ("class histogram", format!("{:?}", self.class_histogram)),
            (
                "class agreement",
                self.class_agreement
                    .map_or("n/a (unconditional)".into(), |a| format!("{:.4}", a)),
            ),
            (
                "images",
                format!("{} real, {} generated", self.real_images, self.fake_images),
            ),
            (
                "evaluator",
                format!(
                    "{} ({})",
                    self.evaluator,
                    &self.evaluator_sha256[..12.min(self.evaluator_sha256.len())]
                ),
            ),
        ];
        let mut t: String = rows.iter().map(|(k, v)| format!("{k:<18} {v}\n")).collect();
        if let Some(c) = &self.caveat {
            t += &format!("note: {c}\n");
        }
        t
    }
}
