//! Feature extractors for the metrics: a documented CNN classifier trained by gankit on a
//! labelled MNIST-format dataset (`gankit evaluator train`), saved as safetensors with its
//! test accuracy and a content hash beside it.
//!
//! An evaluator lives in `<home>/evaluators/<dataset>.safetensors` and `<dataset>.json`, where
//! `<home>` is `$GANKIT_HOME`, else `~/.local/share/gankit`.

mod classifier;
pub mod inception;
pub mod input;
mod purity;
mod report;
pub mod representation;
pub mod stats_file;
mod training;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use classifier::{Classifier, FEATURES, classifier};
pub use purity::{CodePurity, code_purity};
pub use report::{
    CHUNK, EvalReport, FakeFeatures, RealFeatures, extract_in_chunks, real_features, sample_images,
    score, score_features,
};
pub use training::{TrainOptions, accuracy, train};

use crate::config::hex;
use crate::error::IoContext;
use crate::nn::{Mode, ParamStore};
use crate::rng::Rng;
use crate::{Error, Result};

/// What is saved beside an evaluator's weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluatorInfo {
    /// Data set name (the file stem).
    pub dataset: String,
    pub classes: usize,
    pub channels: usize,
    pub size: usize,
    /// Accuracy on the test split, in [0, 1].
    pub test_accuracy: f64,
    /// SHA-256 of the weights file: the key of cached real-set features.
    pub sha256: String,
    pub epochs: usize,
    pub seed: u64,
    pub version: String,
    /// How it was made (the reference evaluator says; trained ones leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

/// What the metrics need from a feature extractor: gankit's classifier or pytorch-fid's
/// Inception-v3 ([`inception::Inception`]). Images are (n, C, H, W) in [-1, 1], row-major.
pub trait Extractor {
    /// Name shown in reports ("fashion-mnist-v1", "random-features", ...).
    fn name(&self) -> &str;
    /// Content hash: the key of cached real-set features.
    fn hash(&self) -> &str;
    /// Width of its features (the length of a statistics file's mean).
    fn feature_dims(&self) -> usize;
    /// Whether its classes are the data set's, so class-based numbers (a conditional run's
    /// class agreement, InfoGAN's code purity, reconstructions keeping their class) mean
    /// something; Inception's are ImageNet's.
    fn data_classes(&self) -> bool {
        true
    }
    /// Features (n, d) and class probabilities (n, classes) of `n` images.
    fn extract(&self, images: &[f32], n: usize) -> Result<(DMatrix<f64>, DMatrix<f64>)>;
    /// What its numbers can be compared with, when that is limited.
    fn caveat(&self) -> Option<&str> {
        None
    }
}

impl Extractor for Evaluator {
    fn name(&self) -> &str {
        &self.info.dataset
    }
    fn feature_dims(&self) -> usize {
        FEATURES
    }
    fn hash(&self) -> &str {
        &self.info.sha256
    }
    fn extract(&self, images: &[f32], n: usize) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
        self.features(images, n)
    }
    fn caveat(&self) -> Option<&str> {
        (self.info.dataset == RANDOM).then_some(RANDOM_CAVEAT)
    }
}

/// A trained classifier used as a feature extractor.
pub struct Evaluator {
    pub net: Classifier,
    pub params: ParamStore,
    pub info: EvaluatorInfo,
}

/// The reference Fashion-MNIST evaluator, shipped inside gankit: trained once (its
/// provenance is in its info file), so every user and every version scores Fashion-MNIST
/// samples with the same weights and their FIDs compare. A retrained classifier differs
/// (kernel changes move its rounding), so it is never substituted: it gets another name.
pub const REFERENCE: &str = "fashion-mnist-v1";
/// SHA-256 of the reference evaluator's weights.
pub const REFERENCE_SHA256: &str =
    "7ae3df29967a2c7f12e9faef33c3f6fe474980460ac78b66a148e32a146ed46d";
