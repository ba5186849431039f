//! Per-layer weight histograms (`log.histograms = [iterations]`): report 003 §2 (Figs. 1–2,
//! after Gulrajani et al. 2017, Fig. 1b) shows that weight clipping drives a critic's
//! weights to ±c while the gradient penalty leaves them spread. At each chosen iteration a
//! run writes `histograms/step_XXXXXX.png`, one panel per weight tensor (rank ≥ 2: the
//! convolution and linear weights) of each network, and, with `log.tensorboard`, the same
//! histograms to the event file.

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

/// Bins per histogram.
pub const BINS: usize = 40;

/// Counts of values in equal-width bins between their minimum and maximum.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub sum_squares: f64,
    /// `bins + 1` bin edges, from `min` to `max`.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    /// The histogram of the finite `values` in `bins` bins (the last bin includes `max`).
    /// All-equal values get one bin of width 1e-12 around them. None without finite values.
    pub fn of(values: &[f32], bins: usize) -> Option<Histogram> {
        let bins = bins.max(1);
        let finite = values
            .iter()
            .map(|&v| f64::from(v))
            .filter(|v| v.is_finite());
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut sum, mut sum_squares) = (0.0, 0.0);
        for v in finite.clone() {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            sum_squares += v * v;
        }
        if !min.is_finite() {
            return None;
        }
        let width = if max > min {
            (max - min) / bins as f64
        } else {
            1e-12
        };
        let edges: Vec<f64> = (0..=bins).map(|i| min + width * i as f64).collect();
        let mut counts = vec![0u64; bins];
        for v in finite {
            let i = (((v - min) / width) as usize).min(bins - 1);
            counts[i] += 1;
        }
        Some(Histogram {
            min,
            max,
            sum,
            sum_squares,
            edges,
            counts,
        })
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Draw `panels` (title, histogram) in a grid of small bar charts into a PNG at `path`.
pub fn draw(path: &Path, title: &str, panels: &[(String, Histogram)]) -> Result<()> {
    super::plot::register_font();
    let err = |e: String| Error::Run(format!("cannot draw {}: {e}", path.display()));
    let cols = panels.len().clamp(1, 4);
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (320u32, 220u32);
    let (w, h) = (pw * cols as u32, ph * rows as u32 + 40);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| err(e.to_string()))?;
        let areas = root.split_evenly((rows, cols));
        for ((name, hist), area) in panels.iter().zip(areas) {
            let top = hist.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
            let (lo, hi) = (hist.edges[0], *hist.edges.last().expect("edges"));
            let mut chart = ChartBuilder::on(&area)
                .caption(name, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(44)
                .build_cartesian_2d(lo..hi, 0f64..top * 1.05)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(4)
                .x_label_formatter(&|v| format!("{v:.3}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style(("sans-serif", 11))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            let bars = hist.counts.iter().enumerate().map(|(i, &c)| {
                Rectangle::new(
                    [(hist.edges[i], 0.0), (hist.edges[i + 1], c as f64)],
                    BLUE.mix(0.6).filled(),
                )
            });
            chart.draw_series(bars).map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    super::plot::write_rgb_png(path, w, h, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_match_numpy_histogram() {
        // numpy.histogram([-1, -0.5, 0, 0.25, 1, 1], bins=4) -> counts [1, 1, 2, 2],
        // edges [-1, -0.5, 0, 0.5, 1] (its last bin includes the maximum, as here).
        let h = Histogram::of(&[-1.0, -0.5, 0.0, 0.25, 1.0, 1.0], 4).unwrap();
        assert_eq!(h.counts, vec![1, 1, 2, 2]);
        assert_eq!(h.edges, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!((h.min, h.max, h.count()), (-1.0, 1.0, 6));
        assert!((h.sum - 0.75).abs() < 1e-12);
        assert!((h.sum_squares - 3.3125).abs() < 1e-12);
    }

    #[test]
    fn clipped_weights_pile_up_at_the_ends_and_nan_is_skipped() {
        let mut w: Vec<f32> = (0..1000)
            .map(|i| if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        w.push(0.0);
        w.push(f32::NAN);
        let h = Histogram::of(&w, 40).unwrap();
        assert_eq!((h.counts[0], h.counts[39], h.count()), (500, 500, 1001));
        assert!(Histogram::of(&[f32::NAN], 4).is_none());
        let same = Histogram::of(&[2.0, 2.0], 3).unwrap();
        assert_eq!(same.counts, vec![2, 0, 0]);
    }

    #[test]
    fn draws_one_panel_per_layer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.png");
        let h = Histogram::of(&[0.0, 1.0, 2.0], 4).unwrap();
        let panels: Vec<_> = (0..5).map(|i| (format!("D layer{i}"), h.clone())).collect();
        draw(&p, "weights", &panels).unwrap();
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (4 * 320, 2 * 220 + 40));
    }
}
