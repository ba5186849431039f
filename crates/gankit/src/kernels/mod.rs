//! gankit's own CPU kernels, as differentiable candle ops: convolutions, batch norm,
//! per-channel bias, LeakyReLU, tanh and matrix products.
//!
//! candle 0.11's CPU `conv_transpose2d` is a dot-product loop and `conv2d`'s backward pass
//! calls it, which makes a DCGAN step several times slower than PyTorch. These ops replace
//! both directions on the CPU with im2col / col2im around the `gemm` crate ([`cpu`]).
//!
//! The three ops form a closed family — [`conv2d`], [`conv_transpose2d`] and the filter
//! gradient — whose backward passes are written with each other, so gradients of gradients
//! (the WGAN-GP penalty's second backward pass) go through them too. On a CUDA device (the
//! `cuda` feature) the same three ops run cuDNN's passes instead (`kernels/cudnn.rs`); the
//! other ops here, and all ops on other devices or dtypes, use candle's own.
//!
//! The crate compiles for baseline x86-64 (SSE2), so the hot loops outside `gemm` (im2col and
//! col2im, batch norm, LeakyReLU, tanh, Adam) carry `#[multiversion(targets(...))]`: each is
//! also compiled for AVX-512 and for AVX2 + FMA, and the best version the CPU supports is
//! picked at run time. The versions compute the same values (Rust never fuses a·b + c into
//! an FMA on its own, and every reduction fixes its order), so results do not depend on the
//! CPU. On the dcgan28 step: 40.2 → 38.7 ms.

mod batch_norm;
mod bias;
pub mod cpu;
#[cfg(feature = "cuda")]
mod cudnn;
pub mod flops;
mod lanes;
mod layer_norm;
mod leaky_relu;
mod matmul;
mod ops;
pub(crate) mod parallel;
pub mod planes;
mod storage;
mod tanh;
#[cfg(test)]
pub(crate) mod testing;

pub use batch_norm::{Statistics, channel_moments, normalize};
pub use bias::{add_channel_bias, channel_sum, scale_channels};
pub use layer_norm::{LayerNormInputGrad, layer_norm_act, layer_norm_act_traced};
pub use leaky_relu::{leaky_relu, leaky_relu_grad};
pub use matmul::{bmm, matmul};
pub use ops::{conv_transpose2d, conv2d, conv2d_bias, conv2d_bias_leaky};
pub use tanh::tanh;

/// A training step allocates and frees dozens of tensors of a few MiB (activations and
/// their gradients). glibc serves blocks that large with fresh mmaps and unmaps them when
/// freed, so every step paid page faults and zeroing for all of them (a seventh of the
/// default DCGAN's step went to the kernel). Serving them from the heap, and keeping freed
/// memory instead of returning it at once, reuses the same pages step after step. Called
/// first by the `gankit` binary and by the kernel benchmarks; call it before any other
/// thread exists.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

use candle_core::{DType, Device, Tensor, TensorId};

thread_local! {
    /// Inside [`input_gradient_only`]: the input whose gradient is wanted.
    static INPUT_GRADIENT_OF: std::cell::Cell<Option<TensorId>> = const { std::cell::Cell::new(None) };
}

/// Run `f` (a backward pass) computing, in gankit's ops, no gradient for any variable but
/// `input`: for a backward pass whose only use is the gradient with respect to an input,
/// such as the first pass of WGAN-GP's exact penalty (PyTorch's `autograd.grad(out, x)`).
/// The weight gradients it skips are not part of that input gradient's graph, so gradients
/// of it are unchanged.
pub fn input_gradient_only<T>(input: &Tensor, f: impl FnOnce() -> T) -> T {
    let before = INPUT_GRADIENT_OF.with(|c| c.replace(Some(input.id())));
    let out = f();
    INPUT_GRADIENT_OF.with(|c| c.set(before));
    out
}

/// Whether an op's backward pass must produce the gradient of `input`: it takes part in
/// backpropagation (a variable or computed from one; candle asks an op for the gradients
/// of all its inputs, tracked or not), and is not a variable skipped by
/// [`input_gradient_only`].
pub(crate) fn needs_grad(input: &Tensor) -> bool {
    let skipped = || {
        input.is_variable()
            && INPUT_GRADIENT_OF.with(|c| c.get().is_some_and(|id| id != input.id()))
    };
    input.track_op() && !skipped()
}

/// `grad()` when `input` needs its gradient ([`needs_grad`]), else nothing: for an op's
/// backward pass.
pub(crate) fn when(
    input: &Tensor,
    grad: impl FnOnce() -> candle_core::Result<Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    if needs_grad(input) {
        grad().map(Some)
    } else {
        Ok(None)
    }
}

/// True when gankit's CPU kernels handle this tensor (CPU, f32 or f64); other devices and
/// dtypes use candle's own ops.
pub(crate) fn ours(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// True when gankit's convolution ops handle this tensor: on the CPU with gankit's kernels
/// ([`ours`]), on a CUDA device (with the `cuda` feature) with cuDNN's passes.
pub(crate) fn convolves(t: &Tensor) -> bool {
    ours(t) || on_cudnn(t)
}

/// True for an f32 or f64 tensor on a CUDA device, whose convolutions run on cuDNN.
fn on_cudnn(t: &Tensor) -> bool {
    cfg!(feature = "cuda") && t.device().is_cuda() && matches!(t.dtype(), DType::F32 | DType::F64)
}