static REFERENCE_WEIGHTS: &[u8] =
    include_bytes!("../../assets/evaluators/fashion-mnist-v1.safetensors");
static REFERENCE_INFO: &str = include_str!("../../assets/evaluators/fashion-mnist-v1.json");

/// The fallback extractor's name: a seeded, untrained copy of the classifier.
pub const RANDOM: &str = "random-features";

/// What [`RANDOM`]'s numbers mean, printed beside them.
pub const RANDOM_CAVEAT: &str = "features of an untrained, seeded network (no labelled data for this set): compare runs on the same data with it, not with other extractors or published FIDs";

/// The evaluator that scores a data set by default: [`REFERENCE`] for Fashion-MNIST, the
/// name of the folder holding an IDX file (train one under that name with
/// `gankit evaluator train --dataset NAME --train … --test …`), and [`RANDOM`] for image
/// folders, which have no labels to train a classifier on.
pub fn default_for(data: &crate::config::DataConfig) -> String {
    use crate::config::DatasetKind;
    match data.dataset {
        DatasetKind::FashionMnist => REFERENCE.into(),
        DatasetKind::Idx => {
            let folder = data
                .path
                .as_deref()
                .and_then(|p| p.parent())
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("idx");
            // Fashion-MNIST's own IDX files (e.g. Debian's copy) get the reference too.
            if folder == "fashion-mnist" {
                REFERENCE.into()
            } else {
                folder.to_string()
            }
        }
        DatasetKind::Folder => RANDOM.into(),
    }
}

/// Names a trained evaluator cannot take: the built-in ones and Inception's.
pub fn reserved(name: &str) -> bool {
    name == REFERENCE || name == RANDOM || is_inception(name)
}

/// Whether `--evaluator` / `eval.evaluator` names pytorch-fid's Inception-v3 ("inception",
/// or its stored name).
pub fn is_inception(name: &str) -> bool {
    name == "inception" || name == inception::store::NAME
}

/// The extractor `name` for `channels` × `size` images: Inception-v3 (imported under
/// `dir`; `quantize` rounds images to 8 bits first), [`RANDOM`], [`REFERENCE`] or a
/// trained classifier stored under `dir`.
pub fn open(
    dir: &Path,
    name: &str,
    channels: usize,
    size: usize,
    quantize: bool,
) -> Result<Box<dyn Extractor>> {
    if is_inception(name) {
        if channels != 1 && channels != 3 {
            return Err(Error::Config(format!(
                "Inception scores 1- or 3-channel images, these have {channels}"
            )));
        }
        return Ok(Box::new(inception::Inception::open(dir, quantize)?));
    }
    Ok(Box::new(Evaluator::open(dir, name, channels, size)?))
}

/// Where evaluators are stored (`$GANKIT_HOME`, else `~/.local/share/gankit`).
pub use crate::fsutil::home;

/// The weights path of the evaluator for `dataset` under `dir`.
pub fn weights_path(dir: &Path, dataset: &str) -> PathBuf {
    dir.join("evaluators")
        .join(format!("{dataset}.safetensors"))
}

impl Evaluator {
    /// A fresh, untrained evaluator.
    pub fn new(
        dataset: &str,
        classes: usize,
        channels: usize,
        size: usize,
        seed: u64,
    ) -> Result<Self> {
        if size % 4 != 0 {
            return Err(Error::Config(format!(
                "the evaluator needs an image size divisible by 4, got {size}"
            )));
        }
        let params = ParamStore::new(Rng::new(seed, 21), &Device::Cpu);
        let net = classifier(channels, size, classes, params.var_builder())?;
        Ok(Evaluator {
            net,
            params,
            info: EvaluatorInfo {
                dataset: dataset.to_string(),
                classes,
                channels,
                size,
                test_accuracy: 0.0,
                sha256: String::new(),
                epochs: 0,
                seed,
                version: env!("CARGO_PKG_VERSION").to_string(),
                provenance: None,
            },
        })
    }

