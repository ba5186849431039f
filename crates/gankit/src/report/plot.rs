//! The loss-curve PNG, rendered from metrics.csv with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is embedded and valid; failure would only lose the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Trailing moving average over the last `w` finite points (for readability of noisy GAN
/// losses). Non-finite points (iterations without a G update log NaN) are skipped: they
/// stay NaN in the output and are not drawn, and the average runs over the others.
fn smooth(y: &[f64], w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(y.len());
    let mut window = std::collections::VecDeque::with_capacity(w);
    let mut sum = 0.0;
    for &v in y {
        if !v.is_finite() {
            out.push(f64::NAN);
            continue;
        }
        window.push_back(v);
        sum += v;
        if window.len() > w {
            sum -= window.pop_front().expect("window is not empty");
        }
        out.push(sum / window.len() as f64);
    }
    out
}

/// One line of a plot: values against their own iterations.
#[derive(Clone, Debug)]
pub struct Curve {
    pub name: String,
    pub steps: Vec<f64>,
    pub values: Vec<f64>,
}

/// Plot `series` (name, values) against `steps` into a PNG at `path`: raw values faint,
/// a moving average on top.
pub fn loss_curves(
    path: &Path,
    title: &str,
    y_label: &str,
    steps: &[f64],
    series: &[(&str, Vec<f64>)],
) -> Result<()> {
    let curves: Vec<Curve> = series
        .iter()
        .map(|(name, values)| Curve {
            name: name.to_string(),
            steps: steps.to_vec(),
            values: values.clone(),
        })
        .collect();
    curves_png(path, title, y_label, &curves)
}

/// Plot curves, each against its own iterations, into a PNG at `path`: raw values faint, a
/// moving average on top (runs of different lengths overlay on one axis).
pub fn curves_png(path: &Path, title: &str, y_label: &str, series: &[Curve]) -> Result<()> {
    register_font();
    let err = |e: String| Error::Run(format!("cannot draw {}: {e}", path.display()));
    let (w, h) = (900u32, 500u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let x_max = series
            .iter()
            .filter_map(|c| c.steps.last().copied())
            .fold(1.0f64, f64::max);
        let all = series
            .iter()
            .flat_map(|c| c.values.iter().copied())
            .filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo.min(0.0), hi.max(lo + 1e-3))
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, lo..hi * 1.05)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc(y_label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, c) in series.iter().enumerate() {
            let color = Palette99::pick(i);
            let window = (c.steps.len() / 50).max(1);
            let pts = |ys: Vec<f64>| {
                c.steps
                    .iter()
                    .copied()
                    .zip(ys)
                    .filter(|(_, y)| y.is_finite())
                    .collect::<Vec<_>>()
            };
            if window > 1 {
                chart
                    .draw_series(LineSeries::new(pts(c.values.clone()), color.mix(0.25)))
                    .map_err(|e| err(e.to_string()))?;
            }
            chart
                .draw_series(LineSeries::new(
                    pts(smooth(&c.values, window)),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(c.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    write_rgb_png(path, w, h, buf)
}

/// Write a drawn `w`×`h` RGB buffer as a PNG at `path`, atomically.
pub(crate) fn write_rgb_png(path: &Path, w: u32, h: u32, buf: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer sized for the image");
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Run(format!("cannot draw {}: {e}", path.display())))?;
    crate::fsutil::write_atomic(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_a_trailing_mean() {
        assert_eq!(smooth(&[1.0, 3.0, 5.0, 7.0], 2), vec![1.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn smoothing_skips_the_nan_rows_of_iterations_without_a_g_update() {
        let nan = f64::NAN;
        let s = smooth(&[nan, 2.0, nan, 4.0, nan, 6.0], 2);
        assert!(s[0].is_nan() && s[2].is_nan() && s[4].is_nan());
        assert_eq!((s[1], s[3], s[5]), (2.0, 3.0, 5.0));
    }

    #[test]
    fn draws_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss.png");
        let steps: Vec<f64> = (1..=100).map(|s| s as f64).collect();
        let a: Vec<f64> = steps.iter().map(|s| (s / 10.0).sin() + 1.0).collect();
        loss_curves(
            &p,
            "test",
            "loss",
            &steps,
            &[("d_loss", a.clone()), ("g_loss", a)],
        )
        .unwrap();
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (900, 500));
    }
}
