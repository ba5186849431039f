//! Bilinear resizing as PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`
//! without antialiasing: output pixel i samples the input at (i + 0.5)·(in / out) − 0.5,
//! clamped at 0, between its two neighbours. Applied as two products with interpolation
//! matrices, rows then columns.

use candle_core::Tensor;

use crate::Result;

/// The (out, inp) matrix whose row i holds output pixel i's two weights.
pub fn weights(inp: usize, out: usize) -> Vec<f32> {
    let scale = inp as f32 / out as f32;
    let mut m = vec![0f32; out * inp];
    for i in 0..out {
        let src = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let frac = src - i0 as f32;
        m[i * inp + i0] += 1.0 - frac;
        m[i * inp + i1] += frac;
    }
    m
}

/// Resize maps (m, h, w) with h = w to (m, side, side).
pub fn bilinear(x: &Tensor, side: usize) -> Result<Tensor> {
    let (m, h, w) = x.dims3()?;
    let rows = Tensor::from_vec(weights(h, side), (side, h), x.device())?;
    let cols = Tensor::from_vec(weights(w, side), (side, w), x.device())?;
    // (m, h, w) · colsᵀ → (m, h, side); then rows · that → (m, side, side).
    let y = x
        .reshape((m * h, w))?
        .matmul(&cols.t()?)?
        .reshape((m, h, side))?;
    let y = y
        .transpose(1, 2)?
        .reshape((m * side, h))?
        .matmul(&rows.t()?)?;
    Ok(y.reshape((m, side, side))?.transpose(1, 2)?.contiguous()?)
}
