//! Inference-side copies of image planes, on candle's threads (candle's `cat` and
//! `pad_with_zeros` copy on one thread): concatenation along channels, the stack of shifted
//! copies that turns a 1×k convolution into a 1×1 one, and a per-plane map. f32, CPU.

use candle_core::{Device, Layout, Result, Storage, Tensor};

use super::parallel;

/// The f32 values of a contiguous CPU tensor's storage.
fn cpu_values<'a>(storage: &'a Storage, layout: &Layout) -> Result<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        candle_core::bail!("plane kernels run on the CPU")
    };
    super::storage::slice::<f32>(cpu, layout)
}

/// Run `f` on the values of `t` (made contiguous), without copying them out.
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    Ok(f(cpu_values(&storage, layout)?))
}

/// Tensors (n, cᵢ, h, w) → (n, Σcᵢ, h, w).
pub fn cat_channels(parts: &[Tensor]) -> Result<Tensor> {
    let (n, _, h, w) = parts[0].dims4()?;
    let mut widths = Vec::with_capacity(parts.len());
    for p in parts {
        let (pn, c, ph, pw) = p.dims4()?;
        if (pn, ph, pw) != (n, h, w) {
            candle_core::bail!(
                "cat_channels: {:?} does not match {:?}",
                p.dims(),
                parts[0].dims()
            );
        }
        widths.push(c * h * w);
    }
    let per: usize = widths.iter().sum();
    let parts: Vec<Tensor> = parts
        .iter()
        .map(Tensor::contiguous)
        .collect::<Result<_>>()?;
    let guards: Vec<_> = parts.iter().map(|p| p.storage_and_layout()).collect();
    let sources = guards
        .iter()
        .map(|(storage, layout)| cpu_values(storage, layout))
        .collect::<Result<Vec<_>>>()?;
    let out = parallel::filled(n * per, per, |i, image: &mut [f32]| {
        let mut at = 0;
        for (src, &len) in sources.iter().zip(&widths) {
            image[at..at + len].copy_from_slice(&src[i * len..(i + 1) * len]);
            at += len;
        }
    });
    Tensor::from_vec(out, (n, per / (h * w), h, w), &Device::Cpu)
}

/// `x` (n, c, h, w) → (n, k·c, h, w): for tap t < k, channel ch, the plane of channel ch
/// shifted by t − `pad` along `axis` (2: rows, 3: columns), zeros where it leaves the
/// image. A stride-1 1×k (or k×1) convolution with padding `pad` is the 1×1 convolution
/// of this stack with the kernel's weights ordered tap-major.
pub fn stack_shifts(x: &Tensor, axis: usize, k: usize, pad: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let plane = h * w;
    let out = with_values(x, |src| {
        parallel::filled(n * k * c * plane, k * c * plane, |i, image: &mut [f32]| {
            let img = &src[i * c * plane..(i + 1) * c * plane];
            for t in 0..k {
                for ch in 0..c {
                    let from = &img[ch * plane..(ch + 1) * plane];
                    let to = &mut image[(t * c + ch) * plane..(t * c + ch + 1) * plane];
                    shift_plane(from, to, h, w, axis, t as isize - pad as isize);
                }
            }
        })
    })?;
    Tensor::from_vec(out, (n, k * c, h, w), &Device::Cpu)
}

/// to[y][x] = from[y + d][x] (axis 2) or from[y][x + d] (axis 3), zero outside; `to` comes
/// zeroed.
fn shift_plane(from: &[f32], to: &mut [f32], h: usize, w: usize, axis: usize, d: isize) {
    if axis == 2 {
        for y in 0..h {
            let sy = y as isize + d;
            if (0..h as isize).contains(&sy) {
                let sy = sy as usize;
                to[y * w..(y + 1) * w].copy_from_slice(&from[sy * w..(sy + 1) * w]);
            }
        }
    } else {
        // Columns x with 0 ≤ x + d < w.
        let lo = (-d).max(0) as usize;
        let hi = (w as isize - d).min(w as isize).max(0) as usize;
        if lo >= hi {
            return;
        }
        for y in 0..h {
            let (row_to, row_from) = (&mut to[y * w..(y + 1) * w], &from[y * w..(y + 1) * w]);
            let s0 = (lo as isize + d) as usize;
            row_to[lo..hi].copy_from_slice(&row_from[s0..s0 + (hi - lo)]);
        }
    }
}

/// `f(plane_in, plane_out)` on every (h × w) plane of `x` (n, c, h, w), giving planes of
/// oh × ow, in parallel.
pub fn map_planes(
    x: &Tensor,
    (oh, ow): (usize, usize),
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let out = with_values(x, |src| {
        parallel::filled(n * c * oh * ow, oh * ow, |i, o: &mut [f32]| {
            f(&src[i * h * w..(i + 1) * h * w], o)
        })
    })?;
    Tensor::from_vec(out, (n, c, oh, ow), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(shape: (usize, usize, usize, usize), seed: usize) -> Tensor {
        let len = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..len)
            .map(|i| ((i * 31 + seed) % 17) as f32 - 8.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.dims() == b.dims()
            && a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn cat_and_shifted_stacks_equal_candles_ops() {
        let (a, b) = (sample((3, 2, 4, 5), 1), sample((3, 5, 4, 5), 2));
        assert!(same(
            &cat_channels(&[a.clone(), b.clone()]).unwrap(),
            &Tensor::cat(&[&a, &b], 1).unwrap()
        ));
        for (axis, k, pad) in [(3, 7, 3), (2, 7, 3), (3, 3, 1), (2, 3, 1), (3, 7, 0)] {
            let len = a.dim(axis).unwrap();
            let padded = a.pad_with_zeros(axis, pad, pad).unwrap();
            // Taps that fall wholly outside a narrow side are zero planes.
            let parts: Vec<Tensor> = (0..k)
                .map(|t| {
                    let wide = padded.pad_with_zeros(axis, 0, k).unwrap();
                    wide.narrow(axis, t, len).unwrap()
                })
                .collect();
            let want = Tensor::cat(&parts, 1).unwrap();
            assert!(
                same(&stack_shifts(&a, axis, k, pad).unwrap(), &want),
                "axis {axis} k {k} pad {pad}"
            );
        }
    }
}
