//! gankit's own convolution kernels, as differentiable candle ops.
//!
//! candle 0.11's CPU `conv_transpose2d` is a dot-product loop and `conv2d`'s backward pass
//! calls it, which makes a DCGAN step several times slower than PyTorch. These ops replace
//! both directions on the CPU with im2col / col2im around the `gemm` crate ([`cpu`]).
//!
//! The three ops form a closed family — [`conv2d`], [`conv_transpose2d`] and the filter
//! gradient — whose backward passes are written with each other, so gradients of gradients
//! (the WGAN-GP penalty's second backward pass) go through them too. On other devices or
//! dtypes, candle's own ops are used.

pub mod cpu;
mod ops;

pub use ops::{conv_transpose2d, conv2d};
