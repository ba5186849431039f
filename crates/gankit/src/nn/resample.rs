//! Resampling by 2 from plain differentiable ops (a reshape, a broadcast, a sum or a maximum),
//! so second order goes through: nearest-neighbour upsampling and 2×2 average and max pooling,
//! as residual and progressively grown networks and self-attention use them. candle's own
//! `upsample_nearest2d` backward goes through a grouped convolution and overwrites instead of
//! accumulating its gradient.

use candle_core::{Result, Tensor};

/// Each pixel repeated into a 2×2 block: (B, C, H, W) → (B, C, 2H, 2W).
pub fn upsample2x(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, 2, w, 2))?
        .reshape((b, c, 2 * h, 2 * w))
}

/// The mean of each 2×2 block: (B, C, H, W) → (B, C, H/2, W/2); H and W even.
pub fn avg_pool2x(x: &Tensor) -> Result<Tensor> {
    blocks2x(x, "average pooling")?.sum(5)?.sum(3)? * 0.25
}

/// The maximum of each 2×2 block, stride 2 (the gradient goes to each window's maximum):
/// (B, C, H, W) → (B, C, H/2, W/2); H and W even.
pub fn max_pool2x(x: &Tensor) -> Result<Tensor> {
    blocks2x(x, "max-pooling")?.max(5)?.max(3)
}

/// (B, C, H, W) viewed as (B, C, H/2, 2, W/2, 2): each 2×2 block on axes 3 and 5.
fn blocks2x(x: &Tensor, what: &str) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if h % 2 != 0 || w % 2 != 0 {
        candle_core::bail!("2×2 {what} needs an even side, got {h}×{w}");
    }
    x.contiguous()?.reshape((b, c, h / 2, 2, w / 2, 2))
}

/// `x` brought to side `side` by repeated 2×2 average pooling (a power-of-two ratio).
pub fn downsample_to(x: &Tensor, side: usize) -> Result<Tensor> {
    let mut x = x.clone();
    while x.dim(2)? > side {
        x = avg_pool2x(&x)?;
    }
    Ok(x)
}

/// `x` brought to side `side` by repeated nearest-neighbour upsampling.
pub fn upsample_to(x: &Tensor, side: usize) -> Result<Tensor> {
    let mut x = x.clone();
    while x.dim(2)? < side {
        x = upsample2x(&x)?;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn up_then_down_is_the_identity_and_gradients_flow_to_second_order() {
        crate::objectives::penalty::with_second_order(|| {
            let v: Vec<f64> = (0..2 * 3 * 4 * 4)
                .map(|i| (i as f64 * 0.37).sin())
                .collect();
            let x = Var::from_tensor(&Tensor::from_vec(v, (2, 3, 4, 4), &Device::Cpu).unwrap())
                .unwrap();
            let up = upsample2x(x.as_tensor()).unwrap();
            assert_eq!(up.dims(), &[2, 3, 8, 8]);
            let back = avg_pool2x(&up).unwrap();
            let diff = (back - x.as_tensor())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0);
            // d/dx Σ up(x)² = 8x (each value appears 4 times); its own gradient: 8.
            let g = up.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let gx = g.get(&x).unwrap();
            let want = (x.as_tensor() * 8.0).unwrap();
            assert_eq!(gx.to_vec3::<f64>().is_err(), true);
            let err = (gx - &want).unwrap().abs().unwrap().max_all().unwrap();
            assert!(err.to_scalar::<f64>().unwrap() < 1e-12);
            let gg = gx.sum_all().unwrap().backward().unwrap();
            let second = gg
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            assert!(
                second.iter().all(|&s| (s - 8.0).abs() < 1e-12),
                "{second:?}"
            );
            let pooled = avg_pool2x(x.as_tensor()).unwrap();
            assert_eq!(pooled.dims(), &[2, 3, 2, 2]);
        });
    }
}
