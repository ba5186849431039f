//! The statistics a comparison reports: mean ± standard deviation over seeds, and how much a
//! loss oscillates (report 001 judges its α schedules by the oscillation of the losses).

/// Mean and sample standard deviation of some values (std 0 for one value).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Spread {
    /// Of the finite values; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Spread {
            mean,
            std: var.sqrt(),
            n,
        })
    }

    /// "12.34 ± 0.56", or "12.34" for one value, with `digits` decimals (in scientific
    /// notation where they would show a mean that is not zero as zero: 4.6e-5 ± 1.2e-6).
    pub fn show(&self, digits: usize) -> String {
        let mean = crate::report::decimal(self.mean, digits);
        if self.n > 1 {
            let std = if mean.contains('e') {
                format!("{:.1e}", self.std)
            } else {
                format!("{:.digits$}", self.std)
            };
            format!("{mean} ± {std}")
        } else {
            mean
        }
    }

    /// As [`Spread::show`], with as many decimals as give the mean `significant` digits
    /// (none for a mean of 100 and more at 3; scientific below 0.001): 0.179 ± 0.004,
    /// 2989 ± 50.
    pub fn show_significant(&self, significant: usize) -> String {
        self.show(self.decimals(significant))
    }

    /// The mean alone, to `significant` digits as [`Spread::show_significant`] writes it.
    pub fn mean_significant(&self, significant: usize) -> String {
        crate::report::decimal(self.mean, self.decimals(significant))
    }

    fn decimals(&self, significant: usize) -> usize {
        let magnitude = if self.mean.abs() > 0.0 && self.mean.is_finite() {
            self.mean.abs().log10().floor() as i64
        } else {
            0
        };
        (significant as i64 - 1 - magnitude).clamp(0, 4) as usize
    }
}

/// Points on each side of the centred moving average the oscillation is measured around.
pub const OSCILLATION_HALF_WINDOW: usize = 10;

/// How much a loss oscillates in the second half of training: the standard deviation of its
/// logged values around their centred moving average over 2·`OSCILLATION_HALF_WINDOW` + 1
/// points. Subtracting the moving average removes the slow trend, so a loss that drifts
/// smoothly scores low and one that swings from step to step scores high. Non-finite
/// values (iterations without a G update) are skipped. `None` with fewer than
/// 2·half + 2 finite values in the second half.
pub fn oscillation(steps: &[f64], values: &[f64]) -> Option<f64> {
    let second_half = second_half(steps, values)?;
    let h = OSCILLATION_HALF_WINDOW;
    if second_half.len() < 2 * h + 2 {
        return None;
    }
    let residuals: Vec<f64> = (h..second_half.len() - h)
        .map(|i| {
            let window = &second_half[i - h..=i + h];
            second_half[i] - window.iter().sum::<f64>() / window.len() as f64
        })
        .collect();
    let n = residuals.len() as f64;
    let mean = residuals.iter().sum::<f64>() / n;
    Some((residuals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// A loss's level in the second half of training: the mean of its absolute logged values
/// (finite ones). The oscillation is read against it: a schedule that shrinks a loss shrinks
/// its swings with it. `None` without a finite value there.
pub fn level(steps: &[f64], values: &[f64]) -> Option<f64> {
    let half = second_half(steps, values)?;
    (!half.is_empty()).then(|| half.iter().map(|v| v.abs()).sum::<f64>() / half.len() as f64)
}

/// The finite values logged after half of the last logged iteration; None without any step.
fn second_half(steps: &[f64], values: &[f64]) -> Option<Vec<f64>> {
    let last = steps.last().copied()?;
    Some(
        steps
            .iter()
            .zip(values)
            .filter(|(s, v)| **s > last / 2.0 && v.is_finite())
            .map(|(_, v)| *v)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_sample_mean_and_std() {
        // NumPy: np.mean([1, 2, 4]) = 2.3333333333, np.std([1, 2, 4], ddof=1) = 1.5275252317
        let s = Spread::of(&[1.0, 2.0, f64::NAN, 4.0]).unwrap();
        assert!((s.mean - 2.333_333_333_3).abs() < 1e-9);
        assert!((s.std - 1.527_525_231_7).abs() < 1e-9);
        assert_eq!(s.n, 3);
        assert_eq!(s.show(2), "2.33 ± 1.53");
        assert_eq!(Spread::of(&[5.0]).unwrap().show(1), "5.0");
        let tiny = Spread::of(&[4.5e-5, 4.7e-5]).unwrap();
        assert_eq!(tiny.show(2), "4.6e-5 ± 1.4e-6");
        assert_eq!(s.show_significant(3), "2.33 ± 1.53");
        let wide = Spread::of(&[2939.0, 3039.4]).unwrap();
        assert_eq!(wide.show_significant(3), "2989 ± 71");
        assert_eq!(wide.mean_significant(3), "2989");
        assert_eq!(Spread::of(&[0.0123]).unwrap().show_significant(3), "0.0123");
        assert_eq!(Spread::of(&[2.2e-6]).unwrap().mean_significant(3), "2.2e-6");
        assert_eq!(Spread::of(&[0.0]).unwrap().show_significant(3), "0.00");
        assert!(Spread::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn a_smooth_trend_does_not_oscillate_and_an_alternation_does() {
        let steps: Vec<f64> = (1..=200).map(f64::from).collect();
        let trend: Vec<f64> = steps.iter().map(|s| 3.0 - s / 100.0).collect();
        assert!(oscillation(&steps, &trend).unwrap() < 1e-12);
        // ±0.5 alternating on top of the trend: the residual is about ±0.5 (the window's
        // mean of an odd number of alternating points is off by 0.5/21).
        let swinging: Vec<f64> = trend
            .iter()
            .enumerate()
            .map(|(i, t)| t + if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        let o = oscillation(&steps, &swinging).unwrap();
        assert!((o - 0.5 * (1.0 - 1.0 / 21.0)).abs() < 1e-9, "{o}");
        // Only the second half counts: swings in the first half are ignored.
        let early: Vec<f64> = steps
            .iter()
            .zip(&swinging)
            .zip(&trend)
            .map(|((s, w), t)| if *s <= 100.0 { *w } else { *t })
            .collect();
        assert!(oscillation(&steps, &early).unwrap() < 1e-12);
        assert!(oscillation(&steps[..30], &trend[..30]).is_none());
        // The level: the second half's mean absolute value.
        assert_eq!(
            level(&[1.0, 2.0, 3.0, 4.0], &[9.0, 9.0, -1.0, 3.0]),
            Some(2.0)
        );
        assert_eq!(level(&[1.0, 2.0], &[1.0, f64::NAN]), None);
    }
}
