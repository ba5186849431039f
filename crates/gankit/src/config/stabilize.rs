//! Config sections of the stabilisation techniques: the generator's weight average, D's
//! input augmentation and instance noise.

use serde::{Deserialize, Serialize};

/// An exponential moving average of G's weights, used for samples and evaluation (`[ema]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmaConfig {
    /// Weight of the old average in each update, in [0, 1); 0 turns the average off.
    /// Typical: 0.999. Default 0.
    pub decay: f64,
    /// Iterations before averaging begins; until then the average copies G. Default 0.
    pub start: u64,
    /// Average the encoder too, in the families that have one (BiGAN, BigBiGAN,
    /// VAE-GAN); `gankit encode` and `reconstruct` then use its average. Default false.
    pub encoder: bool,
}

impl Default for EmaConfig {
    fn default() -> Self {
        EmaConfig {
            decay: 0.0,
            start: 0,
            encoder: false,
        }
    }
}

impl EmaConfig {
    pub fn enabled(&self) -> bool {
        self.decay > 0.0
    }
}

/// Progressive pretraining before the GAN phase (report 001 §4.3, `[pretrain]`): G learns, stage
/// by stage, to map a fixed z per image to that image resized to each stage's side (L1),
/// then D learns to tell real images (1) from stored samples of the pretrained G (0) (MSE).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// Epochs of G's L1 pretraining per stage; 0 = no pretraining. Report 001: 10. Default 0.
    pub g_epochs: usize,
    /// Epochs of D's MSE pretraining on real vs stored pretrained-G samples. Report 001: 10.
    /// Default 0.
    pub d_epochs: usize,
    /// Adam learning rate of both (β = 0.5, 0.999, as the report). Default 0.001.
    pub lr: f64,
    /// Images paired with a z (the first of a seeded shuffle); 0 = all. Default 0.
    pub images: usize,
    /// G's pretraining loss: "l1" (report 001 §4.3) or "perceptual" (report 001 §6 proposes
    /// a feature loss, Johnson et al. 2016): the mean squared difference of the built-in
    /// fashion-mnist-v1 evaluator's features of the stage's output and of the target, both
    /// repeated up to 28×28 — no VGG network is available offline, so 28×28 grayscale data
    /// only. Default "l1".
    pub loss: PretrainLoss,
}

/// G's pretraining loss (`pretrain.loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PretrainLoss {
    L1,
    Perceptual,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            g_epochs: 0,
            d_epochs: 0,
            lr: 1e-3,
            images: 0,
            loss: PretrainLoss::L1,
        }
    }
}

impl PretrainConfig {
    pub fn enabled(&self) -> bool {
        self.g_epochs > 0 || self.d_epochs > 0
    }
}

/// One DiffAugment transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AugmentOp {
    /// Brightness, saturation and contrast.
    Color,
    Translation,
    Cutout,
}

impl AugmentOp {
    pub fn name(self) -> &'static str {
        match self {
            AugmentOp::Color => "color",
            AugmentOp::Translation => "translation",
            AugmentOp::Cutout => "cutout",
        }
    }
}

/// A DiffAugment policy: transforms applied in the order written, each at most once.
/// Written in configs as a comma-separated string ("color,translation,cutout"; "" = off),
/// parsed once, here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AugmentPolicy {
    pub ops: Vec<AugmentOp>,
}

impl AugmentPolicy {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl TryFrom<String> for AugmentPolicy {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let mut ops = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let op = match name {
                "color" => AugmentOp::Color,
                "translation" => AugmentOp::Translation,
                "cutout" => AugmentOp::Cutout,
                other => {
                    return Err(format!(
                        "unknown transform {other:?}; use a comma-separated list of \"color\", \"translation\", \"cutout\""
                    ));
                }
            };
            if ops.contains(&op) {
                return Err(format!("{name:?} is named twice"));
            }
            ops.push(op);
        }
        Ok(AugmentPolicy { ops })
    }
}

impl From<AugmentPolicy> for String {
    fn from(p: AugmentPolicy) -> String {
        let names: Vec<&str> = p.ops.iter().map(|o| o.name()).collect();
        names.join(",")
    }
}

/// DiffAugment (Zhao et al. 2020) on every input of D, real and fake, in both steps
/// (`[augment]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Comma-separated transforms, applied in the order written: "color" (brightness,
    /// saturation, contrast), "translation", "cutout"; "" turns augmentation off.
    /// Default "".
    pub policy: AugmentPolicy,
    /// Largest shift of "translation", as a fraction of the image side. Default 0.125.
    pub translation: f64,
    /// Side of the square "cutout" erases, as a fraction of the image side. Default 0.5.
    pub cutout: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            policy: AugmentPolicy::default(),
            translation: 0.125,
            cutout: 0.5,
        }
    }
}

/// Gaussian noise added to D's inputs, its standard deviation annealed linearly to 0
/// (`[instance_noise]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceNoiseConfig {
    /// Standard deviation at the first iteration (images are in [-1, 1]); 0 = off. Default 0.
    pub std: f64,
    /// Iterations over which it falls to 0; 0 = all of `train.steps`. Default 0.
    pub anneal_steps: u64,
}

impl Default for InstanceNoiseConfig {
    fn default() -> Self {
        InstanceNoiseConfig {
            std: 0.0,
            anneal_steps: 0,
        }
    }
}
