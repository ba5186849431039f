//! Spectral normalisation (Miyato et al. 2018): a layer uses W / σ(W), with σ(W) the largest
//! singular value of W seen as a matrix (out, everything else), estimated by one step of
//! power iteration per training forward pass from a persistent vector u.
//!
//! u is a buffer (`<layer>.weight_u`): saved in checkpoints with the weights, never trained.
//! As in PyTorch, u and v are constants of the graph; σ = uᵀ W v keeps W's gradient, so the
//! layer stays differentiable to every order (WGAN-GP's second backward goes through it).

use candle_core::{Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::Mode;

/// Added to norms before dividing (PyTorch's default).
const EPS: f64 = 1e-12;

/// The persistent power-iteration state of one spectrally normalised weight.
#[derive(Clone, Debug)]
pub struct SpectralNorm {
    u: Var,
}

/// Spectral normalisation for a weight with `out` rows; u ~ N(0, 1) is stored as
/// `weight_u` under `vb`.
pub fn spectral_norm(out: usize, vb: VarBuilder) -> Result<SpectralNorm> {
    let u = vb.get_with_hints(
        out,
        "weight_u",
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
    )?;
    // The store hands out the variable's own tensor, so this wraps the stored state.
    Ok(SpectralNorm {
        u: Var::from_tensor(&u)?,
    })
}

/// x / (‖x‖ + ε) for a vector.
fn normalise(x: &Tensor) -> Result<Tensor> {
    let n = (x.sqr()?.sum_all()?.sqrt()? + EPS)?;
    x.broadcast_div(&n)
}

/// uᵀ m v, a scalar.
fn bilinear(u: &Tensor, m: &Tensor, v: &Tensor) -> Result<Tensor> {
    u.unsqueeze(0)?
        .matmul(m)?
        .matmul(&v.unsqueeze(1)?)?
        .reshape(())
}

impl SpectralNorm {
    /// W / σ(W). In training mode one power-iteration step first moves u towards W's top
    /// left singular vector (and stores it); in evaluation mode u is only read.
    pub fn apply(&self, w: &Tensor, mode: &Mode) -> Result<Tensor> {
        let m = w.flatten_from(1)?;
        let (u, v) = self.vectors(&m, mode.is_train())?;
        w.broadcast_div(&bilinear(&u, &m, &v)?)
    }

    /// The singular-vector estimates (u, v) for the matrix `m` (out, in), outside the graph.
    fn vectors(&self, m: &Tensor, update: bool) -> Result<(Tensor, Tensor)> {
        let m = m.detach();
        let u = normalise(self.u.as_tensor())?;
        let v = normalise(&m.t()?.matmul(&u.unsqueeze(1)?)?.squeeze(1)?)?;
        if !update {
            return Ok((u, v));
        }
        let u = normalise(&m.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)?;
        self.u.set(&u)?;
        Ok((u, v))
    }

    /// The current estimate of σ(W) (no update), for reports.
    pub fn sigma(&self, w: &Tensor) -> Result<f64> {
        let m = w.flatten_from(1)?.detach();
        let (u, v) = self.vectors(&m, false)?;
        bilinear(&u, &m, &v)?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ParamStore;
    use crate::rng::Rng;
    use candle_core::{DType, Device};
    use nalgebra::DMatrix;

    fn matrix(rows: usize, cols: usize, seed: u64) -> Tensor {
        let v = Rng::new(seed, 0).normal_vec(rows * cols, 0.0, 1.0);
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    /// The largest singular value by nalgebra's exact SVD.
    fn exact_sigma(w: &Tensor) -> f64 {
        let (r, c) = w.dims2().unwrap();
        let v = w
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let m = DMatrix::from_row_slice(r, c, &v);
        m.svd(false, false).singular_values.max()
    }

    fn largest_singular_value(t: &Tensor) -> f64 {
        exact_sigma(&t.flatten_from(1).unwrap())
    }

    #[test]
    fn power_iteration_converges_to_the_exact_singular_value() {
        for (i, (r, c)) in [(3, 5), (8, 8), (16, 4), (1, 7)].into_iter().enumerate() {
            let store = ParamStore::new(Rng::new(i as u64, 1), &Device::Cpu);
            let sn = spectral_norm(r, store.var_builder()).unwrap();
            let w = matrix(r, c, i as u64 + 10);
            let mut rng = Rng::new(0, 0);
            for _ in 0..200 {
                sn.apply(&w, &Mode::Train(&mut rng)).unwrap();
            }
            let exact = exact_sigma(&w);
            let est = sn.sigma(&w).unwrap();
            assert!(
                (est - exact).abs() < 1e-4 * exact,
                "{r}×{c}: {est} vs {exact}"
            );
            let normalised = sn.apply(&w, &Mode::Eval).unwrap();
            let s = exact_sigma(&normalised);
            assert!((s - 1.0).abs() < 1e-4, "{r}×{c}: σ(W/σ̂) = {s}");
        }
    }

    #[test]
    fn conv_weights_are_normalised_as_out_by_rest_and_u_is_a_buffer() {
        let store = ParamStore::new(Rng::new(3, 1), &Device::Cpu);
        let sn = spectral_norm(4, store.var_builder().pp("conv1")).unwrap();
        assert!(store.trainable().is_empty(), "weight_u is not trained");
        assert!(store.vars().contains_key("conv1.weight_u"));
        let w = matrix(4, 3 * 3 * 3, 5).reshape((4, 3, 3, 3)).unwrap();
        let mut rng = Rng::new(0, 0);
        for _ in 0..100 {
            sn.apply(&w, &Mode::Train(&mut rng)).unwrap();
        }
        let out = sn.apply(&w, &Mode::Eval).unwrap();
        assert_eq!(out.dims(), w.dims());
        assert!((largest_singular_value(&out) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn evaluation_leaves_u_alone_and_training_moves_it() {
        let store = ParamStore::new(Rng::new(3, 1), &Device::Cpu);
        let sn = spectral_norm(5, store.var_builder()).unwrap();
        let w = matrix(5, 6, 2);
        let u0 = sn.u.as_tensor().to_vec1::<f32>().unwrap();
        sn.apply(&w, &Mode::Eval).unwrap();
        assert_eq!(sn.u.as_tensor().to_vec1::<f32>().unwrap(), u0);
        sn.apply(&w, &Mode::Train(&mut Rng::new(0, 0))).unwrap();
        assert_ne!(sn.u.as_tensor().to_vec1::<f32>().unwrap(), u0);
    }

    #[test]
    fn gradient_flows_to_the_weight_through_sigma() {
        // d/dW Σ (W/σ) · R with u, v constant: checked against central differences in f64.
        let store = ParamStore::new(Rng::new(1, 1), &Device::Cpu);
        let sn = spectral_norm(3, store.var_builder_with(DType::F64)).unwrap();
        let w0 = matrix(3, 4, 7).to_dtype(DType::F64).unwrap();
        let r = matrix(3, 4, 8).to_dtype(DType::F64).unwrap();
        let w = Var::from_tensor(&w0).unwrap();
        let obj = |w: &Tensor| {
            (sn.apply(w, &Mode::Eval).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let g = obj(w.as_tensor()).backward().unwrap();
        let g = g
            .get(&w)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let base = w0.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for i in 0..base.len() {
            let at = |d: f64| {
                let mut p = base.clone();
                p[i] += d;
                let t = Tensor::from_vec(p, (3, 4), &Device::Cpu).unwrap();
                obj(&t).to_scalar::<f64>().unwrap()
            };
            let num = (at(h) - at(-h)) / (2.0 * h);
            assert!((num - g[i]).abs() < 1e-6, "element {i}: {num} vs {}", g[i]);
        }
    }
}