    /// Save weights and info under `dir` (see [`weights_path`]); returns the weights path.
    pub fn save(&mut self, dir: &Path) -> Result<PathBuf> {
        let path = weights_path(dir, &self.info.dataset);
        let parent = path.parent().expect("weights path has a parent");
        std::fs::create_dir_all(parent).at(parent)?;
        self.params.save(&path)?;
        let bytes = std::fs::read(&path).at(&path)?;
        self.info.sha256 = hex(&Sha256::digest(&bytes));
        let json = serde_json::to_string_pretty(&self.info).expect("info serialises");
        crate::fsutil::write_atomic(&path.with_extension("json"), json.as_bytes())?;
        Ok(path)
    }

    /// The fallback extractor for `channels` × `size` images: the classifier, untrained,
    /// from a fixed seed. Its hash covers its weights.
    pub fn random(channels: usize, size: usize) -> Result<Evaluator> {
        let mut ev = Evaluator::new(RANDOM, 10, channels, size, 0)?;
        let mut h = Sha256::new();
        for (name, t) in ev.params.vars() {
            h.update(name.as_bytes());
            for v in t.flatten_all()?.to_vec1::<f32>()? {
                h.update(v.to_le_bytes());
            }
        }
        ev.info.sha256 = hex(&h.finalize());
        Ok(ev)
    }

    /// The evaluator `name` for `channels` × `size` images: [`RANDOM`], or a trained one
    /// loaded from `dir`.
    pub fn open(dir: &Path, name: &str, channels: usize, size: usize) -> Result<Evaluator> {
        let ev = match name {
            RANDOM => Evaluator::random(channels, size)?,
            REFERENCE => Evaluator::reference()?,
            _ => Evaluator::load(dir, name)?,
        };
        if (ev.info.channels, ev.info.size) != (channels, size) {
            return Err(Error::Config(format!(
                "the {name} evaluator scores {}×{}×{} images, these are {channels}×{size}×{size}",
                ev.info.channels, ev.info.size, ev.info.size
            )));
        }
        Ok(ev)
    }

    /// The reference Fashion-MNIST evaluator ([`REFERENCE`]) from the weights built into
    /// gankit, its hash checked.
    pub fn reference() -> Result<Evaluator> {
        let info: EvaluatorInfo =
            serde_json::from_str(REFERENCE_INFO).expect("the built-in info parses");
        let sha = hex(&Sha256::digest(REFERENCE_WEIGHTS));
        assert_eq!(
            sha, REFERENCE_SHA256,
            "the built-in weights are the reference"
        );
        assert_eq!(
            info.sha256, REFERENCE_SHA256,
            "the built-in info names them"
        );
        let ev = Evaluator::new(REFERENCE, info.classes, info.channels, info.size, info.seed)?;
        let map =
            crate::checkpoint::decode_safetensors(REFERENCE_WEIGHTS, REFERENCE, &Device::Cpu)?;
        ev.params.assign(&map, REFERENCE)?;
        Ok(Evaluator { info, ..ev })
    }

