//! Scoring generated images against real ones with an evaluator: every metric at once.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::Extractor;
use super::input::MIN_IMAGES;
use crate::data::ImageSet;
use crate::metrics::{self, GaussianStats, modes};
use crate::report::decimal;
use crate::rng::Rng;
use crate::{Error, Result};

/// Every metric of one evaluation (written as eval.json).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub evaluator: String,
    pub evaluator_sha256: String,
    /// Real images scored; 0 when the real side is a statistics file.
    pub real_images: usize,
    pub fake_images: usize,
    /// The pytorch-fid statistics file the real side came from (`gankit eval --stats`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub real_statistics: Option<String>,
    pub fid: f64,
    /// KID and the neighbourhood metrics need the real images' features: absent when only
    /// their statistics were given (`gankit eval --stats FILE.npz`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kid_std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub density: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coverage: Option<f64>,
    pub inception_score: f64,
    pub inception_score_std: f64,
    /// Generated images per predicted class (the data set's classes; empty for an
    /// extractor whose classes are not the data's, such as Inception's ImageNet ones).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub class_histogram: Vec<usize>,
    /// Classes holding at least 1% of the samples (10% of the uniform share).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub classes_covered: Option<usize>,
    /// Conditional runs: the fraction of samples the evaluator's classifier assigns to the
    /// class they were generated for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub class_agreement: Option<f64>,
    /// What the numbers can be compared with, when the extractor is the fallback.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub caveat: Option<String>,
    /// Families with an encoder: the linear probe, nearest neighbours and reconstructions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub representation: Option<super::representation::RepresentationReport>,
    /// Families with a categorical code (InfoGAN): how well its values found the classes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code_purity: Option<super::CodePurity>,
    /// What makes these numbers less reliable than usual (e.g. a singular covariance).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

/// The real side of a comparison: the features of real images, or only their mean and
/// covariance (a pytorch-fid statistics file), which allow FID alone.
pub struct RealFeatures {
    pub features: Option<DMatrix<f64>>,
    pub stats: GaussianStats,
    /// Images behind the statistics, when known.
    pub images: Option<usize>,
}

impl RealFeatures {
    pub fn from_features(features: DMatrix<f64>) -> RealFeatures {
        RealFeatures {
            stats: GaussianStats::of(&features),
            images: Some(features.nrows()),
            features: Some(features),
        }
    }

    pub fn from_stats(stats: GaussianStats) -> RealFeatures {
        RealFeatures {
            features: None,
            stats,
            images: None,
        }
    }

    /// The statistics alone (FID only: `gankit eval --fid-only`).
    pub fn without_features(self) -> RealFeatures {
        RealFeatures {
            features: None,
            ..self
        }
    }
}

/// Features of `n` images of `set` (see [`sample_images`]), read from / written to a cache
/// under `cache_dir` keyed by the set's source, n, the seed and the evaluator's hash. A
/// cache file is used only when its checksum and key (in its `.json` beside it) match;
/// a damaged or foreign one is recomputed and replaced.
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
    if let Some(features) = file
        .as_deref()
        .and_then(|f| read_cache(f, &key, n.min(set.len)))
    {
        return Ok(RealFeatures::from_features(features));
    }
    let (images, n) = sample_images(set, n, seed)?;
    let (features, _) = ev.extract(&images, n)?;
    // Rounded as the cache stores them, so a cold and a warm evaluation agree exactly.
    let features = features.map(|v| v as f32 as f64);
    if let Some(f) = file {
        // A cache: failing to write it only costs time next run.
        let _ = write_cache(&f, &key, &features);
    }
    Ok(RealFeatures::from_features(features))
}

/// What is stored beside a cached feature file.
#[derive(Serialize, Deserialize)]
struct CacheInfo {
    key: String,
    sha256: String,
}

fn read_cache(f: &std::path::Path, key: &str, rows: usize) -> Option<DMatrix<f64>> {
    use sha2::{Digest, Sha256};
    let info: CacheInfo =
        serde_json::from_str(&std::fs::read_to_string(f.with_extension("json")).ok()?).ok()?;
    let bytes = std::fs::read(f).ok()?;
    if info.key != key || info.sha256 != crate::config::hex(&Sha256::digest(&bytes)) {
        return None;
    }
    let a = crate::report::npy::decode(bytes, "cache").ok()?;
    let values = a.to_f64();
    (a.shape.len() == 2 && a.shape[0] == rows && values.iter().all(|v| v.is_finite()))
        .then(|| DMatrix::from_row_slice(a.shape[0], a.shape[1], &values))
}

