//! Batch normalisation from plain tensor ops (candle-nn's module is not used: we need the
//! running statistics in our own store, saved in checkpoints, and a differentiable path).

use candle_core::{D, Result, Tensor, Var};
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

    pub fn forward(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
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
