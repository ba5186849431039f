//! The run's optional extra records: per-layer weight histograms (`log.histograms`) and the
//! TensorBoard event file (`log.tensorboard`), fed by the session beside metrics.csv and the
//! sample grids.

use crate::Result;
use crate::family::model::Model;
use crate::report::histogram::{self, Histogram};
use crate::report::tensorboard::{self, EventWriter, Value};

/// The TensorBoard event file of a run and the metrics.csv columns its rows carry.
pub struct Board {
    writer: EventWriter,
    columns: Vec<String>,
}

impl Board {
    /// The event file of a run at `step` when `log.tensorboard` asks for one (see
    /// [`EventWriter::open`]: a resumed or rolled-back run's file is cut back to `step`).
    pub fn for_run(
        cfg: &crate::config::Config,
        dir: &std::path::Path,
        step: u64,
        columns: Vec<String>,
    ) -> Result<Option<Board>> {
        if !cfg.log.tensorboard {
            return Ok(None);
        }
        Ok(Some(Board {
            writer: EventWriter::open(dir, step)?,
            columns,
        }))
    }

    /// One metrics.csv row as scalars: every finite value but the iteration's own number,
    /// tagged with its column's name.
    pub fn row(&mut self, step: u64, row: &[f64]) -> Result<()> {
        let values: Vec<(&str, Value)> = self
            .columns
            .iter()
            .zip(row)
            .filter(|(name, v)| name.as_str() != "step" && v.is_finite())
            .map(|(name, &v)| (name.as_str(), Value::Scalar(v as f32)))
            .collect();
        self.writer.write(step, &values)
    }

    /// The sample grid of `step`, as the image `samples`.
    pub fn image(&mut self, step: u64, img: &image::DynamicImage) -> Result<()> {
        let png = tensorboard::png_bytes(img)?;
        let value = Value::Image {
            png: &png,
            height: img.height(),
            width: img.width(),
            channels: u32::from(img.color().channel_count()),
        };
        self.writer.write(step, &[("samples", value)])?;
        self.writer.flush()
    }

    /// Weight histograms, tagged `NETWORK/variable`.
    pub fn histograms(&mut self, step: u64, panels: &[(String, Histogram)]) -> Result<()> {
        let tags: Vec<String> = panels
            .iter()
            .map(|(n, _)| n.replacen(' ', "/", 1))
            .collect();
        let values: Vec<(&str, Value)> = tags
            .iter()
            .zip(panels)
            .map(|(t, (_, h))| (t.as_str(), Value::Histogram(h)))
            .collect();
        self.writer.write(step, &values)?;
        self.writer.flush()
    }

    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush()
    }
}

/// The histograms of every network's weight tensors of rank ≥ 2 (convolution and linear
/// weights; biases and normalisation gains are left out), titled `NETWORK variable`.
pub fn weight_histograms(model: &Model) -> Result<Vec<(String, Histogram)>> {
    let mut out = Vec::new();
    for net in &model.networks {
        for (name, var) in net.params.trainable() {
            if var.rank() < 2 {
                continue;
            }
            let values = var
                .flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?;
            if let Some(h) = Histogram::of(&values, histogram::BINS) {
                out.push((format!("{} {name}", net.name), h));
            }
        }
    }
    Ok(out)
}