fn write_cache(f: &std::path::Path, key: &str, features: &DMatrix<f64>) -> Result<()> {
    use sha2::{Digest, Sha256};
    if let Some(dir) = f.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let flat: Vec<f32> = features.transpose().iter().map(|&v| v as f32).collect();
    let bytes = crate::report::npy::encode_f32(&flat, &[features.nrows(), features.ncols()]);
    let info = CacheInfo {
        key: key.to_string(),
        sha256: crate::config::hex(&Sha256::digest(&bytes)),
    };
    // The checksum goes first: a crash between the two writes leaves a mismatch, which
    // reads as "no cache".
    let json = serde_json::to_string(&info).expect("cache info serialises");
    crate::fsutil::write_atomic(&f.with_extension("json"), json.as_bytes())?;
    crate::fsutil::write_atomic(f, &bytes)
}

/// `n` images of `set` (a seeded random subset when it holds more), scaled to [-1, 1].
pub fn sample_images(set: &ImageSet, n: usize, seed: u64) -> Result<(Vec<f32>, usize)> {
    let n = n.min(set.len);
    let order = Rng::new(seed, 31).permutation(set.len);
    let per = set.image_len();
    let mut out = vec![0f32; n * per];
    for (k, &i) in order[..n].iter().enumerate() {
        set.write_scaled(i as usize, &mut out[k * per..(k + 1) * per])?;
    }
    Ok((out, n))
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
    let per = fake.len() / n_fake.max(1);
    let fake_features = extract_in_chunks(ev, n_fake, per, |start, count| {
        Ok(fake[start * per..(start + count) * per].to_vec())
    })?;
    score_features(ev, real, &fake_features, fake_classes, seed)
}

/// Images handed to the extractor at once by [`extract_in_chunks`]: a multiple of 256 (the
/// generator's batch) and of 10, so chunked generation draws the same noise as one call.
pub const CHUNK: usize = 2560;

/// Features and class probabilities of `n` images produced [`CHUNK`] at a time by
/// `images(start, count)` (each (count, C, H, W) in [-1, 1], `per` values an image), so
/// scoring 50k images never holds them all. Non-finite values are an error.
pub fn extract_in_chunks(
    ev: &dyn Extractor,
    n: usize,
    per: usize,
    mut images: impl FnMut(usize, usize) -> Result<Vec<f32>>,
) -> Result<FakeFeatures> {
    if n < MIN_IMAGES {
        return Err(Error::Config(format!(
            "{n} images to score; at least {MIN_IMAGES} are needed (thousands for stable numbers)"
        )));
    }
    let (mut feats, mut probs) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let count = CHUNK.min(n - start);
        let x = images(start, count)?;
        assert_eq!(
            x.len(),
            count * per,
            "images(start, count) gives count images"
        );
        let bad = x.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::Data(format!(
                "{bad} values of the generated images {start}..{} are NaN or infinite: the generator diverged; score an earlier checkpoint (--step)",
                start + count
            )));
        }
        let (f, p) = ev.extract(&x, count)?;
        feats.push(f);
        probs.push(p);
        start += count;
    }
    let stack = |parts: Vec<DMatrix<f64>>| {
        let cols = parts[0].ncols();
        let mut rows: Vec<f64> = Vec::with_capacity(n * cols);
        for m in &parts {
            rows.extend(m.transpose().iter());
        }
        DMatrix::from_row_slice(n, cols, &rows)
    };
    Ok(FakeFeatures {
        features: stack(feats),
        probs: stack(probs),
    })
}

/// Features of generated images and the extractor's class probabilities for them.
pub struct FakeFeatures {
    pub features: DMatrix<f64>,
    pub probs: DMatrix<f64>,
}

