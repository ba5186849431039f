//! Image arrays from outside gankit (`gankit eval --fake / --real`): checked, then brought
//! to the [-1, 1] the extractors take.
//!
//! Nothing is scored from garbage: non-finite values, values outside the declared range
//! and too few images are errors that say what was found.

use std::str::FromStr;

use crate::report::npy::NpyArray;
use crate::{Error, Result};

/// Fewest images a score is computed from: the k-nearest-neighbour metrics need more
/// than k + 1 (k = 5), and fewer give numbers with no meaning.
pub const MIN_IMAGES: usize = 10;

/// The value range an array's images are stored in (`--input-range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputRange {
    /// [-1, 1]: gankit's own arrays and a tanh generator's output (the default).
    #[default]
    Signed,
    /// [0, 1]: torchvision tensors, most saved floats.
    Unit,
    /// [0, 255]: 8-bit pixels, as float or uint8.
    Byte,
}

impl InputRange {
    /// (low, high) of the range.
    pub fn bounds(self) -> (f64, f64) {
        match self {
            InputRange::Signed => (-1.0, 1.0),
            InputRange::Unit => (0.0, 1.0),
            InputRange::Byte => (0.0, 255.0),
        }
    }

    /// The range as `--input-range` writes it.
    pub fn name(self) -> &'static str {
        match self {
            InputRange::Signed => "-1,1",
            InputRange::Unit => "0,1",
            InputRange::Byte => "0,255",
        }
    }
}

impl FromStr for InputRange {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.replace(' ', "").as_str() {
            "-1,1" => Ok(InputRange::Signed),
            "0,1" => Ok(InputRange::Unit),
            "0,255" => Ok(InputRange::Byte),
            other => Err(format!("{other:?}: use -1,1 (default), 0,1 or 0,255")),
        }
    }
}

/// Values beyond the declared range by at most this fraction of its width are float
/// rounding (a [0, 1] image divided and multiplied back), clamped; further is an error.
const ROUNDING: f64 = 1e-4;

/// An image array (N, C, H, W) from an .npy file, checked: square images of 1 or 3
/// channels, at least [`MIN_IMAGES`], every value finite and inside `range`. Returns the
/// values mapped to [-1, 1] and the shape. `what` names the file in errors.
pub fn images(a: &NpyArray, range: InputRange, what: &str) -> Result<(Vec<f32>, [usize; 4])> {
    let bad = |m: String| Err(Error::Data(format!("{what}: {m}")));
    let [n, c, h, w] = a.shape[..] else {
        return bad(format!(
            "shape {:?}; expected images (N, C, H, W), C = 1 or 3",
            a.shape
        ));
    };
    if h != w || h == 0 || !(c == 1 || c == 3) {
        return bad(format!(
            "shape {:?}; expected square images (N, C, H, W) with C = 1 or 3 channels (channels-last arrays need np.transpose(a, (0, 3, 1, 2)))",
            a.shape
        ));
    }
    if n < MIN_IMAGES {
        return bad(format!(
            "{n} images; at least {MIN_IMAGES} are needed to score (thousands for stable numbers)"
        ));
    }
    let values = a.to_f32();
    let non_finite = values.iter().filter(|v| !v.is_finite()).count();
    if non_finite > 0 {
        return bad(format!(
            "{non_finite} of {} values are NaN or infinite: the generator that made them diverged, or the array was not filled",
            values.len()
        ));
    }
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (want_lo, want_hi) = range.bounds();
    let slack = ROUNDING * (want_hi - want_lo);
    if f64::from(lo) < want_lo - slack || f64::from(hi) > want_hi + slack {
        let hint = guess(f64::from(lo), f64::from(hi))
            .filter(|g| *g != range)
            .map(|g| {
                format!(
                    "; if that is its convention, pass --input-range {}",
                    g.name()
                )
            })
            .unwrap_or_default();
        return bad(format!(
            "values span [{lo}, {hi}], outside the declared range [{want_lo}, {want_hi}]{hint}"
        ));
    }
    let (lo, hi) = (want_lo as f32, want_hi as f32);
    let scale = 2.0 / (hi - lo);
    let mapped = values
        .into_iter()
        .map(|v| ((v.clamp(lo, hi) - lo) * scale - 1.0).clamp(-1.0, 1.0))
        .collect();
    Ok((mapped, [n, c, h, w]))
}

/// The narrowest common convention holding [lo, hi], if any.
fn guess(lo: f64, hi: f64) -> Option<InputRange> {
    [InputRange::Unit, InputRange::Signed, InputRange::Byte]
        .into_iter()
        .find(|r| {
            let (a, b) = r.bounds();
            lo >= a - ROUNDING * (b - a) && hi <= b + ROUNDING * (b - a)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::npy;

    fn array(values: &[f32], shape: &[usize]) -> NpyArray {
        npy::decode(npy::encode_f32(values, shape), "a.npy").unwrap()
    }

    #[test]
    fn each_convention_maps_to_minus_one_one() {
        let n = MIN_IMAGES;
        for (range, lo, hi) in [
            (InputRange::Signed, -1.0, 1.0),
            (InputRange::Unit, 0.0, 1.0),
            (InputRange::Byte, 0.0, 255.0),
        ] {
            let mut v = vec![(lo + hi) / 2.0; n * 4];
            v[0] = lo;
            v[1] = hi;
            let (m, shape) = images(&array(&v, &[n, 1, 2, 2]), range, "a").unwrap();
            assert_eq!(shape, [n, 1, 2, 2]);
            assert_eq!((m[0], m[1], m[2]), (-1.0, 1.0, 0.0), "{range:?}");
        }
        assert_eq!("0, 255".parse::<InputRange>(), Ok(InputRange::Byte));
        assert!("0,2".parse::<InputRange>().is_err());
    }

    #[test]
    fn garbage_is_refused_with_what_was_found() {
        let n = MIN_IMAGES;
        let err = |v: Vec<f32>, shape: &[usize], r| {
            images(&array(&v, shape), r, "a.npy")
                .unwrap_err()
                .to_string()
        };
        let mut nan = vec![0.0; n * 4];
        nan[3] = f32::NAN;
        nan[7] = f32::INFINITY;
        assert!(err(nan, &[n, 1, 2, 2], InputRange::Signed).contains("2 of 40 values are NaN"));
        let wide = vec![2.0; n * 4];
        let e = err(wide, &[n, 1, 2, 2], InputRange::Signed);
        assert!(
            e.contains("[2, 2]") && e.contains("--input-range 0,255"),
            "{e}"
        );
        let e = err(vec![0.0; 9 * 4], &[9, 1, 2, 2], InputRange::Signed);
        assert!(e.contains("9 images"), "{e}");
        let e = err(vec![0.0; n * 6], &[n, 1, 2, 3], InputRange::Signed);
        assert!(e.contains("square"), "{e}");
        let e = err(vec![0.0; n * 8], &[n, 2, 2, 2], InputRange::Signed);
        assert!(e.contains("C = 1 or 3"), "{e}");
        let e = err(vec![0.0; 0], &[0, 1, 28, 28], InputRange::Signed);
        assert!(e.contains("0 images"), "{e}");
        // Float rounding just past the edge is accepted (and clamped).
        let (m, _) = images(
            &array(&vec![1.00001; n * 4], &[n, 1, 2, 2]),
            InputRange::Signed,
            "a",
        )
        .unwrap();
        assert!(m.iter().all(|&v| v == 1.0));
    }
}
