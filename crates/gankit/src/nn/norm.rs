//! Layer normalisation for critics, and the choice between batch, layer and no norm.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::{BatchNorm, Mode, batch_norm};
use crate::config::Norm;

/// Layer norm over each sample's (C, H, W) values with a per-channel scale and shift, as in
/// TensorFlow's `layer_norm` on NHWC maps that report 000's WGAN-GP critic used. The
/// normalisation, scale, shift and the activation after them are gankit's one differentiable
/// kernel (candle-nn's fused layer norm has no backward pass).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f64,
}

pub fn layer_norm(channels: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm {
        gamma: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
        beta: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
        eps: 1e-5,
    })
}

impl LayerNorm {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_activated(x, 1.0)
    }

    /// [`LayerNorm::forward_activated`] with the map from an upstream gradient to the input
    /// gradient of this evaluation (CPU kernels only; None elsewhere).
    pub fn forward_traced(
        &self,
        x: &Tensor,
        slope: f64,
    ) -> Result<Option<(Tensor, crate::kernels::LayerNormInputGrad)>> {
        x.dims4()?;
        crate::kernels::layer_norm_act_traced(x, &self.gamma, &self.beta, self.eps, slope)
    }

    /// [`LayerNorm::forward`] then LeakyReLU with negative-side `slope`, as one op.
    pub fn forward_activated(&self, x: &Tensor, slope: f64) -> Result<Tensor> {
        x.dims4()?;
        crate::kernels::layer_norm_act(x, &self.gamma, &self.beta, self.eps, slope)
    }
}

/// A normalisation layer chosen by config.
#[derive(Clone, Debug)]
pub enum Norm2d {
    Batch(BatchNorm),
    Layer(LayerNorm),
    None,
}

/// The normalisation `kind` over `channels`, weights under `vb` (named `bn*` / `ln*` by the
/// caller).
pub fn norm2d(kind: Norm, channels: usize, vb: VarBuilder) -> Result<Norm2d> {
    Ok(match kind {
        Norm::Batch | Norm::Auto => Norm2d::Batch(batch_norm(channels, Default::default(), vb)?),
        Norm::Layer => Norm2d::Layer(layer_norm(channels, vb)?),
        Norm::None => Norm2d::None,
    })
}

impl Norm2d {
    pub fn forward(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        match self {
            Norm2d::Batch(bn) => bn.forward(x, mode),
            Norm2d::Layer(ln) => ln.forward(x),
            Norm2d::None => Ok(x.clone()),
        }
    }

    /// [`Norm2d::forward`] then LeakyReLU with negative-side `slope` (one fused op for batch
    /// and layer norm on the CPU).
    pub fn forward_activated(&self, x: &Tensor, slope: f64, mode: &Mode) -> Result<Tensor> {
        match self {
            Norm2d::Batch(bn) => bn.forward_activated(x, slope, mode),
            Norm2d::Layer(ln) => ln.forward_activated(x, slope),
            Norm2d::None => super::leaky_relu(&self.forward(x, mode)?, slope),
        }
    }

    /// The weight-name prefix of this kind ("bn", "ln" or "" for none).
    pub fn prefix(kind: Norm) -> &'static str {
        match kind {
            Norm::Batch | Norm::Auto => "bn",
            Norm::Layer => "ln",
            Norm::None => "norm",
        }
    }
}

#[cfg(test)]
mod tests {
    //! Reference values from PyTorch: scripts/reference_norms.py.
    use super::*;
    use crate::nn::ParamStore;
    use crate::rng::Rng;
    use candle_core::Device;

    #[test]
    fn layer_norm_matches_pytorch_group_norm_with_one_group() {
        // torch.nn.functional.group_norm(x, 1) on x = arange(24).reshape(2, 3, 2, 2) ** 1.5
        let x: Vec<f32> = (0..24).map(|i| (i as f32).powf(1.5)).collect();
        let x = Tensor::from_vec(x, (2, 3, 2, 2), &Device::Cpu).unwrap();
        let store = ParamStore::new(Rng::new(0, 0), &Device::Cpu);
        let ln = layer_norm(3, store.var_builder()).unwrap();
        let y = ln
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let got: Vec<f32> = y[..4].iter().chain(&y[20..]).copied().collect();
        for (g, want) in got.iter().zip(REF) {
            assert!((g - want).abs() < 1e-5, "{got:?} vs {REF:?}");
        }
    }

    const REF: [f32; 8] = [
        -1.2612990, -1.1768159, -1.0223447, -0.8223119, 0.7013334, 1.0154753, 1.3371888, 1.6662996,
    ];
}
