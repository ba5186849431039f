//! D's targets under label smoothing (report 001, Salimans et al. 2016).

use candle_core::{Device, Tensor};

use crate::config::{Config, LabelSmoothing, LossKind};
use crate::rng::Rng;
use crate::{Error, Result};

/// Smoothing applies to the losses on targets: the BCE ones and least squares; Salimans'
/// real targets reach 1.2, which only least squares accepts.
pub fn check(cfg: &Config) -> Result<()> {
    let (smoothing, loss) = (cfg.train.label_smoothing, cfg.train.loss);
    if smoothing == LabelSmoothing::Salimans && loss != LossKind::Lsgan {
        return Err(Error::Config(
            "train.label_smoothing = \"salimans\" draws real targets up to 1.2, which only the least-squares loss accepts: use it with train.loss = \"lsgan\", or use \"one-sided\"".into(),
        ));
    }
    if smoothing != LabelSmoothing::None && !(loss.is_bce() || loss == LossKind::Lsgan) {
        return Err(Error::Config(
            "train.label_smoothing applies to the minimax, non-saturating and lsgan losses only"
                .into(),
        ));
    }
    Ok(())
}

/// Per-sample targets for real and fake batches.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    smoothing: LabelSmoothing,
}

impl Targets {
    pub fn new(smoothing: LabelSmoothing) -> Self {
        Targets { smoothing }
    }

    /// Targets for `n` real images: 1; 0.9 one-sided; U[0.7, 1.2] Salimans.
    pub fn real(&self, n: usize, rng: &mut Rng, dev: &Device) -> Result<Tensor> {
        let v = match self.smoothing {
            LabelSmoothing::None => vec![1.0; n],
            LabelSmoothing::OneSided => vec![0.9; n],
            LabelSmoothing::Salimans => rng.uniform_vec(n, 0.7, 1.2),
        };
        Ok(Tensor::from_vec(v, n, dev)?)
    }

    /// Targets for `n` fake images: 0, or U[0, 0.3] Salimans.
    pub fn fake(&self, n: usize, rng: &mut Rng, dev: &Device) -> Result<Tensor> {
        let v = match self.smoothing {
            LabelSmoothing::Salimans => rng.uniform_vec(n, 0.0, 0.3),
            _ => vec![0.0; n],
        };
        Ok(Tensor::from_vec(v, n, dev)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor) -> Vec<f32> {
        t.to_vec1::<f32>().unwrap()
    }

    #[test]
    fn salimans_targets_stay_in_their_ranges() {
        let t = Targets::new(LabelSmoothing::Salimans);
        let mut rng = Rng::new(5, 0);
        let real = values(t.real(5000, &mut rng, &Device::Cpu).unwrap());
        let fake = values(t.fake(5000, &mut rng, &Device::Cpu).unwrap());
        assert!(real.iter().all(|v| (0.7..1.2).contains(v)));
        assert!(fake.iter().all(|v| (0.0..0.3).contains(v)));
        // They are spread over the range, not constant.
        assert!(real.iter().any(|v| *v < 0.8) && real.iter().any(|v| *v > 1.1));
    }

    #[test]
    fn one_sided_and_none() {
        let mut rng = Rng::new(5, 0);
        let t = Targets::new(LabelSmoothing::OneSided);
        assert_eq!(
            values(t.real(2, &mut rng, &Device::Cpu).unwrap()),
            vec![0.9, 0.9]
        );
        assert_eq!(
            values(t.fake(2, &mut rng, &Device::Cpu).unwrap()),
            vec![0.0, 0.0]
        );
        let t = Targets::new(LabelSmoothing::None);
        assert_eq!(
            values(t.real(1, &mut rng, &Device::Cpu).unwrap()),
            vec![1.0]
        );
    }
}
