//! The shape every convolutional discriminator here shares: a stack of stride-2 conv blocks
//! (conv → norm → LeakyReLU(0.2), no norm on the first block), flattened into one linear
//! score. dcgan28, dcgan64 and report 004's critic differ only in channels and kernels.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{AttentionSpec, Attentions};
use super::{DOutput, Discriminator};
use crate::config::Norm;
use crate::nn::{Conv2d, Conv2dConfig, Linear, Mode, Norm2d, conv2d, dcgan_init, linear, norm2d};

/// LeakyReLU's negative-side slope after every block.
const SLOPE: f64 = 0.2;

pub struct ConvDiscriminator {
    convs: Vec<Conv2d>,
    /// The normalisation after each convolution (none after the first).
    norms: Vec<Norm2d>,
    /// The score layer; `None` for a body that only gives features (see [`conv_body`]).
    fc: Option<Linear>,
    /// Self-attention after blocks whose output side `model.attention` names.
    attention: Attentions,
    /// The output side of each convolution, and whether attention may follow it (not
    /// after the extra stride-1 layers).
    sides: Vec<(usize, bool)>,
    /// Length of the flattened last block.
    features: usize,
}

/// Conv blocks `chans[0] → chans[1] → …` with kernels `conv` (its `bias` is ignored: a conv
/// has a bias unless a normalisation follows it), weights `conv1`, `bn2` / `ln2`, …, `fc`.
/// `side` is the input image side. With `spectral_norm` every conv and the linear layer are
/// spectrally normalised; `attention` puts self-attention layers after blocks.
pub fn conv_discriminator(
    chans: &[usize],
    conv: Conv2dConfig,
    norm: Norm,
    spectral_norm: bool,
    side: usize,
    attention: &AttentionSpec,
    vb: VarBuilder,
) -> Result<ConvDiscriminator> {
    let mut d = conv_body(
        chans,
        conv,
        norm,
        spectral_norm,
        side,
        attention,
        0,
        vb.clone(),
    )?;
    let fc = linear(d.feature_dim(), 1, true, dcgan_init(), vb.pp("fc"))?;
    d.fc = Some(if spectral_norm {
        fc.spectrally_normalised(vb.pp("fc"))?
    } else {
        fc
    });
    Ok(d)
}

/// 3×3 stride-1 convolutions that keep the side (the DCGAN code's extra layers).
const EXTRA: Conv2dConfig = Conv2dConfig {
    kernel: 3,
    stride: 1,
    padding: 1,
    output_padding: 0,
    bias: true,
};

/// The conv blocks of [`conv_discriminator`] without the score layer: an image body whose
/// features a family's own heads read (a joint discriminator, an encoder). `extra` stride-1
/// 3×3 layers (weights `extra1`, …, with the same normalisation) follow the first block.
#[allow(clippy::too_many_arguments)]
pub fn conv_body(
    chans: &[usize],
    conv: Conv2dConfig,
    norm: Norm,
    spectral_norm: bool,
    side: usize,
    attention: &AttentionSpec,
    extra: usize,
    vb: VarBuilder,
) -> Result<ConvDiscriminator> {
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    let mut sides = Vec::new();
    let mut side = side;
    let mut add = |name: String, norm_name: Option<String>, c_in, c_out, cfg: Conv2dConfig| {
        let layer_vb = vb.pp(&name);
        let layer = conv2d(c_in, c_out, cfg, layer_vb.clone())?;
        convs.push(if spectral_norm {
            layer.spectrally_normalised(layer_vb)?
        } else {
            layer
        });
        norms.push(match norm_name {
            Some(n) => norm2d(norm, c_out, vb.pp(n))?,
            None => Norm2d::None,
        });
        Ok::<_, candle_core::Error>(())
    };
    for i in 0..chans.len() - 1 {
        let cfg = Conv2dConfig {
            bias: i == 0 || norm == Norm::None,
            ..conv
        };
        let norm_name = (i > 0).then(|| format!("{}{}", Norm2d::prefix(norm), i + 1));
        add(
            format!("conv{}", i + 1),
            norm_name,
            chans[i],
            chans[i + 1],
            cfg,
        )?;
        side = (side + 2 * conv.padding - conv.kernel) / conv.stride + 1;
        sides.push((side, true));
        if i == 0 {
            for k in 1..=extra {
                let cfg = Conv2dConfig {
                    bias: norm == Norm::None,
                    ..EXTRA
                };
                let norm_name = Some(format!("{}extra{k}", Norm2d::prefix(norm)));
                add(format!("extra{k}"), norm_name, chans[1], chans[1], cfg)?;
                sides.push((side, false));
            }
        }
    }
    let maps: Vec<(usize, usize)> = convs
        .iter()
        .zip(&sides)
        .filter(|(_, (_, attend))| *attend)
        .map(|(c, (s, _))| (c.weight().dim(0).unwrap_or(0), *s))
        .collect();
    let attention = Attentions::build(attention, &maps, spectral_norm, &vb)?;
    Ok(ConvDiscriminator {
        convs,
        norms,
        attention,
        sides,
        features: chans[chans.len() - 1] * side * side,
        fc: None,
    })
}

