//! Linear, convolution and transposed-convolution layers with DCGAN initialisation.

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};

use super::{Mode, SpectralNorm, spectral_norm};
use crate::kernels;

/// DCGAN's weight initialisation: N(0, 0.02).
pub fn dcgan_init() -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    }
}

/// y = x Wᵀ + b, weights `weight` (out, in) and `bias` (out).
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    sn: Option<SpectralNorm>,
}

/// A linear layer `in_dim → out_dim` whose weight is drawn from `init` (bias zero when present).
pub fn linear(
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    init: Init,
    vb: VarBuilder,
) -> candle_core::Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = if bias {
        Some(vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?)
    } else {
        None
    };
    Ok(Linear {
        weight,
        bias,
        sn: None,
    })
}

impl Linear {
    /// A layer from existing tensors (weight (out, in), bias (out)).
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear {
            weight,
            bias,
            sn: None,
        }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Whether the weight is spectrally normalised (its effective value is then computed in
    /// each forward pass).
    pub fn is_spectrally_normalised(&self) -> bool {
        self.sn.is_some()
    }

    /// The same layer with its weight spectrally normalised (u stored under `vb`, which must
    /// be the layer's own path).
    pub fn spectrally_normalised(self, vb: VarBuilder) -> candle_core::Result<Self> {
        let sn = Some(spectral_norm(self.weight.dim(0)?, vb)?);
        Ok(Linear { sn, ..self })
    }

    /// The layer in `mode` (spectral norm's power iteration runs in training mode only).
    pub fn forward_t(&self, x: &Tensor, mode: &Mode) -> candle_core::Result<Tensor> {
        let w = effective_weight(&self.weight, &self.sn, mode)?;
        let y = kernels::matmul(x, &w, false, true)?;
        add_channel_bias(y, &self.bias)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, &Mode::Eval)
    }
}

/// The weight a layer computes with: W, or W / σ(W) under spectral normalisation.
fn effective_weight(
    w: &Tensor,
    sn: &Option<SpectralNorm>,
    mode: &Mode,
) -> candle_core::Result<Tensor> {
    match sn {
        Some(sn) => sn.apply(w, mode),
        None => Ok(w.clone()),
    }
}

/// Kernel size, stride, padding and output padding of a (transposed) convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Extra rows / columns added to a transposed convolution's output (ignored by conv2d).
    pub output_padding: usize,
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            kernel: 4,
            stride: 2,
            padding: 1,
            output_padding: 0,
            bias: true,
        }
    }
}

/// y (n, c) or (n, c, h, w) plus the bias on each channel, when there is one.
fn add_channel_bias(y: Tensor, bias: &Option<Tensor>) -> candle_core::Result<Tensor> {
    match bias {
        Some(b) => kernels::add_channel_bias(&y, b),
        None => Ok(y),
    }
}

/// A 2-D convolution, weight (out, in, k, k).
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: Conv2dConfig,
    sn: Option<SpectralNorm>,
}

/// A convolution `c_in → c_out` with DCGAN initialisation.
pub fn conv2d(
    c_in: usize,
    c_out: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    let k = cfg.kernel;
    let weight = vb.get_with_hints((c_out, c_in, k, k), "weight", dcgan_init())?;
    let bias = if cfg.bias {
        Some(vb.get_with_hints(c_out, "bias", Init::Const(0.0))?)
    } else {
        None
    };
    Ok(Conv2d {
        weight,
        bias,
        cfg,
        sn: None,
    })
}

impl Conv2d {
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The same layer with its weight spectrally normalised (see [`Linear::spectrally_normalised`]).
    pub fn spectrally_normalised(self, vb: VarBuilder) -> candle_core::Result<Self> {
        let sn = Some(spectral_norm(self.weight.dim(0)?, vb)?);
        Ok(Conv2d { sn, ..self })
    }

    /// The layer in `mode` (spectral norm's power iteration runs in training mode only).
    pub fn forward_t(&self, x: &Tensor, mode: &Mode) -> candle_core::Result<Tensor> {
        let w = effective_weight(&self.weight, &self.sn, mode)?;
        let (s, p) = (self.cfg.stride, self.cfg.padding);
        match &self.bias {
            Some(b) => kernels::conv2d_bias(x, &w, b, s, p),
            None => kernels::conv2d(x, &w, s, p),
        }
    }

    /// LeakyReLU(layer(x)) with negative-side `slope`; with a bias, convolution, bias and
    /// activation run as one op.
    pub fn forward_activated(
        &self,
        x: &Tensor,
        slope: f64,
        mode: &Mode,
    ) -> candle_core::Result<Tensor> {
        match &self.bias {
            Some(b) => {
                let w = effective_weight(&self.weight, &self.sn, mode)?;
                let (s, p) = (self.cfg.stride, self.cfg.padding);
                kernels::conv2d_bias_leaky(x, &w, b, s, p, slope)
            }
            None => kernels::leaky_relu(&self.forward_t(x, mode)?, slope),
        }
    }
}

impl Conv2d {
    /// Whether the weight is spectrally normalised.
    pub fn is_spectrally_normalised(&self) -> bool {
        self.sn.is_some()
    }

