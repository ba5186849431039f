//! The adversarial terms of the objectives as plain losses on D's scores, for families that
//! add terms of their own to them (InfoGAN's mutual information, an encoder's losses):
//! the same formulas the GAN family's objectives use, without their steps.

use candle_core::Tensor;

use crate::config::LossKind;
use crate::losses::{bce_with_logits, hinge_d, softplus};
use crate::{Error, Result};

/// The losses these helpers cover: WGAN's and WGAN-GP's critics need clipping or a penalty,
/// which belong to the GAN family's steps.
pub fn check(loss: LossKind, family: &str) -> Result<()> {
    match loss {
        LossKind::Minimax | LossKind::NonSaturating | LossKind::Lsgan | LossKind::Hinge => Ok(()),
        LossKind::Wgan | LossKind::WganGp => Err(Error::Config(format!(
            "model.family = \"{family}\" trains with train.loss = \"non-saturating\", \"minimax\", \"lsgan\" or \"hinge\"; the Wasserstein critics need the gan family"
        ))),
    }
}

/// D's loss on its scores of real and generated images (raw logits / critic values).
pub fn d_loss(loss: LossKind, real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    Ok(match loss {
        LossKind::Minimax | LossKind::NonSaturating => {
            (bce_with_logits(real, 1.0)? + bce_with_logits(fake, 0.0)?)?
        }
        // ½ E[(D(x) − 1)²] + ½ E[D(G(z))²] (Mao et al. 2017; α is the gan family's).
        LossKind::Lsgan => ((((real - 1.0)?.sqr()?.mean_all()? + fake.sqr()?.mean_all()?)?) * 0.5)?,
        LossKind::Hinge => hinge_d(real, fake)?,
        LossKind::Wgan | LossKind::WganGp => unreachable!("refused by check"),
    })
}

/// G's loss on D's scores of generated images.
pub fn g_loss(loss: LossKind, fake: &Tensor) -> Result<Tensor> {
    Ok(match loss {
        LossKind::NonSaturating => bce_with_logits(fake, 1.0)?,
        LossKind::Minimax => softplus(fake)?.mean_all()?.neg()?,
        LossKind::Lsgan => ((fake - 1.0)?.sqr()?.mean_all()? * 0.5)?,
        LossKind::Hinge => fake.mean_all()?.neg()?,
        LossKind::Wgan | LossKind::WganGp => unreachable!("refused by check"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Each loss at logits (2, −1) real and (0.5, −3) fake, by hand.
    #[test]
    fn each_loss_has_its_formula() {
        let d = Device::Cpu;
        let real = Tensor::new(&[2f64, -1.0], &d).unwrap();
        let fake = Tensor::new(&[0.5f64, -3.0], &d).unwrap();
        let sp = |x: f64| (1.0 + x.exp()).ln();
        let v = |t: Tensor| t.to_scalar::<f64>().unwrap();
        let cases = [
            (
                LossKind::NonSaturating,
                (sp(-2.0) + sp(1.0)) / 2.0 + (sp(0.5) + sp(-3.0)) / 2.0,
                (sp(-0.5) + sp(3.0)) / 2.0,
            ),
            (
                LossKind::Minimax,
                (sp(-2.0) + sp(1.0)) / 2.0 + (sp(0.5) + sp(-3.0)) / 2.0,
                -(sp(0.5) + sp(-3.0)) / 2.0,
            ),
            (
                LossKind::Lsgan,
                0.5 * ((1.0 + 4.0) / 2.0 + (0.25 + 9.0) / 2.0),
                0.5 * (0.25 + 16.0) / 2.0,
            ),
            (LossKind::Hinge, (0.0 + 2.0) / 2.0 + (1.5 + 0.0) / 2.0, 1.25),
        ];
        for (kind, want_d, want_g) in cases {
            let got_d = v(d_loss(kind, &real, &fake).unwrap());
            let got_g = v(g_loss(kind, &fake).unwrap());
            assert!(
                (got_d - want_d).abs() < 1e-12,
                "{kind:?} D: {got_d} vs {want_d}"
            );
            assert!(
                (got_g - want_g).abs() < 1e-12,
                "{kind:?} G: {got_g} vs {want_g}"
            );
        }
        assert!(check(LossKind::WganGp, "infogan").is_err());
    }
}
