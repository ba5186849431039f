//! Inception's 3×3 pools, plane by plane on all threads (candle's pools run on one): the average pool that divides by the values inside the image only (TensorFlow's,
//! `count_include_pad = False`), and max pools with stride 1 ("same") and stride 2.

use candle_core::Tensor;

use crate::Result;
use crate::kernels::planes::map_planes;

/// The rows (or columns) a 3-wide window at output index `i` covers with padding 1 on a
/// side of `n`: `i − 1 ..= i + 1` clipped to the image.
fn window(i: usize, n: usize) -> std::ops::Range<usize> {
    i.saturating_sub(1)..(i + 2).min(n)
}

/// 3×3 average pool, stride 1, padding 1, over the values inside the image only.
pub fn avg_same(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    Ok(map_planes(x, (h, w), |src, dst| {
        // Sums of three along each row first, then of three rows.
        let mut rows = vec![0f32; h * w];
        for y in 0..h {
            let r = &src[y * w..(y + 1) * w];
            for xo in 0..w {
                rows[y * w + xo] = window(xo, w).map(|j| r[j]).sum();
            }
        }
        for y in 0..h {
            let ys = window(y, h);
            let count_y = ys.len() as f32;
            for xo in 0..w {
                let sum: f32 = ys.clone().map(|j| rows[j * w + xo]).sum();
                dst[y * w + xo] = sum / (count_y * window(xo, w).len() as f32);
            }
        }
    })?)
}

/// 3×3 max pool, stride 1, padding 1 (the padding never wins: PyTorch pads with −∞).
pub fn max_same(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    Ok(map_planes(x, (h, w), |src, dst| {
        for y in 0..h {
            for xo in 0..w {
                let mut m = f32::NEG_INFINITY;
                for j in window(y, h) {
                    for i in window(xo, w) {
                        m = m.max(src[j * w + i]);
                    }
                }
                dst[y * w + xo] = m;
            }
        }
    })?)
}

/// 3×3 max pool, stride 2, no padding.
pub fn max_down(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (oh, ow) = ((h - 3) / 2 + 1, (w - 3) / 2 + 1);
    Ok(map_planes(x, (oh, ow), |src, dst| {
        for y in 0..oh {
            for xo in 0..ow {
                let mut m = f32::NEG_INFINITY;
                for j in 2 * y..2 * y + 3 {
                    for i in 2 * xo..2 * xo + 3 {
                        m = m.max(src[j * w + i]);
                    }
                }
                dst[y * ow + xo] = m;
            }
        }
    })?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// The pools against candle's (on padded input) for an odd-sized plane with negative
    /// values, where −∞ and zero padding differ.
    #[test]
    fn the_pools_match_their_definitions() {
        let v: Vec<f32> = (0..2 * 3 * 7 * 5)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 3.0)
            .collect();
        let x = Tensor::from_vec(v, (2, 3, 7, 5), &Device::Cpu).unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            d.to_scalar::<f32>().unwrap()
        };
        let down = x.max_pool2d_with_stride(3, 2).unwrap();
        assert_eq!(close(&max_down(&x).unwrap(), &down), 0.0);
        let padded = x
            .pad_with_same(2, 1, 1)
            .unwrap()
            .pad_with_same(3, 1, 1)
            .unwrap();
        let same = padded.max_pool2d_with_stride(3, 1).unwrap();
        assert_eq!(close(&max_same(&x).unwrap(), &same), 0.0);
        // Average: sums over the zero-padded plane divided by the in-image counts.
        let zero = x
            .pad_with_zeros(2, 1, 1)
            .unwrap()
            .pad_with_zeros(3, 1, 1)
            .unwrap();
        let sums = (zero.avg_pool2d_with_stride(3, 1).unwrap() * 9.0).unwrap();
        let ones = Tensor::ones((1, 1, 7, 5), candle_core::DType::F32, &Device::Cpu)
            .unwrap()
            .pad_with_zeros(2, 1, 1)
            .unwrap()
            .pad_with_zeros(3, 1, 1)
            .unwrap();
        let counts = (ones.avg_pool2d_with_stride(3, 1).unwrap() * 9.0).unwrap();
        let want = sums.broadcast_div(&counts).unwrap();
        assert!(close(&avg_same(&x).unwrap(), &want) < 1e-6);
        // A corner counts 4 values, an edge 6.
        assert_eq!(
            counts.flatten_all().unwrap().to_vec1::<f32>().unwrap()[..2],
            [4.0, 6.0]
        );
    }
}