impl ConvDiscriminator {
    /// Length of the feature vector feeding the last layer.
    pub fn feature_dim(&self) -> usize {
        self.features
    }

    /// Each layer's output (after its activation and attention), first to last.
    pub fn blocks(&self, x: &Tensor, mode: &Mode) -> Result<Vec<Tensor>> {
        let mut h = x.clone();
        let mut out = Vec::with_capacity(self.convs.len());
        for (i, conv) in self.convs.iter().enumerate() {
            // Without a norm, the convolution, its bias and the activation are one op.
            h = match &self.norms[i] {
                Norm2d::None => conv.forward_activated(&h, SLOPE, mode)?,
                norm => norm.forward_activated(&conv.forward_t(&h, mode)?, SLOPE, mode)?,
            };
            let (side, attend) = self.sides[i];
            if attend {
                h = self.attention.apply(h, side, mode)?;
            }
            out.push(h.clone());
        }
        Ok(out)
    }

    /// The flattened output of the last block (n, [`ConvDiscriminator::feature_dim`]).
    pub fn features(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        let blocks = self.blocks(x, mode)?;
        blocks.last().expect("at least one block").flatten_from(1)
    }

    fn fc(&self) -> Result<&Linear> {
        match &self.fc {
            Some(fc) => Ok(fc),
            None => candle_core::bail!("a discriminator body has no score layer"),
        }
    }
}

impl Discriminator for ConvDiscriminator {
    fn forward(&self, x: &Tensor, _: Option<&Tensor>, mode: &mut Mode) -> Result<DOutput> {
        let features = self.features(x, mode)?;
        let logits = self.fc()?.forward_t(&features, mode)?.squeeze(1)?;
        Ok(DOutput { logits, features })
    }

    fn hidden(&self, x: &Tensor, mode: &mut Mode) -> Result<Vec<Tensor>> {
        self.blocks(x, mode)
    }

    /// The forward pass keeps, for each layer, what its input gradient needs (the LeakyReLU's
    /// output, the layer norm's statistics); the gradient of Σ D(x) then runs back through
    /// the fc weight, each activation's gradient op and each transposed convolution. Only
    /// without spectral or batch norm or attention, on gankit's CPU kernels.
    fn input_gradient(
        &self,
        x: &Tensor,
        _: Option<&Tensor>,
        mode: &mut Mode,
    ) -> Result<Option<Tensor>> {
        // Spectral norm's weights (and power iteration) live in the forward pass: checked
        // before any forward pass runs, so the fallback runs the only one.
        let fc = self.fc()?;
        let plain = self.attention.is_empty()
            && !fc.is_spectrally_normalised()
            && !self.convs.iter().any(|c| c.is_spectrally_normalised())
            && self
                .norms
                .iter()
                .all(|n| matches!(n, Norm2d::Layer(_) | Norm2d::None));
        if !plain || !crate::kernels::ours(x) {
            return Ok(None);
        }
        /// How to take an upstream gradient back through one activation.
        enum Back {
            /// The LeakyReLU's output (its sign is its input's).
            Leaky(Tensor),
            Layer(crate::kernels::LayerNormInputGrad),
        }
        let mut h = x.clone();
        let mut layers = Vec::new();
        for (i, conv) in self.convs.iter().enumerate() {
            let (_, _, ih, iw) = h.dims4()?;
            let (out, back) = match &self.norms[i] {
                Norm2d::Layer(ln) => match ln.forward_traced(&conv.forward_t(&h, mode)?, SLOPE)? {
                    Some((z, grad)) => (z, Back::Layer(grad)),
                    None => return Ok(None),
                },
                // The activation's gradient needs only the sign of its input, which its
                // output shares.
                _ => {
                    let z = conv.forward_activated(&h, SLOPE, mode)?;
                    (z.clone(), Back::Leaky(z))
                }
            };
            layers.push((conv, back, ih, iw));
            h = out;
        }
        // ∂(Σₙ fc(featuresₙ))/∂features: the fc weight's one row on every sample.
        let w = fc.weight();
        let mut g = w
            .broadcast_as((h.dim(0)?, w.dim(1)?))?
            .contiguous()?
            .reshape(h.shape())?;
        for (conv, back, ih, iw) in layers.iter().rev() {
            g = match back {
                Back::Leaky(z) => crate::kernels::leaky_relu_grad(&g, z, SLOPE)?,
                Back::Layer(grad) => grad.of(&g)?,
            };
            g = match conv.input_gradient(&g, *ih, *iw)? {
                Some(dx) => dx,
                None => return Ok(None),
            };
        }
        Ok(Some(g))
    }
}