    /// Load the evaluator of `dataset` from `dir`, checking its hash.
    pub fn load(dir: &Path, dataset: &str) -> Result<Evaluator> {
        let path = weights_path(dir, dataset);
        if !path.is_file() {
            return Err(Error::Run(format!(
                "no evaluator named {dataset} in {}: train one with `gankit evaluator train --name {dataset}` (the built-in ones are {REFERENCE} and {RANDOM})",
                path.parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
        let jp = path.with_extension("json");
        let text = std::fs::read_to_string(&jp).at(&jp)?;
        let info: EvaluatorInfo = serde_json::from_str(&text)
            .map_err(|e| Error::Run(format!("{} is damaged: {e}", jp.display())))?;
        let sane = (info.channels == 1 || info.channels == 3)
            && (4..=1024).contains(&info.size)
            && info.size % 4 == 0
            && (1..=1000).contains(&info.classes);
        if !sane {
            return Err(Error::Run(format!(
                "{} describes {} classes of {}×{}×{} images, which no evaluator has: it is damaged; train the evaluator again",
                jp.display(),
                info.classes,
                info.channels,
                info.size,
                info.size
            )));
        }
        let bytes = std::fs::read(&path).at(&path)?;
        if hex(&Sha256::digest(&bytes)) != info.sha256 {
            return Err(Error::Run(format!(
                "{} does not match the hash in {}",
                path.display(),
                jp.display()
            )));
        }
        let mut ev = Evaluator::new(dataset, info.classes, info.channels, info.size, info.seed)?;
        ev.params.load(&path)?;
        ev.info = info;
        Ok(ev)
    }

    /// Features (n, 128) and class probabilities (n, classes) of `n` images (n, C, H, W) in
    /// [-1, 1], in evaluation mode, in batches.
    pub fn features(&self, images: &[f32], n: usize) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
        let (c, s) = (self.info.channels, self.info.size);
        let per = c * s * s;
        if images.len() != n * per {
            return Err(Error::Data(format!(
                "the evaluator expects images of {c}×{s}×{s}; got {} values for {n} images",
                images.len()
            )));
        }
        let mut feats = Vec::with_capacity(n * FEATURES);
        let mut probs = Vec::with_capacity(n * self.info.classes);
        for start in (0..n).step_by(500) {
            let b = (n - start).min(500);
            let x = Tensor::from_slice(
                &images[start * per..(start + b) * per],
                (b, c, s, s),
                &Device::Cpu,
            )?;
            let (f, logits) = self.net.forward(&x, &mut Mode::Eval)?;
            feats.extend(f.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
            let p = candle_nn::ops::softmax(&logits, 1)?;
            probs.extend(p.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
        }
        Ok((
            DMatrix::from_row_slice(n, FEATURES, &feats),
            DMatrix::from_row_slice(n, self.info.classes, &probs),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure the README gives for the reference evaluator: its accuracy on the 10,000
    /// Fashion-MNIST test images (the split gankit embeds).
    const REFERENCE_ACCURACY: f64 = 0.9214;

    #[test]
    fn the_reference_evaluator_is_the_shipped_one_with_its_accuracy() {
        let ev = Evaluator::reference().unwrap();
        assert_eq!(ev.hash(), REFERENCE_SHA256);
        assert_eq!(ev.info.sha256, REFERENCE_SHA256);
        assert_eq!(ev.name(), REFERENCE);
        let cfg = crate::config::DataConfig {
            split: crate::config::Split::Test,
            ..Default::default()
        };
        let (images, labels) = crate::data::fashion::embedded().unwrap();
        let test = crate::data::load(&cfg).unwrap();
        assert_eq!(
            (test.len, images.dims[0], labels.dims[0]),
            (10_000, 10_000, 10_000)
        );
        let acc = accuracy(&ev, &test).unwrap();
        // Kernel changes may move a borderline image or two, never more.
        assert!(
            (acc - REFERENCE_ACCURACY).abs() <= 2e-4,
            "accuracy {acc}, the README says {REFERENCE_ACCURACY}"
        );
        assert_eq!(ev.info.test_accuracy, REFERENCE_ACCURACY);
    }

    #[test]
    fn fashion_mnist_is_scored_by_the_reference_and_its_name_is_reserved() {
        use crate::config::{DataConfig, DatasetKind};
        assert_eq!(default_for(&DataConfig::default()), REFERENCE);
        let idx = DataConfig {
            dataset: DatasetKind::Idx,
            path: Some("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz".into()),
            ..Default::default()
        };
        assert_eq!(default_for(&idx), REFERENCE);
        assert!(reserved(REFERENCE) && reserved(RANDOM) && !reserved("fashion-mnist"));
        assert!(reserved("inception") && reserved(inception::store::NAME));
        let e = Evaluator::open(Path::new("/nonexistent"), "kmnist", 1, 28)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("gankit evaluator train --name kmnist"), "{e}");
    }
}
