//! gankit's own CPU kernels, as differentiable candle ops: convolutions, batch norm,
//! per-channel bias and LeakyReLU.
//!
//! candle 0.11's CPU `conv_transpose2d` is a dot-product loop and `conv2d`'s backward pass
//! calls it, which makes a DCGAN step several times slower than PyTorch. These ops replace
//! both directions on the CPU with im2col / col2im around the `gemm` crate ([`cpu`]).
//!
//! The three ops form a closed family — [`conv2d`], [`conv_transpose2d`] and the filter
//! gradient — whose backward passes are written with each other, so gradients of gradients
//! (the WGAN-GP penalty's second backward pass) go through them too. On other devices or
//! dtypes, candle's own ops are used.

mod batch_norm;
mod bias;
pub mod cpu;
mod leaky_relu;
mod ops;
mod storage;
#[cfg(test)]
pub(crate) mod testing;

pub use batch_norm::{channel_moments, normalize};
pub use bias::{add_channel_bias, channel_sum, scale_channels};
pub use leaky_relu::leaky_relu;
pub use ops::{conv_transpose2d, conv2d};

use candle_core::{DType, Device, Tensor};

/// True when gankit's CPU kernels handle this tensor (CPU, f32 or f64); other devices and
/// dtypes use candle's own ops.
pub(crate) fn ours(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && matches!(t.dtype(), DType::F32 | DType::F64)
}