/// Every metric from the features of real and generated images.
pub fn score_features(
    ev: &dyn Extractor,
    real: &RealFeatures,
    fake: &FakeFeatures,
    fake_classes: Option<&[u32]>,
    seed: u64,
) -> Result<EvalReport> {
    let (f, probs) = (&fake.features, &fake.probs);
    let r = real.features.as_ref();
    let mut sides = vec![(f, "generated")];
    sides.extend(r.map(|r| (r, "real")));
    for (m, what) in sides {
        if m.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "the {what} images' features are not finite: the evaluator's weights are damaged"
            )));
        }
    }
    let (stats_r, stats_f) = (&real.stats, GaussianStats::of(f));
    if stats_r.mean.len() != stats_f.mean.len() {
        return Err(Error::Data(format!(
            "the real statistics have {} dimensions, the {} evaluator's features {}: they were computed with another network",
            stats_r.mean.len(),
            ev.name(),
            stats_f.mean.len()
        )));
    }
    let mut warnings = Vec::new();
    let live = metrics::live_dimensions(stats_r, &stats_f);
    let mut sides = vec![(&stats_f, f.nrows(), "generated")];
    sides.extend(real.images.map(|n| (stats_r, n, "real")));
    for (stats, n, what) in sides {
        if let Some(why) = stats.singular(n, &live) {
            warnings.push(format!(
                "the covariance of the {what} features is singular ({why}): FID is finite but not comparable with FIDs of full-rank sets; score more, and more varied, images"
            ));
        }
    }
    let fid = metrics::fid_from_stats(stats_r, &stats_f);
    let kid = r.map(|r| metrics::kid(r, f, 100, 1000, seed));
    let pr = r.map(|r| metrics::precision_recall(r, f, 3));
    let dc = r.map(|r| metrics::density_coverage(r, f, 5));
    let (is, is_std) = metrics::inception_score(probs, 10);
    let predicted = metrics::argmax_rows(probs);
    let data_classes = ev.data_classes();
    let hist = if data_classes {
        modes::histogram(&predicted, probs.ncols())
    } else {
        Vec::new()
    };
    let class_agreement = fake_classes.filter(|_| data_classes).map(|want| {
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
        real_images: real.images.unwrap_or(0),
        fake_images: f.nrows(),
        real_statistics: None,
        fid,
        kid: kid.map(|k| k.0),
        kid_std: kid.map(|k| k.1),
        precision: pr.map(|p| p.0),
        recall: pr.map(|p| p.1),
        density: dc.map(|d| d.0),
        coverage: dc.map(|d| d.1),
        inception_score: is,
        inception_score_std: is_std,
        classes_covered: data_classes.then(|| modes::covered(&hist, 0.1)),
        class_agreement,
        class_histogram: hist,
        caveat: ev.caveat().map(str::to_string),
        representation: None,
        code_purity: None,
        warnings,
    })
}

