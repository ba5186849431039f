//! A generator's input: noise drawn from N(0, I), optionally truncated (Brock et al. 2019,
//! named in report 003 §4: values beyond ±ψ are drawn again), and the conditioning parts a
//! family adds to it (one-hot classes; later InfoGAN's codes), which truncation never
//! touches.

use candle_core::{Device, Tensor};

use crate::Result;
use crate::rng::Rng;

/// How to draw the images of one request (`gankit sample`, `gankit eval`, a grid).
#[derive(Clone, Copy, Debug, Default)]
pub struct Draw<'a> {
    /// The class of each image, in a conditional family (one per image).
    pub classes: Option<&'a [u32]>,
    /// Truncate the noise at ±ψ (resampling beyond it); `None` draws plain N(0, I).
    pub truncation: Option<f64>,
    /// The categorical code of each image, in a family that has one (InfoGAN); `None`
    /// draws them.
    pub codes: Option<&'a [u32]>,
}

/// `n` × `dim` samples of N(0, 1) from `rng`; with `truncation` ψ, every sample beyond ±ψ
/// is replaced by further draws until one falls inside (a truncated normal). Without it the
/// draws are exactly those of plain sampling, so runs and grids are unchanged by the option.
pub fn noise(
    rng: &mut Rng,
    n: usize,
    dim: usize,
    truncation: Option<f64>,
    device: &Device,
) -> Result<Tensor> {
    let mut v = rng.normal_vec(n * dim, 0.0, 1.0);
    if let Some(psi) = truncation {
        let psi = psi as f32;
        for x in &mut v {
            while x.abs() > psi {
                *x = rng.normal_vec(1, 0.0, 1.0)[0];
            }
        }
    }
    Ok(Tensor::from_vec(v, (n, dim), device)?)
}

/// Rows of the identity for `labels`: (n, classes). A label outside 0..classes is an error
/// naming the range.
pub fn one_hot(labels: &[u32], classes: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        if l as usize >= classes {
            return Err(crate::Error::Config(format!(
                "class {l} does not exist: this run has classes 0 to {}",
                classes - 1
            )));
        }
        v[i * classes + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(v, (labels.len(), classes), device)?)
}

/// The classes of `n` images drawn one class after another (image i gets i mod classes), or
/// all of `class`; `None` for an unconditional family (`classes` = 0).
pub fn cycle_classes(n: usize, classes: usize, class: Option<u32>) -> Option<Vec<u32>> {
    (classes > 0).then(|| {
        (0..n)
            .map(|i| class.unwrap_or((i % classes) as u32))
            .collect()
    })
}

/// The classes of a sample grid of `n` images: one class per row, in turn.
pub fn grid_classes(n: usize, classes: usize) -> Option<Vec<u32>> {
    let cols = crate::report::grid::columns(n);
    (classes > 0).then(|| (0..n).map(|i| ((i / cols) % classes) as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_noise_stays_within_psi_and_plain_noise_is_unchanged() {
        let d = Device::Cpu;
        let plain = noise(&mut Rng::new(0, 1), 64, 100, None, &d).unwrap();
        let again = Rng::new(0, 1).normal_vec(6400, 0.0, 1.0);
        assert_eq!(
            plain.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            again
        );
        for psi in [2.0, 1.0, 0.5] {
            let t = noise(&mut Rng::new(0, 1), 64, 100, Some(psi), &d).unwrap();
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(v.iter().all(|x| x.abs() <= psi as f32), "ψ = {psi}");
            // Still spread over the interval, not collapsed to 0.
            let mean_abs = v.iter().map(|x| x.abs()).sum::<f32>() / v.len() as f32;
            assert!(mean_abs > 0.3 * psi as f32, "ψ = {psi}: {mean_abs}");
        }
    }

    #[test]
    fn classes_cycle_fill_rows_and_one_hot_checks_its_range() {
        assert_eq!(cycle_classes(5, 3, None), Some(vec![0, 1, 2, 0, 1]));
        assert_eq!(cycle_classes(3, 3, Some(2)), Some(vec![2, 2, 2]));
        assert_eq!(cycle_classes(3, 0, None), None);
        assert_eq!(grid_classes(4, 10), Some(vec![0, 0, 1, 1]));
        let h = one_hot(&[1, 0], 3, &Device::Cpu).unwrap();
        assert_eq!(
            h.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 1.0, 0.0], vec![1.0, 0.0, 0.0]]
        );
        let e = one_hot(&[3], 3, &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("classes 0 to 2"), "{e}");
    }
}
