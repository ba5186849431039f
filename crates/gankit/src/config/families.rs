//! Config sections of the model families beyond the plain GAN.

use serde::{Deserialize, Serialize};

/// How InfoGAN's Q models its continuous codes (`infogan.sigma`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigmaMode {
    /// σ = 1: the negative log-likelihood is ½(c − μ)² plus a constant (the official
    /// InfoGAN code fixes σ).
    Fixed,
    /// Q also outputs log σ² per code, learned with the likelihood.
    Learned,
}

/// InfoGAN (Chen et al. 2016; report 003 §5.1): the latent is noise z′ joined to one
/// categorical code of `categories` values and `continuous` codes uniform in [−1, 1]; a Q
/// head on D's features predicts them, and the mutual-information lower bound is added
/// to D's (with Q) and G's losses (`[infogan]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfoGanConfig {
    /// Values K of the categorical code. Default 10.
    pub categories: usize,
    /// Number M of continuous codes. Default 2.
    pub continuous: usize,
    /// Weight λ of the categorical term (the paper: 1). Default 1.
    pub lambda_categorical: f64,
    /// Weight λ of the continuous terms (the paper: smaller than the categorical one, so
    /// both have the same scale). Default 0.1.
    pub lambda_continuous: f64,
    /// "fixed" (σ = 1) or "learned". Default "fixed".
    pub sigma: SigmaMode,
    /// Width of Q's hidden layer (the paper: 128). Default 128.
    pub q_hidden: usize,
}

impl Default for InfoGanConfig {
    fn default() -> Self {
        InfoGanConfig {
            categories: 10,
            continuous: 2,
            lambda_categorical: 1.0,
            lambda_continuous: 0.1,
            sigma: SigmaMode::Fixed,
            q_hidden: 128,
        }
    }
}

/// BiGAN (Donahue et al. 2017) and BigBiGAN (Donahue & Simonyan 2019; report 003 §3–§5):
/// the joint discriminator's widths (`[bigan]`, both families).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BiganConfig {
    /// Width of the latent branch H (two layers). Default 512.
    pub latent_width: usize,
    /// Width of the joint layer J. Default 1024.
    pub joint_width: usize,
}

impl Default for BiganConfig {
    fn default() -> Self {
        BiganConfig {
            latent_width: 512,
            joint_width: 1024,
        }
    }
}

/// VAE-GAN (Larsen et al. 2016; report 003 §5.3, `[vaegan]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeganConfig {
    /// γ, the weight of the feature reconstruction against the GAN term in the decoder's
    /// loss (the paper's Algorithm 1: θ_Dec ← −∇(γ L_llike − L_GAN); the paper leaves its
    /// value open, the authors' code weighted reconstruction 1e-6 to 5e-5 against the GAN
    /// term with sums over features as here). Default 1e-3.
    pub gamma: f64,
    /// The block of D whose output the reconstruction is measured in (1 = the first); 0
    /// takes the paper's choice: the third of four conv blocks at 64×64, the last of the
    /// two at 28×28. Default 0.
    pub feature_block: usize,
    /// Weight of the KL divergence to the prior in the encoder's loss (the paper: 1).
    /// Default 1.
    pub kl_weight: f64,
}

impl Default for VaeganConfig {
    fn default() -> Self {
        VaeganConfig {
            gamma: 1e-3,
            feature_block: 0,
            kl_weight: 1.0,
        }
    }
}

/// Progressive growing (`model.arch = "progressive"`; Karras et al. 2018, report 001 §2.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProgressiveConfig {
    /// Images over which each new block is faded in (α from 0 to 1). Default 32000.
    pub fade_images: u64,
    /// Images trained at the base resolution, and at each later one after its fade.
    /// Default 32000.
    pub stable_images: u64,
    /// Append the minibatch standard deviation to D's last block (Karras et al. §3).
    /// Default true.
    pub minibatch_stddev: bool,
    /// Equalised learning rate: weights drawn from N(0, 1) and scaled by He's constant at
    /// every use (Karras et al. §4.1); without it they are drawn with that deviation.
    /// Default true.
    pub equalized_lr: bool,
}

impl Default for ProgressiveConfig {
    fn default() -> Self {
        ProgressiveConfig {
            fade_images: 32_000,
            stable_images: 32_000,
            minibatch_stddev: true,
            equalized_lr: true,
        }
    }
}