impl EvalReport {
    /// A plain-text table.
    pub fn table(&self) -> String {
        let needs = "n/a (needs both sides' features: not with --stats or --fid-only)";
        let num = |v: Option<f64>| v.map_or(needs.to_string(), |v| decimal(v, 4));
        let mut rows = vec![
            ("FID", decimal(self.fid, 4)),
            (
                "KID",
                match (self.kid, self.kid_std) {
                    (Some(k), Some(s)) => format!("{} ± {}", decimal(k, 5), decimal(s, 5)),
                    _ => needs.to_string(),
                },
            ),
            ("precision (k=3)", num(self.precision)),
            ("recall (k=3)", num(self.recall)),
            ("density (k=5)", num(self.density)),
            ("coverage (k=5)", num(self.coverage)),
            (
                "Inception Score",
                format!(
                    "{:.3} ± {:.3}",
                    self.inception_score, self.inception_score_std
                ),
            ),
        ];
        if let Some(covered) = self.classes_covered {
            rows.push((
                "classes covered",
                format!("{covered} / {}", self.class_histogram.len()),
            ));
            rows.push(("class histogram", format!("{:?}", self.class_histogram)));
            rows.push((
                "class agreement",
                self.class_agreement
                    .map_or("n/a (unconditional)".into(), |a| format!("{:.4}", a)),
            ));
        }
        let real = if let Some(file) = &self.real_statistics {
            format!("real statistics from {file}")
        } else {
            format!("{} real", self.real_images)
        };
        rows.extend([
            ("images", format!("{real}, {} generated", self.fake_images)),
            (
                "evaluator",
                format!(
                    "{} ({})",
                    self.evaluator,
                    &self.evaluator_sha256[..12.min(self.evaluator_sha256.len())]
                ),
            ),
        ]);
        let mut t: String = rows.iter().map(|(k, v)| format!("{k:<18} {v}\n")).collect();
        if let Some(r) = &self.representation {
            for (k, v) in r.rows() {
                t += &format!("{k:<18} {v}\n");
            }
        }
        if let Some(p) = &self.code_purity {
            let map: Vec<String> = p
                .mapping
                .iter()
                .enumerate()
                .map(|(v, c)| format!("{v}→{}", c.map_or("-".into(), |c| c.to_string())))
                .collect();
            t += &format!(
                "{:<18} {:.4} ({} images per code value; code → class {})\n",
                "code purity",
                p.purity,
                p.images_per_code,
                map.join(" ")
            );
        }
        if let Some(c) = &self.caveat {
            t += &format!("note: {c}\n");
        }
        for w in &self.warnings {
            t += &format!("warning: {w}\n");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluator::Evaluator;

    fn embedded(n: usize) -> ImageSet {
        let cfg = crate::config::DataConfig {
            split: crate::config::Split::Test,
            ..Default::default()
        };
        let mut set = crate::data::load(&cfg).unwrap();
        set.len = n;
        set.pixels.truncate(n * 784);
        set.labels = None;
        set
    }

    #[test]
    fn identical_or_too_few_images_give_a_finite_fid_and_a_warning() {
        let ev = Evaluator::random(1, 28).unwrap();
        let set = embedded(300);
        let real = real_features(&ev, &set, 300, 0, None).unwrap();
        let (images, _) = sample_images(&set, 300, 1).unwrap();
        // 300 images: full rank for 128 features, no warning.
        let r = score(&ev, &real, &images, 300, None, 0).unwrap();
        assert!(
            r.fid.is_finite() && r.warnings.is_empty(),
            "{:?}",
            r.warnings
        );
        // 50 images < 128 dimensions.
        let r = score(&ev, &real, &images[..50 * 784], 50, None, 0).unwrap();
        assert!(r.fid.is_finite(), "{}", r.fid);
        assert!(r.warnings[0].contains("50 images for"), "{:?}", r.warnings);
        // 200 copies of one image: zero covariance.
        let one: Vec<f32> = images[..784].repeat(200);
        let r = score(&ev, &real, &one, 200, None, 0).unwrap();
        assert!(r.fid.is_finite() && r.fid > 0.0, "{}", r.fid);
        assert!(
            r.warnings[0].contains("generated features") && r.warnings[0].contains("same features"),
            "{:?}",
            r.warnings
        );
        for v in [r.kid, r.precision, r.recall, r.density, r.coverage] {
            assert!(v.unwrap().is_finite());
        }
        // Too few, and non-finite, are errors.
        let e = score(&ev, &real, &images[..5 * 784], 5, None, 0).unwrap_err();
        assert!(e.to_string().contains("at least 10"), "{e}");
        let mut nan = images.clone();
        nan[10] = f32::NAN;
        let e = score(&ev, &real, &nan, 300, None, 0).unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
    }

    #[test]
    fn a_damaged_or_foreign_cache_is_recomputed_never_used() {
        let ev = Evaluator::random(1, 28).unwrap();
        let set = embedded(40);
        let dir = tempfile::tempdir().unwrap();
        let fresh = real_features(&ev, &set, 40, 0, Some(dir.path())).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let npy = files
            .iter()
            .find(|p| p.extension().unwrap() == "npy")
            .unwrap();
        let warm = real_features(&ev, &set, 40, 0, Some(dir.path())).unwrap();
        assert_eq!(warm.features, fresh.features, "cold and warm agree exactly");
        // Same shape, other values: the checksum catches it.
        let mut b = std::fs::read(npy).unwrap();
        let k = b.len() - 3;
        b[k] ^= 0x40;
        std::fs::write(npy, &b).unwrap();
        let again = real_features(&ev, &set, 40, 0, Some(dir.path())).unwrap();
        assert_eq!(again.features, fresh.features);
        // The damaged file was replaced.
        assert_ne!(std::fs::read(npy).unwrap(), b);
    }
}
