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

/// Mean binary cross-entropy of logits against per-sample targets (same shape).
pub fn bce_with_logits_targets(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let targets = targets.to_dtype(logits.dtype())?;
    let pos = (softplus(&logits.neg()?)? * &targets)?;
    let neg = (softplus(logits)? * (1.0 - targets)?)?;
    (pos + neg)?.mean_all()
}

/// ½ E[(x − target)²], target per sample (least squares, report 001 eqs. 8–10).
pub fn half_mse(x: &Tensor, target: &Tensor) -> Result<Tensor> {
    x.sub(&target.to_dtype(x.dtype())?)?.sqr()?.mean_all()? * 0.5
}

/// The hinge loss of D: E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))].
pub fn hinge_d(real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    let r = (real.neg()? + 1.0)?.relu()?.mean_all()?;
    let f = (fake + 1.0)?.relu()?.mean_all()?;
    r + f
}

/// Feature matching (Salimans et al. 2016, report 002 eq. 9): ‖E f(x) − E f(G(z))‖₂², the
/// means over the batch of D's last hidden features (batch, features).
pub fn feature_matching(real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    let diff = (real.mean(0)? - fake.mean(0)?)?;
    diff.sqr()?.sum_all()
}

/// Mean cross-entropy of logits (n, classes) against integer labels (n, u32), from plain
/// differentiable ops (log-sum-exp with the max subtracted).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
    let picked = shifted.gather(&labels.unsqueeze(1)?, 1)?;
    (lse - picked)?.mean_all()
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
    fn other_losses_match_pytorch_values_and_gradients() {
        // scripts/reference_losses.py: value, then gradient with respect to the first input.
        let x = Var::new(&LOGITS, &Device::Cpu).unwrap();
        let t = Tensor::new(&[0.9f32, 0.0, 1.2, 0.3, 1.0, 0.7], &Device::Cpu).unwrap();
        let other = Tensor::new(&[0.5f32, -1.5, 2.5, -0.25, 0.0, 1.0], &Device::Cpu).unwrap();
        let cases: [(&str, Tensor, f64, [f64; 6]); 4] = [
            (
                "bce targets",
                bce_with_logits_targets(&x, &t).unwrap(),
                REF_BCE_T.0,
                REF_BCE_T.1,
            ),
            ("half mse", half_mse(&x, &t).unwrap(), REF_MSE.0, REF_MSE.1),
            (
                "hinge",
                hinge_d(&x, &other).unwrap(),
                REF_HINGE.0,
                REF_HINGE.1,
            ),
            (
                "feature matching",
                feature_matching(&x.reshape((2, 3)).unwrap(), &other.reshape((2, 3)).unwrap())
                    .unwrap(),
                REF_FM.0,
                REF_FM.1,
            ),
        ];
        for (name, loss, value, grad) in cases {
            let v = loss.to_scalar::<f32>().unwrap() as f64;
            // f32 keeps ~7 significant digits: 1e-5 absolute, scaled for values above 1.
            assert!(
                (v - value).abs() < 1e-5 * value.abs().max(1.0),
                "{name}: {v} vs {value}"
            );
            let g = loss.backward().unwrap();
            let g = g
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (a, b) in g.iter().zip(grad) {
                assert!((*a as f64 - b).abs() < 1e-5, "{name}: {g:?} vs {grad:?}");
            }
        }
    }

    const REF_BCE_T: (f64, [f64; 6]) = (
        2.798_946_491_205_935,
        [
            -1.420956878e-01,
            6.292344480e-02,
            -1.166666667e-01,
            4.369608348e-02,
            -1.986715367e-02,
            5.0e-02,
        ],
    );
    const REF_MSE: (f64, [f64; 6]) = (
        130.199_375,
        [
            -6.5e-01,
            -8.333333333e-02,
            -2.0e-01,
            -8.333333333e-03,
            1.666666667e-01,
            6.55,
        ],
    );
    const REF_HINGE: (f64, [f64; 6]) = (
        2.666_666_666_666_667,
        [
            -1.666666667e-01,
            -1.666666667e-01,
            -1.666666667e-01,
            -1.666666667e-01,
            0.0,
            0.0,
        ],
    );
    const REF_FM: (f64, [f64; 6]) = (337.5625, [-1.5, 1.5, 18.25, -1.5, 1.5, 18.25]);
    const REF_CE: (f64, [f64; 6]) = (
        20.127_298_451_171_143,
        [
            1.502944378e-02,
            1.830961081e-01,
            -1.981255519e-01,
            -0.5,
            0.0,
            0.5,
        ],
    );

    #[test]
    fn cross_entropy_matches_pytorch() {
        // scripts/reference_losses.py: F.cross_entropy on LOGITS as (2, 3), labels [2, 0].
        let x = Var::from_tensor(
            &Tensor::new(&LOGITS, &Device::Cpu)
                .unwrap()
                .reshape((2, 3))
                .unwrap(),
        )
        .unwrap();
        let labels = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let loss = cross_entropy(&x, &labels).unwrap();
        assert!((loss.to_scalar::<f32>().unwrap() as f64 - REF_CE.0).abs() < 1e-5);
        let g = loss
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in g.iter().zip(REF_CE.1) {
            assert!((*a as f64 - b).abs() < 1e-5, "{g:?} vs {:?}", REF_CE.1);
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
