//! Drawing images from a trained generator.

use std::path::Path;

use candle_core::Device;

use crate::checkpoint;
use crate::config::Config;
use crate::nets::Nets;
use crate::nn::Mode;
use crate::report::{grid, npy};
use crate::rng::{Rng, stream};
use crate::train::RunDir;
use crate::{Error, Result};

/// A generator restored from a run's checkpoint.
pub struct Trained {
    pub cfg: Config,
    pub nets: Nets,
    /// The iteration the checkpoint was written at.
    pub step: u64,
}

/// Load the checkpoint of `step` (the newest when `None`) of the run in `dir`.
pub fn load(dir: &Path, step: Option<u64>, device: &Device) -> Result<Trained> {
    let run = RunDir::new(dir);
    let cfg = run.load_config()?;
    let loaded = checkpoint::load(&run.checkpoints(), step, device)?;
    let mut nets = Nets::build(&cfg, device)?;
    nets.restore(&loaded.tensors)?;
    Ok(Trained {
        cfg,
        nets,
        step: loaded.state.step,
    })
}

impl Trained {
    /// `n` images (n, C, H, W) in [-1, 1] from noise seeded by `seed`, generated in batches
    /// with batch norm in evaluation mode (running statistics).
    pub fn generate(&self, n: usize, seed: u64) -> Result<Vec<f32>> {
        let mut rng = Rng::new(seed, stream::SAMPLE);
        let mut out =
            Vec::with_capacity(n * self.cfg.data.channels * self.cfg.data.image_size.pow(2));
        let mut left = n;
        while left > 0 {
            let b = left.min(256);
            let z = self.nets.noise(&mut rng, b)?;
            let x = self.nets.g.forward(&z, &mut Mode::Eval)?;
            out.extend(x.flatten_all()?.to_vec1::<f32>()?);
            left -= b;
        }
        Ok(out)
    }

    /// Generate `n` images and write them to `out`: a grid for `.png`, a float32 array
    /// (n, C, H, W) for `.npy`.
    pub fn write(&self, n: usize, seed: u64, out: &Path) -> Result<()> {
        let ext = out
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        match ext.as_deref() {
            Some("png") => grid::write_png(out, &self.generate(n, seed)?, n, c, s),
            Some("npy") => npy::write_f32(out, &self.generate(n, seed)?, &[n, c, s, s]),
            _ => Err(Error::Config(format!(
                "--out {}: the file name must end in .png (a grid) or .npy (a NumPy array)",
                out.display()
            ))),
        }
    }
}
