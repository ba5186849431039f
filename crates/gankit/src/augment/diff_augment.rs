//! The transforms of DiffAugment (Zhao et al. 2020), each drawing its parameters per image
//! from a seeded [`Rng`] and built from differentiable tensor ops, so G's gradient flows
//! back through D's augmented input.
//!
//! Following the paper's reference: brightness adds U(−0.5, 0.5); saturation scales the
//! distance to the per-pixel channel mean by U(0, 2); contrast scales the distance to the
//! image mean by U(0.5, 1.5); translation shifts by up to `ratio`·side pixels in each axis,
//! filling with zeros; cutout erases a square of side `ratio`·side at a random centre.

use candle_core::{D, Device, Result, Tensor};

use crate::rng::Rng;

/// One value per image, shaped (b, 1, 1, 1) to broadcast over it.
fn per_image(rng: &mut Rng, b: usize, lo: f32, hi: f32, x: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(rng.uniform_vec(b, lo, hi), (b, 1, 1, 1), x.device())?.to_dtype(x.dtype())
}

/// x + U(−0.5, 0.5) per image.
pub fn brightness(x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    x.broadcast_add(&per_image(rng, x.dim(0)?, -0.5, 0.5, x)?)
}

/// (x − mean over channels) · U(0, 2) + mean, per image (the identity for one channel).
pub fn saturation(x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let mean = x.mean_keepdim(1)?;
    let f = per_image(rng, x.dim(0)?, 0.0, 2.0, x)?;
    x.broadcast_sub(&mean)?
        .broadcast_mul(&f)?
        .broadcast_add(&mean)
}

/// (x − image mean) · U(0.5, 1.5) + image mean, per image.
pub fn contrast(x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let b = x.dim(0)?;
    let mean = x
        .flatten_from(1)?
        .mean_keepdim(D::Minus1)?
        .reshape((b, 1, 1, 1))?;
    let f = per_image(rng, b, 0.5, 1.5, x)?;
    x.broadcast_sub(&mean)?
        .broadcast_mul(&f)?
        .broadcast_add(&mean)
}

/// Gather `x` (b, c, h, w) through `source`: for each output element, the flat index of the
/// input element it copies, or `None` for a zero. Differentiable in `x` (index_select).
fn gather(x: &Tensor, source: &[Option<usize>]) -> Result<Tensor> {
    let n = x.elem_count();
    let zero_slot = n as u32;
    let idx: Vec<u32> = source
        .iter()
        .map(|s| s.map_or(zero_slot, |i| i as u32))
        .collect();
    let idx = Tensor::from_vec(idx, source.len(), x.device())?;
    let zero = Tensor::zeros(1, x.dtype(), x.device())?;
    Tensor::cat(&[&x.flatten_all()?, &zero], 0)?
        .index_select(&idx, 0)?
        .reshape(x.dims())
}

/// Shift each image by (dy, dx), both uniform integers in [−s, s] with s = ⌊side·ratio + ½⌋,
/// filling the uncovered border with zeros.
pub fn translation(x: &Tensor, ratio: f64, rng: &mut Rng) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (sy, sx) = (
        (h as f64 * ratio + 0.5) as i64,
        (w as f64 * ratio + 0.5) as i64,
    );
    let shifts: Vec<(i64, i64)> = (0..b)
        .map(|_| (rng.int_in(-sy, sy), rng.int_in(-sx, sx)))
        .collect();
    let mut source = Vec::with_capacity(x.elem_count());
    for (bi, &(dy, dx)) in shifts.iter().enumerate() {
        for ci in 0..c {
            let plane = (bi * c + ci) * h * w;
            for i in 0..h as i64 {
                for j in 0..w as i64 {
                    let (si, sj) = (i + dy, j + dx);
                    let inside = (0..h as i64).contains(&si) && (0..w as i64).contains(&sj);
                    source.push(inside.then(|| plane + si as usize * w + sj as usize));
                }
            }
        }
    }
    gather(x, &source)
}

/// Multiply each image by a mask that is 0 on a square of side ⌊side·ratio + ½⌋ centred at a
/// uniform position (clipped at the border) and 1 elsewhere.
pub fn cutout(x: &Tensor, ratio: f64, rng: &mut Rng) -> Result<Tensor> {
    let (b, _, h, w) = x.dims4()?;
    let (ch, cw) = (
        (h as f64 * ratio + 0.5) as i64,
        (w as f64 * ratio + 0.5) as i64,
    );
    let mut mask = vec![1f32; b * h * w];
    for bi in 0..b {
        // The reference's offsets: [0, side − 1] for an odd cut, [0, side] for an even one.
        let oy = rng.int_in(0, h as i64 - (ch % 2));
        let ox = rng.int_in(0, w as i64 - (cw % 2));
        let (y0, x0) = (oy - ch / 2, ox - cw / 2);
        for i in y0.max(0)..(y0 + ch).min(h as i64) {
            for j in x0.max(0)..(x0 + cw).min(w as i64) {
                mask[bi * h * w + i as usize * w + j as usize] = 0.0;
            }
        }
    }
    let mask = Tensor::from_vec(mask, (b, 1, h, w), &Device::Cpu)?
        .to_device(x.device())?
        .to_dtype(x.dtype())?;
    x.broadcast_mul(&mask)
}
