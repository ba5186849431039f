//! The joint discriminator of BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017) and
//! BigBiGAN (Donahue & Simonyan 2019): it scores pairs (x, z).
//!
//! - F, the image branch: the discriminator's conv blocks (no score layer) → features fx;
//!   with `scores`, a linear head gives s_x.
//! - H, the latent branch: z → two fully connected layers (LeakyReLU 0.2) → fz; with
//!   `scores`, a linear head gives s_z.
//! - J, the joint branch: [fx, fz] concatenated → one fully connected layer (LeakyReLU
//!   0.2) → s_xz. This is how z enters the discriminator: as a learned embedding joined to
//!   the image features before the joint layers (BigBiGAN's layout; BiGAN's paper joins z
//!   to D's penultimate layer the same way).
//!
//! With spectral norm every layer of F, H and J is spectrally normalised.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::conv_discriminator::ConvDiscriminator;
use crate::config::Config;
use crate::nn::{Linear, Mode, dcgan_init, leaky_relu, linear};

/// The scores of a batch of pairs, each (n).
pub struct JointScores {
    /// F's score of the image alone (BigBiGAN).
    pub s_x: Option<Tensor>,
    /// H's score of the latent alone (BigBiGAN).
    pub s_z: Option<Tensor>,
    /// J's score of the pair.
    pub s_xz: Tensor,
}

pub struct JointDiscriminator {
    image: ConvDiscriminator,
    latent: Vec<Linear>,
    joint: Linear,
    s_x: Option<Linear>,
    s_z: Option<Linear>,
    s_xz: Linear,
}

fn layer(i: usize, o: usize, sn: bool, vb: VarBuilder) -> Result<Linear> {
    let l = linear(i, o, true, dcgan_init(), vb.clone())?;
    if sn {
        l.spectrally_normalised(vb)
    } else {
        Ok(l)
    }
}

/// A joint discriminator for `cfg`'s images and `z_dim` latents: H `latent_width` wide,
/// J `joint_width` wide; `scores` adds the unary heads s_x and s_z (BigBiGAN). Weights under
/// `image.*`, `latent{1,2}`, `joint`, `s_x`, `s_z`, `s_xz`.
pub fn joint_discriminator(
    cfg: &Config,
    z_dim: usize,
    latent_width: usize,
    joint_width: usize,
    scores: bool,
    vb: VarBuilder,
) -> Result<JointDiscriminator> {
    let sn = cfg.model.spectral_norm;
    let image = super::image_body(cfg, cfg.model.d_norm(), sn, vb.pp("image"))?;
    let fx = image.feature_dim();
    Ok(JointDiscriminator {
        latent: vec![
            layer(z_dim, latent_width, sn, vb.pp("latent1"))?,
            layer(latent_width, latent_width, sn, vb.pp("latent2"))?,
        ],
        joint: layer(fx + latent_width, joint_width, sn, vb.pp("joint"))?,
        s_x: scores.then(|| layer(fx, 1, sn, vb.pp("s_x"))).transpose()?,
        s_z: scores
            .then(|| layer(latent_width, 1, sn, vb.pp("s_z")))
            .transpose()?,
        s_xz: layer(joint_width, 1, sn, vb.pp("s_xz"))?,
        image,
    })
}

impl JointDiscriminator {
    /// The scores of pairs (x (n, C, H, W), z (n, z_dim)).
    pub fn forward(&self, x: &Tensor, z: &Tensor, mode: &Mode) -> Result<JointScores> {
        let fx = self.image.features(x, mode)?;
        let mut fz = z.clone();
        for l in &self.latent {
            fz = leaky_relu(&l.forward_t(&fz, mode)?, 0.2)?;
        }
        let j = leaky_relu(
            &self.joint.forward_t(&Tensor::cat(&[&fx, &fz], 1)?, mode)?,
            0.2,
        )?;
        let head = |l: &Option<Linear>, h: &Tensor| -> Result<Option<Tensor>> {
            l.as_ref()
                .map(|l| l.forward_t(h, mode)?.squeeze(1))
                .transpose()
        };
        Ok(JointScores {
            s_x: head(&self.s_x, &fx)?,
            s_z: head(&self.s_z, &fz)?,
            s_xz: self.s_xz.forward_t(&j, mode)?.squeeze(1)?,
        })
    }
}
