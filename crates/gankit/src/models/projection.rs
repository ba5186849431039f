//! The projection discriminator (Miyato & Koyama 2018) of a conditional GAN: the score of an
//! image x of class y is ψ(φ(x)) + ⟨e_y, φ(x)⟩, where φ(x) are the inner discriminator's
//! last features, ψ its linear output, and e_y a learned embedding of the class
//! (`embed.weight`, classes × features).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::{DOutput, Discriminator};
use crate::nn::{Mode, dcgan_init};

pub struct Projection {
    inner: Box<dyn Discriminator>,
    embed: Tensor,
}

/// Wrap `inner`, whose features have `features` dimensions, for `classes` classes.
pub fn projection(
    inner: Box<dyn Discriminator>,
    classes: usize,
    features: usize,
    vb: VarBuilder,
) -> Result<Projection> {
    let embed = vb
        .pp("embed")
        .get_with_hints((classes, features), "weight", dcgan_init())?;
    Ok(Projection { inner, embed })
}

impl Discriminator for Projection {
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: &mut Mode) -> Result<DOutput> {
        let Some(labels) = labels else {
            candle_core::bail!(
                "the conditional (projection) discriminator needs the images' classes"
            )
        };
        let out = self.inner.forward(x, None, mode)?;
        let e = self.embed.index_select(labels, 0)?;
        let projected = (e * &out.features)?.sum(1)?;
        Ok(DOutput {
            logits: (out.logits + projected)?,
            features: out.features,
        })
    }
}
