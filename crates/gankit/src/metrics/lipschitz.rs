//! Tracking the discriminator's Lipschitz constant (report 004 §3.2).
//!
//! The upper bound is the product of the spectral norms of D's linear and convolution
//! weights, each found by power iteration, a convolution kernel (out, in, kh, kw) reshaped to
//! (out, in·kh·kw) as in the report (activations such as LeakyReLU are 1-Lipschitz and drop
//! out; normalisation layers are not counted). Beside it, the empirical max ‖∇x D(x)‖ on
//! real–fake interpolates, a lower estimate of the same constant.

use candle_core::{D, DType, Tensor, Var};
use nalgebra::{DMatrix, DVector};

use crate::Result;
use crate::models::Discriminator;
use crate::nn::{Mode, ParamStore};
use crate::objectives::penalty::interpolate;
use crate::rng::Rng;

/// The largest singular value of `w` (out, in) by `iters` steps of power iteration from a
/// seeded start vector.
pub fn spectral_norm(w: &DMatrix<f64>, iters: usize, seed: u64) -> f64 {
    let mut rng = Rng::new(seed, 11);
    let mut v = DVector::from_vec(
        rng.normal_vec(w.ncols(), 0.0, 1.0)
            .into_iter()
            .map(f64::from)
            .collect(),
    );
    v /= v.norm().max(1e-300);
    let mut sigma = 0.0;
    for _ in 0..iters.max(1) {
        let u = w * &v;
        let un = u.norm();
        if un == 0.0 {
            return 0.0;
        }
        let wt_u = w.transpose() * (u / un);
        sigma = wt_u.norm();
        v = wt_u / sigma;
    }
    sigma
}

/// A weight tensor as the matrix report 004 §3.2 takes the spectral norm of: (out, everything else).
fn as_matrix(t: &Tensor) -> Result<DMatrix<f64>> {
    let out = t.dim(0)?;
    let flat = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok(DMatrix::from_row_slice(out, flat.len() / out, &flat))
}

/// Product of the spectral norms of every linear / convolution weight (rank 2 or 4, named
/// `*.weight`) in the discriminator's store. A spectrally normalised layer (one with a
/// `*.weight_u` buffer) computes with W / σ̂, σ̂ = ‖Wᵀu‖ / ‖u‖, and counts as such. A
/// projection discriminator's class embedding (`embed.weight`) is not a layer in the chain
/// and is left out: the bound is that of the unconditional part.
pub fn upper_bound(d_params: &ParamStore, iters: usize) -> Result<f64> {
    let vars = d_params.vars();
    let mut bound = 1.0;
    for (name, var) in d_params.trainable() {
        let layer = name.ends_with(".weight") && !name.starts_with("embed.");
        if layer && matches!(var.rank(), 2 | 4) {
            let w = as_matrix(var.as_tensor())?;
            let mut norm = spectral_norm(&w, iters, 0);
            if let Some(u) = vars.get(&format!("{name}_u")) {
                let u = DVector::from_vec(u.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?);
                norm /= (w.transpose() * &u).norm() / u.norm();
            }
            bound *= norm;
        }
    }
    Ok(bound)
}

/// max over a batch of interpolates of ‖∇x D(x)‖₂ (first-order: no graph is kept).
pub fn max_input_gradient(
    d: &dyn Discriminator,
    real: &Tensor,
    fake: &Tensor,
    labels: Option<&Tensor>,
    rng: &mut Rng,
) -> Result<f64> {
    let n = real.dim(0)?;
    let eps = Tensor::from_vec(rng.uniform_vec(n, 0.0, 1.0), (n, 1, 1, 1), real.device())?
        .to_dtype(real.dtype())?;
    let x = Var::from_tensor(&interpolate(real, fake, &eps)?)?;
    let out = d.forward(&x, labels, &mut Mode::Eval)?;
    let grads = out.logits.sum_all()?.backward()?;
    let Some(g) = grads.get(&x) else {
        return Ok(0.0);
    };
    let norms = g.detach().flatten_from(1)?.sqr()?.sum(D::Minus1)?.sqrt()?;
    Ok(norms.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn power_iteration_matches_the_largest_singular_value() {
        let mut rng = Rng::new(4, 4);
        for (r, c) in [(3, 5), (8, 2), (6, 6), (16, 48)] {
            let w = DMatrix::from_row_slice(
                r,
                c,
                &rng.normal_vec(r * c, 0.0, 1.0)
                    .into_iter()
                    .map(f64::from)
                    .collect::<Vec<_>>(),
            );
            let exact = w.clone().svd(false, false).singular_values.max();
            let est = spectral_norm(&w, 200, 1);
            assert!(
                (est - exact).abs() < 1e-8 * exact,
                "{r}×{c}: {est} vs {exact}"
            );
        }
    }

    #[test]
    fn bound_of_a_linear_critic_equals_its_gradient_norm() {
        // D(x) = w·x (+ b): the bound is ‖w‖ and so is every input gradient.
        let store = ParamStore::new(Rng::new(0, 0), &Device::Cpu);
        let vb = store.var_builder();
        let lin = crate::nn::linear(12, 1, true, crate::nn::dcgan_init(), vb.pp("fc")).unwrap();
        struct Lin(crate::nn::Linear);
        impl Discriminator for Lin {
            fn forward(
                &self,
                x: &Tensor,
                _: Option<&Tensor>,
                _: &mut Mode,
            ) -> candle_core::Result<crate::models::DOutput> {
                use candle_core::Module;
                let f = x.flatten_from(1)?;
                Ok(crate::models::DOutput {
                    logits: self.0.forward(&f)?.squeeze(1)?,
                    features: f,
                })
            }
        }
        let bound = upper_bound(&store, 50).unwrap();
        let w = store.tensors()["fc.weight"]
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap();
        let w = w.to_scalar::<f32>().unwrap() as f64;
        assert!((bound - w).abs() < 1e-6 * w);
        let mut rng = Rng::new(1, 1);
        let real =
            Tensor::from_vec(rng.normal_vec(24, 0.0, 1.0), (2, 3, 2, 2), &Device::Cpu).unwrap();
        let fake =
            Tensor::from_vec(rng.normal_vec(24, 0.0, 1.0), (2, 3, 2, 2), &Device::Cpu).unwrap();
        let g = max_input_gradient(&Lin(lin), &real, &fake, None, &mut rng).unwrap();
        assert!((g - w).abs() < 1e-5 * w, "{g} vs {w}");
    }

    #[test]
    fn a_spectrally_normalised_critic_is_bounded_by_one() {
        let cfg = crate::config::Config::from_toml_str(
            "[model]\nd_width = 4\nd_norm = \"none\"\nspectral_norm = true",
            "t",
            &[],
        )
        .unwrap();
        let store = ParamStore::new(Rng::new(0, 2), &Device::Cpu);
        let d = crate::models::build_discriminator(&cfg, store.var_builder()).unwrap();
        let plain = {
            let mut bound = 1.0;
            for (name, var) in store.trainable() {
                if name.ends_with(".weight") {
                    bound *= spectral_norm(&as_matrix(var.as_tensor()).unwrap(), 100, 0);
                }
            }
            bound
        };
        let x = Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        let mut rng = Rng::new(0, 0);
        for _ in 0..100 {
            d.forward(&x, None, &mut Mode::Train(&mut rng)).unwrap();
        }
        let bound = upper_bound(&store, 100).unwrap();
        assert!(
            (bound - 1.0).abs() < 1e-3,
            "bound {bound} (raw weights: {plain})"
        );
        assert!(plain < 0.5, "the raw weights alone would give {plain}");
    }
}
