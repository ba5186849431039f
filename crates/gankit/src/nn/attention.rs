//! Self-attention over feature-map positions (Zhang et al. 2019, SAGAN; report 003 §5.2),
//! so a layer sees the whole image, not a neighbourhood.
//!
//! For x (B, C, H, W) with N = H·W positions, 1×1 convolutions give queries f(x) and keys
//! g(x) of C/8 channels and values h(x); the attention of query position j over key
//! positions i is βⱼᵢ = softmaxᵢ(f(xⱼ)ᵀ g(xᵢ)), the block's output oⱼ = Σᵢ βⱼᵢ h(xᵢ), and
//! the layer returns y = γ·o + x with γ a learned scalar that starts at 0 (so the network
//! starts as if the block were not there).
//!
//! Two variants (`model.attention_variant`):
//! - `"paper"`: values of C channels, every position a key (an N × N map);
//! - `"official"`: as the authors' code — values of C/2 channels, keys and values max-pooled
//!   2×2 (an N × N/4 map, a quarter of the memory), and a last 1×1 convolution back to C.
//!
//! Every op is differentiable to any order: the products are gankit's batched matmul, the
//! softmax and the max-pool are written from plain tensor ops (candle's fused softmax has
//! no backward pass), so the block also works inside a WGAN-GP critic.

use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::resample::max_pool2x;
use super::{Conv2d, Conv2dConfig, Mode, conv2d};
use crate::config::AttentionVariant;
use crate::kernels::bmm;

const ONE_BY_ONE: Conv2dConfig = Conv2dConfig {
    kernel: 1,
    stride: 1,
    padding: 0,
    output_padding: 0,
    bias: false,
};

/// One self-attention layer.
pub struct SelfAttention {
    f: Conv2d,
    g: Conv2d,
    h: Conv2d,
    /// The official variant's 1×1 convolution from C/2 back to C.
    v: Option<Conv2d>,
    gamma: Tensor,
    variant: AttentionVariant,
}

/// A self-attention layer over `channels` channels: weights `f`, `g`, `h` (and `v`), the
/// scalar `gamma`; spectrally normalised 1×1 convolutions with `spectral_norm`.
pub fn self_attention(
    channels: usize,
    variant: AttentionVariant,
    spectral_norm: bool,
    vb: VarBuilder,
) -> Result<SelfAttention> {
    let key = (channels / 8).max(1);
    let value = match variant {
        AttentionVariant::Paper => channels,
        AttentionVariant::Official => (channels / 2).max(1),
    };
    let conv = |c_in: usize, c_out: usize, name: &str| -> Result<Conv2d> {
        let c = conv2d(c_in, c_out, ONE_BY_ONE, vb.pp(name))?;
        if spectral_norm {
            c.spectrally_normalised(vb.pp(name))
        } else {
            Ok(c)
        }
    };
    Ok(SelfAttention {
        f: conv(channels, key, "f")?,
        g: conv(channels, key, "g")?,
        h: conv(channels, value, "h")?,
        v: match variant {
            AttentionVariant::Paper => None,
            AttentionVariant::Official => Some(conv(value, channels, "v")?),
        },
        gamma: vb.get_with_hints(1, "gamma", Init::Const(0.0))?,
        variant,
    })
}

/// Softmax over the last dimension from differentiable ops: exp(x − max) / Σ exp(x − max).
/// The max only steadies the exponentials (softmax does not depend on it), so it is a
/// constant of the graph.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

impl SelfAttention {
    /// y = γ·o + x.
    pub fn forward_t(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        Ok(self.forward_with_map(x, mode)?.0)
    }

    /// y and the attention map β (B, N, N_keys): row j is query position j's weights over
    /// the key positions (N_keys = N, or N / 4 with the official variant's pooling).
    pub fn forward_with_map(&self, x: &Tensor, mode: &Mode) -> Result<(Tensor, Tensor)> {
        let (b, c, h, w) = x.dims4()?;
        let q = self.f.forward_t(x, mode)?;
        let mut k = self.g.forward_t(x, mode)?;
        let mut v = self.h.forward_t(x, mode)?;
        if self.variant == AttentionVariant::Official {
            k = max_pool2x(&k)?;
            v = max_pool2x(&v)?;
        }
        let flat = |t: &Tensor| -> Result<Tensor> {
            let (tb, tc, th, tw) = t.dims4()?;
            t.reshape((tb, tc, th * tw))
        };
        let (q, k, v) = (flat(&q)?, flat(&k)?, flat(&v)?);
        // Scores (B, N, N_keys): qᵀk per image.
        let scores = bmm(&q, &k, true, false)?;
        let beta = softmax_last(&scores)?;
        // o (B, C_v, N) = v · βᵀ.
        let o = bmm(&v, &beta, false, true)?;
        let o = o.reshape((b, o.dim(1)?, h, w))?;
        let o = match &self.v {
            Some(conv) => conv.forward_t(&o, mode)?,
            None => o,
        };
        debug_assert_eq!(o.dim(1)?, c);
        let y = (o.broadcast_mul(&self.gamma.reshape((1, 1, 1, 1))?)? + x)?;
        Ok((y, beta))
    }
}

#[cfg(test)]
mod tests;
