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

/// InfoGAN (Chen et al. 2016; report 003 §4): the latent is noise z′ joined to one
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
