//! Batch normalisation from plain tensor ops (candle-nn's module is not used: we need the
//! running statistics in our own store, saved in checkpoints, and a differentiable path).

use candle_core::{D, DType, Result, Tensor, Var};

use crate::kernels::{self, Statistics};
use candle_nn::{Init, VarBuilder};

use super::Mode;

/// Batch-norm hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct BatchNormConfig {
    pub eps: f64,
    /// Weight of the new batch in the running statistics.
    pub momentum: f64,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// Batch normalisation over (N) for 2-D input or (N, H, W) for 4-D input.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
    cfg: BatchNormConfig,
}

/// A batch norm over `channels`, gamma ~ N(1, 0.02) (DCGAN), beta = 0.
pub fn batch_norm(channels: usize, cfg: BatchNormConfig, vb: VarBuilder) -> Result<BatchNorm> {
    let gamma = vb.get_with_hints(
        channels,
        "weight",
        Init::Randn {
            mean: 1.0,
            stdev: 0.02,
        },
    )?;
    let beta = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    let rm = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
    let rv = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
    Ok(BatchNorm {
        gamma,
        beta,
        // The store hands out the variable's own tensor, so these wrap the stored state.
        running_mean: Var::from_tensor(&rm)?,
        running_var: Var::from_tensor(&rv)?,
        cfg,
    })
}

impl BatchNorm {
    fn shape_for(&self, x: &Tensor) -> Result<Vec<usize>> {
        let c = self.gamma.dim(0)?;
        Ok(match x.rank() {
            2 => vec![1, c],
            4 => vec![1, c, 1, 1],
            r => candle_core::bail!("batch norm expects rank 2 or 4 input, got rank {r}"),
        })
    }

    /// Normalise `x` with the batch's statistics (training, updating the running ones) or
    /// with the running statistics (evaluation).
    pub fn forward(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        if kernels::ours(x) {
            self.forward_fused(x, mode, None)
        } else {
            self.forward_composed(x, mode)
        }
    }

    /// [`BatchNorm::forward`] followed by LeakyReLU with negative-side `slope` (ReLU for 0),
    /// in one pass each way on the CPU.
    pub fn forward_activated(&self, x: &Tensor, slope: f64, mode: &Mode) -> Result<Tensor> {
        if kernels::ours(x) {
            self.forward_fused(x, mode, Some(slope))
        } else {
            super::leaky_relu(&self.forward_composed(x, mode)?, slope)
        }
    }

    /// The computation from candle tensor ops (any device).
    fn forward_composed(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        let shape = self.shape_for(x)?;
        let (mean, var) = if mode.is_train() {
            // Per-channel statistics over every axis but 1.
            let c = shape[1];
            let xc = x.transpose(0, 1)?.contiguous()?.reshape((c, ()))?;
            let n = xc.dim(1)?;
            let mean = xc.mean(D::Minus1)?;
            let centred = xc.broadcast_sub(&mean.unsqueeze(1)?)?;
            let var = centred.sqr()?.mean(D::Minus1)?;
            let m = self.cfg.momentum;
            let unbiased = (var.detach() * (n as f64 / (n.max(2) - 1) as f64))?;
            let rm = ((self.running_mean.as_tensor() * (1.0 - m))? + (mean.detach() * m)?)?;
            let rv = ((self.running_var.as_tensor() * (1.0 - m))? + (unbiased * m)?)?;
            self.running_mean.set(&rm)?;
            self.running_var.set(&rv)?;
            (mean, var)
        } else {
            (
                self.running_mean.as_tensor().clone(),
                self.running_var.as_tensor().clone(),
            )
        };
        let mean = mean.reshape(shape.as_slice())?;
        let inv_std = (var + self.cfg.eps)?
            .sqrt()?
            .recip()?
            .reshape(shape.as_slice())?;
        let scale = (self.gamma.reshape(shape.as_slice())? * inv_std)?;
        x.broadcast_sub(&mean)?
            .broadcast_mul(&scale)?
            .broadcast_add(&self.beta.reshape(shape.as_slice())?)
    }
}

