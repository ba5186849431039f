//! Loss functions on discriminator logits, from differentiable tensor ops.

use candle_core::{Result, Tensor};

/// softplus(x) = log(1 + eˣ), computed stably as max(x, 0) + log(1 + e^(−|x|)).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Mean binary cross-entropy of logits against a constant target t ∈ [0, 1]:
/// mean(t · softplus(−x) + (1 − t) · softplus(x)).
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let pos = (softplus(&logits.neg()?)? * target)?;
    let neg = (softplus(logits)? * (1.0 - target))?;
    (pos + neg)?.mean_all()
}

/// Mean of sigmoid(x): the discriminator's average probability of "real".
pub fn mean_sigmoid(logits: &Tensor) -> Result<f64> {
    candle_nn::ops::sigmoid(&logits.detach())?
        .mean_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()
}

#[cfg(test)]
mod tests {
    //! Reference values from PyTorch: scripts/reference_losses.py.
    use super::*;
    use candle_core::{Device, Var};

    const LOGITS: [f32; 6] = [-3.0, -0.5, 0.0, 0.25, 2.0, 40.0];

    #[test]
    fn bce_matches_pytorch_values_and_gradients() {
        // torch.nn.functional.binary_cross_entropy_with_logits(x, full_like(x, t))
        // and its gradient with respect to x; see scripts/reference_losses.py.
        let cases: [(f64, f64, [f64; 6]); 2] = [
            (
                1.0,
                0.903_113_157_872_602,
                [
                    -1.587623545e-01,
                    -1.037432219e-01,
                    -8.333333333e-02,
                    -7.297058319e-02,
                    -1.986715367e-02,
                    0.0,
                ],
            ),
            (
                0.0,
                7.361_446_491_205_935,
                [
                    7.904312196e-03,
                    6.292344480e-02,
                    8.333333333e-02,
                    9.369608348e-02,
                    1.467995130e-01,
                    1.666666667e-01,
                ],
            ),
        ];
        for (target, value, grad) in cases {
            let x = Var::new(&LOGITS, &Device::Cpu).unwrap();
            let loss = bce_with_logits(&x, target).unwrap();
            let v = loss.to_scalar::<f32>().unwrap() as f64;
            assert!((v - value).abs() < 1e-5, "{v} vs {value}");
            let g = loss.backward().unwrap();
            let g = g.get(&x).unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in g.iter().zip(grad) {
                assert!((*a as f64 - b).abs() < 1e-6, "{g:?} vs {grad:?}");
            }
        }
    }

    #[test]
    fn softplus_is_stable_for_large_inputs() {
        let x = Tensor::new(&[-100f32, 100.0], &Device::Cpu).unwrap();
        let y = softplus(&x).unwrap().to_vec1::<f32>().unwrap();
        assert!(y[0] >= 0.0 && y[0] < 1e-30);
        assert_eq!(y[1], 100.0);
    }
}
