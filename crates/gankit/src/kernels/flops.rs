//! A running count of the floating-point operations gankit's matrix products perform.
//!
//! Every convolution (forward, both gradients, transposed) and every matrix product of
//! gankit's CPU kernels ends in one `gemm` call per block ([`super::cpu`]) or, on the
//! implicit-GEMM path (`cpu/implicit`), counts its whole product once per call, so counting
//! 2·m·n·k there counts them all, as executed: padding taps included, as the usual
//! 2·N·C_out·H·W·C_in·k² formula counts them. Element-wise work (batch norm, activations,
//! the optimiser) is not counted; it is a few per cent of a step's arithmetic. `gankit
//! bench --flops` divides the count by the step's time (tested in tests/flops.rs, a process
//! of its own, since other tests' products would add to the count).

use std::sync::atomic::{AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);

/// Add one m×k by k×n product.
#[inline]
pub(crate) fn add_product(m: usize, n: usize, k: usize) {
    COUNT.fetch_add(2 * (m * n * k) as u64, Ordering::Relaxed);
}

/// Operations counted since the process started.
pub fn total() -> u64 {
    COUNT.load(Ordering::Relaxed)
}