    /// ∂⟨g, conv(x)⟩/∂x for an input of side h × w, as a differentiable op of g and the
    /// weight (the transposed convolution); None when the weight is spectrally normalised
    /// (its effective value lives in the forward pass).
    pub fn input_gradient(
        &self,
        g: &Tensor,
        h: usize,
        w: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        if self.sn.is_some() {
            return Ok(None);
        }
        let (s, p, k) = (self.cfg.stride, self.cfg.padding, self.cfg.kernel);
        // Output padding: the rows and columns the strided forward pass never reached.
        let op = (h + 2 * p - k) % s;
        let dx = kernels::conv_transpose2d(g, &self.weight, s, p, op)?;
        if dx.dim(2)? != h || dx.dim(3)? != w {
            candle_core::bail!(
                "conv input gradient of shape {:?} for a {h}×{w} input",
                dx.dims()
            );
        }
        Ok(Some(dx))
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, &Mode::Eval)
    }
}

/// A transposed 2-D convolution, weight (in, out, k, k).
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: Conv2dConfig,
    sn: Option<SpectralNorm>,
}

/// A transposed convolution `c_in → c_out` with DCGAN initialisation.
pub fn conv_transpose2d(
    c_in: usize,
    c_out: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<ConvTranspose2d> {
    let k = cfg.kernel;
    let weight = vb.get_with_hints((c_in, c_out, k, k), "weight", dcgan_init())?;
    let bias = if cfg.bias {
        Some(vb.get_with_hints(c_out, "bias", Init::Const(0.0))?)
    } else {
        None
    };
    Ok(ConvTranspose2d {
        weight,
        bias,
        cfg,
        sn: None,
    })
}

impl ConvTranspose2d {
    /// The same layer with its weight spectrally normalised. As PyTorch does for transposed
    /// convolutions, σ is that of the weight seen as (out, in·k·k), and u has `out` values.
    pub fn spectrally_normalised(self, vb: VarBuilder) -> candle_core::Result<Self> {
        let sn = Some(spectral_norm(self.weight.dim(1)?, vb)?);
        Ok(ConvTranspose2d { sn, ..self })
    }

    /// The layer in `mode` (spectral norm's power iteration runs in training mode only).
    pub fn forward_t(&self, x: &Tensor, mode: &Mode) -> candle_core::Result<Tensor> {
        let w = match &self.sn {
            None => self.weight.clone(),
            Some(sn) => sn
                .apply(&self.weight.transpose(0, 1)?, mode)?
                .transpose(0, 1)?
                .contiguous()?,
        };
        let c = &self.cfg;
        let y = kernels::conv_transpose2d(x, &w, c.stride, c.padding, c.output_padding)?;
        add_channel_bias(y, &self.bias)
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, &Mode::Eval)
    }
}

#[cfg(test)]
mod tests {
    //! candle's own convolution gradients checked against central finite differences in f64
    //! (they are the reference our kernels are compared with in `kernels`).
    use candle_core::{DType, Device, Tensor, Var};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let v = crate::rng::Rng::new(seed, 0).normal_vec(n, 0.0, 1.0);
        Tensor::from_vec(v, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    }

    /// max |analytic − numeric| / max |numeric| for d/dθ Σ f(x, w) · r, over x and w.
    fn check(f: &dyn Fn(&Tensor, &Tensor) -> Tensor, xs: &[usize], ws: &[usize]) -> f64 {
        let x = Var::from_tensor(&rand(xs, 1)).unwrap();
        let w = Var::from_tensor(&rand(ws, 2)).unwrap();
        let y = f(&x, &w);
        let r = rand(y.dims(), 3);
        let obj = |x: &Tensor, w: &Tensor| -> f64 {
            (f(x, w) * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let mut worst: f64 = 0.0;
        let mut scale: f64 = 0.0;
        for (var, other, first) in [(&x, &w, true), (&w, &x, false)] {
            let g = grads
                .get(var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let base = var.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let h = 1e-6;
            for i in (0..base.len()).step_by(7) {
                let mut p = base.clone();
                p[i] += h;
                let tp = Tensor::from_vec(p.clone(), var.dims(), &Device::Cpu).unwrap();
                p[i] -= 2.0 * h;
                let tm = Tensor::from_vec(p, var.dims(), &Device::Cpu).unwrap();
                let (fp, fm) = if first {
                    (obj(&tp, other), obj(&tm, other))
                } else {
                    (obj(other, &tp), obj(other, &tm))
                };
                let num = (fp - fm) / (2.0 * h);
                worst = worst.max((num - g[i]).abs());
                scale = scale.max(num.abs());
            }
        }
        worst / scale
    }

    #[test]
    fn conv2d_gradients_match_finite_differences() {
        for (k, s, p) in [(4, 2, 1), (5, 2, 2), (3, 1, 1)] {
            let err = check(
                &|x, w| x.conv2d(w, p, s, 1, 1).unwrap(),
                &[2, 3, 9, 9],
                &[4, 3, k, k],
            );
            assert!(err < 1e-7, "conv2d k{k} s{s} p{p}: relative error {err}");
        }
    }

    #[test]
    fn conv_transpose2d_gradients_match_finite_differences() {
        for (k, s, p, op) in [(4, 2, 1, 0), (5, 2, 2, 1), (3, 1, 1, 0)] {
            let f = move |x: &Tensor, w: &Tensor| x.conv_transpose2d(w, p, op, s, 1).unwrap();
            let err = check(&f, &[2, 3, 5, 5], &[3, 4, k, k]);
            assert!(
                err < 1e-7,
                "conv_transpose2d k{k} s{s} p{p} op{op}: relative error {err}"
            );
        }
    }
}