impl BatchNorm {
    /// The same computation through gankit's fused CPU kernels, with the activation
    /// `slope` after it when given.
    fn forward_fused(&self, x: &Tensor, mode: &Mode, slope: Option<f64>) -> Result<Tensor> {
        let eps = self.cfg.eps;
        let inv_std = |var: &[f64]| var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        if !mode.is_train() {
            let mean = self.running_mean.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let var = self.running_var.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let stats = Statistics {
                inv_std: inv_std(&var),
                mean,
                batch: false,
            };
            return kernels::normalize(x, &self.gamma, &self.beta, stats, slope);
        }
        let (mean, var) = kernels::channel_moments(x)?;
        let m = self.cfg.momentum;
        let n = x.elem_count() / mean.len().max(1);
        let unbiased = n as f64 / (n.max(2) - 1) as f64;
        let update = |running: &Var, batch: &[f64], scale: f64| -> Result<()> {
            let old = running.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let new: Vec<f64> = old
                .iter()
                .zip(batch)
                .map(|(r, b)| r * (1.0 - m) + b * scale * m)
                .collect();
            let t = Tensor::from_vec(new, old.len(), running.device())?;
            running.set(&t.to_dtype(running.dtype())?)
        };
        update(&self.running_mean, &mean, 1.0)?;
        update(&self.running_var, &var, unbiased)?;
        let stats = Statistics {
            inv_std: inv_std(&var),
            mean,
            batch: true,
        };
        kernels::normalize(x, &self.gamma, &self.beta, stats, slope)
    }
}

#[cfg(test)]
mod tests {
    //! Reference values from PyTorch's BatchNorm2d: scripts/reference_norms.py.
    use super::*;
    use crate::nn::ParamStore;
    use crate::rng::Rng;
    use candle_core::Device;

    fn close(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 1e-4 * w.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn fused_and_composed_paths_agree_with_gradients() {
        use crate::kernels::testing::{max_rel, rand};
        let dtype = candle_core::DType::F32;
        let cases = [&[6usize, 3, 5, 4][..], &[16, 40], &[5, 2, 3, 3]]
            .into_iter()
            .flat_map(|shape| [None, Some(0.0), Some(0.2)].map(|a| (shape, a)));
        for (shape, activation) in cases {
            let c = shape[1];
            let run = |fused: bool| {
                let store = ParamStore::new(Rng::new(7, 0), &Device::Cpu);
                let bn = batch_norm(c, Default::default(), store.var_builder()).unwrap();
                let x = (rand(shape, 1, dtype) * 3.0).unwrap() + 1.0;
                let x = Var::from_tensor(&x.unwrap()).unwrap();
                let mut rng = Rng::new(0, 0);
                let mut outs = vec![];
                for mode in [Mode::Train(&mut rng), Mode::Eval] {
                    // Fused: one op; composed: candle's ops, then the separate activation.
                    let y = if fused {
                        bn.forward_fused(&x, &mode, activation).unwrap()
                    } else {
                        let y = bn.forward_composed(&x, &mode).unwrap();
                        match activation {
                            Some(slope) => crate::nn::leaky_relu(&y, slope).unwrap(),
                            None => y,
                        }
                    };
                    let r = rand(shape, 2, y.dtype());
                    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                    outs.push(y.clone());
                    outs.push(g.get(&x).unwrap().clone());
                    for name in ["weight", "bias"] {
                        outs.push(g.get(&store.vars()[name]).unwrap().clone());
                    }
                }
                for name in ["running_mean", "running_var"] {
                    outs.push(store.vars()[name].as_tensor().clone());
                }
                outs
            };
            let tol = 1e-4;
            for (i, (a, b)) in run(true).iter().zip(run(false)).enumerate() {
                assert!(
                    max_rel(a, &b) < tol,
                    "{shape:?} activation {activation:?} output {i}: {}",
                    max_rel(a, &b)
                );
            }
        }
    }

    #[test]
    fn train_and_eval_match_pytorch() {
        let x: Vec<f32> = (0..24).map(|i| (i as f32).powf(1.5)).collect();
        let x = Tensor::from_vec(x, (2, 3, 2, 2), &Device::Cpu).unwrap();
        let store = ParamStore::new(Rng::new(0, 0), &Device::Cpu);
        let bn = batch_norm(3, Default::default(), store.var_builder()).unwrap();
        let vars = store.vars();
        vars["weight"]
            .set(&Tensor::new(&[1f32, 2.0, 0.5], &Device::Cpu).unwrap())
            .unwrap();
        vars["bias"]
            .set(&Tensor::new(&[0f32, -1.0, 3.0], &Device::Cpu).unwrap())
            .unwrap();
        let mut rng = Rng::new(0, 0);
        let y = bn
            .forward(&x, &Mode::Train(&mut rng))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        close(&y[..4], &[-1.0752621, -1.0338947, -0.9582574, -0.8603108]);
        close(
            &vars["running_mean"].to_vec1::<f32>().unwrap(),
            &[2.5992990, 4.3209618, 6.4612893],
        );
        close(
            &vars["running_var"].to_vec1::<f32>().unwrap(),
            &[67.6845116, 108.2061596, 147.3198873],
        );
        let y = bn
            .forward(&x, &Mode::Eval)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        close(&y[..4], &[-0.3159451, -0.1943950, 0.0278505, 0.3156478]);
    }
}
