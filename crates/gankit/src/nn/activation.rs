//! Activations and dropout, from differentiable tensor ops.

use candle_core::{Result, Tensor};

use super::Mode;

/// LeakyReLU: x for x > 0, `slope`·x otherwise.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    crate::kernels::leaky_relu(x, slope)
}

/// Inverted dropout: in training, zero each value with probability `p` and scale the rest by
/// 1 / (1 − p); the identity in evaluation. Masks come from the step's seeded RNG.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    pub p: f32,
}

impl Dropout {
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        match mode {
            Mode::Train(rng) if self.p > 0.0 => {
                let keep = 1.0 - self.p;
                let mask: Vec<f32> = rng
                    .uniform_vec(x.elem_count(), 0.0, 1.0)
                    .into_iter()
                    .map(|u| if u < keep { 1.0 / keep } else { 0.0 })
                    .collect();
                let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
                x * mask
            }
            _ => Ok(x.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::Device;

    #[test]
    fn leaky_relu_values() {
        let x = Tensor::new(&[-2f32, 0.0, 3.0], &Device::Cpu).unwrap();
        let y = leaky_relu(&x, 0.2).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y, vec![-0.4, 0.0, 3.0]);
    }

    #[test]
    fn dropout_keeps_the_mean_and_is_identity_in_eval() {
        let x = Tensor::ones(20000, candle_core::DType::F32, &Device::Cpu).unwrap();
        let d = Dropout { p: 0.3 };
        let mut rng = Rng::new(0, 0);
        let y = d.forward(&x, &mut Mode::Train(&mut rng)).unwrap();
        let mean = y.mean_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        let y = d.forward(&x, &mut Mode::Eval).unwrap();
        assert_eq!(y.sum_all().unwrap().to_scalar::<f32>().unwrap(), 20000.0);
    }
}
