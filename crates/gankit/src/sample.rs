//! Drawing images from a trained model of any family (`gankit sample`, `gankit eval`).

use std::path::Path;

use candle_core::Device;

use crate::checkpoint;
use crate::config::Config;
use crate::evaluator::representation::{self, Labelled};
use crate::family::{self, Draw, Family, latent};
use crate::report::{grid, npy};
use crate::rng::{Rng, stream};
use crate::train::RunDir;
use crate::{Error, Result};

/// A model restored from a run's checkpoint.
pub struct Trained {
    pub cfg: Config,
    pub family: Box<dyn Family>,
    /// The iteration the checkpoint was written at.
    pub step: u64,
    /// Draw from the weight average (when the run keeps one).
    pub ema: bool,
    /// Truncate the noise at ±ψ (Brock et al. 2019); `None` draws plain N(0, I).
    pub truncation: Option<f64>,
}

/// Load the checkpoint of `step` (the newest when `None`) of the run in `dir`. With
/// `ema` false, G's own weights draw the images, not their average.
pub fn load(dir: &Path, step: Option<u64>, ema: bool, device: &Device) -> Result<Trained> {
    let run = RunDir::new(dir);
    let cfg = run.load_config()?;
    let loaded = checkpoint::load(&run.checkpoints(), step, device)?;
    refuse_other_architecture(&loaded, &cfg)?;
    let mut family = family::build(&cfg, device)?;
    family.model_mut().restore(&loaded.tensors)?;
    family.at_step(loaded.state.run.step);
    if ema {
        family.prepare_sampling()?;
    }
    Ok(Trained {
        cfg,
        family,
        step: loaded.state.run.step,
        ema,
        truncation: None,
    })
}

/// Refuse a checkpoint whose saved config builds other networks than `cfg` (config.toml
/// edited, or the checkpoint copied from another run), naming the keys that differ.
fn refuse_other_architecture(loaded: &checkpoint::Loaded, cfg: &Config) -> Result<()> {
    let Some(saved) = loaded.state.config.as_deref() else {
        return Ok(()); // older checkpoints: the tensor names and shapes are still checked
    };
    let saved = Config::from_toml_str(saved, "checkpoint", &[])?;
    let shape_keys = ["model.", "data.channels", "data.image_size"];
    let diffs: Vec<String> = crate::config::differences(&saved, cfg)
        .into_iter()
        .filter(|d| shape_keys.iter().any(|k| d.starts_with(k)))
        .collect();
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "checkpoint {} was written for other networks than config.toml describes ({}): restore the run's config.toml",
        loaded.path.display(),
        diffs.join(", ")
    )))
}

impl Trained {
    /// `n` images (n, C, H, W) in [-1, 1] from noise seeded by `seed` (see `Nets::generate`);
    /// in a conditional run all of `class`, or every class in turn.
    pub fn generate(&self, n: usize, class: Option<u32>, seed: u64) -> Result<Vec<f32>> {
        let classes = self.classes_of(n, class)?;
        self.draw(
            n,
            classes.as_deref(),
            None,
            &mut Rng::new(seed, stream::SAMPLE),
        )
    }

    /// The classes of `n` images: all `class`, or (conditional runs) each in turn.
    pub fn classes_of(&self, n: usize, class: Option<u32>) -> Result<Option<Vec<u32>>> {
        let classes = self.family.classes();
        if let Some(k) = class {
            if classes == 0 {
                return Err(Error::Config(
                    "--class: this run is not conditional (its model.classes is 0)".into(),
                ));
            }
            if k as usize >= classes {
                return Err(Error::Config(format!(
                    "--class {k}: this run has classes 0 to {}",
                    classes - 1
                )));
            }
        }
        Ok(latent::cycle_classes(n, classes, class))
    }

    /// `n` images of `classes` (one per image in a conditional run) and categorical
    /// `codes` (one per image, in a family with a code; drawn when `None`), noise from
    /// `rng`.
    pub fn draw(
        &self,
        n: usize,
        classes: Option<&[u32]>,
        codes: Option<&[u32]>,
        rng: &mut Rng,
    ) -> Result<Vec<f32>> {
        let draw = Draw {
            classes,
            codes,
            truncation: self.truncation,
        };
        family::generate(self.family.as_ref(), n, &draw, rng, self.ema)
    }

    /// The attention-map figure of `n` generated images (see `report::attention`) for the
    /// generator's self-attention layer after its map of side `side` (the first listed in
    /// `model.attention` when `None`).
    pub fn write_attention(
        &self,
        n: usize,
        side: Option<usize>,
        seed: u64,
        out: &Path,
    ) -> Result<()> {
        let sides = &self.cfg.model.attention;
        let Some(side) = side.or(sides.first().copied()) else {
            return Err(Error::Config(
                "this run has no self-attention layer (model.attention is empty)".into(),
            ));
        };
        if !(1..=64).contains(&n) {
            return Err(Error::Config(format!("--n {n}: draw 1 to 64 images")));
        }
        let classes = self.classes_of(n, None)?;
        let draw = Draw {
            classes: classes.as_deref(),
            ..Default::default()
        };
        let z = self
            .family
            .latent(n, &draw, &mut Rng::new(seed, stream::SAMPLE))?;
        let Some((images, maps)) = self.family.attention_map(&z, side)? else {
            return Err(Error::Config(format!(
                "--side {side}: the generator has attention at {sides:?}"
            )));
        };
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        let keys = maps.dim(2)?;
        let key_side = (keys as f64).sqrt().round() as usize;
        let scale = (96 / s).max(1);
        crate::report::attention::write(
            out,
            &images.flatten_all()?.to_vec1::<f32>()?,
            n,
            c,
            s,
            &maps.flatten_all()?.to_vec1::<f32>()?,
            side,
            key_side,
            scale,
        )
    }

    /// Whether the family has an encoder (BiGAN, BigBiGAN, VAE-GAN).
    pub fn has_encoder(&self) -> Result<bool> {
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        let x = candle_core::Tensor::zeros((2, c, s, s), candle_core::DType::F32, &Device::Cpu)?;
        Ok(self.family.encode(&x, false)?.is_some())
    }

    /// The held-out images of the representation numbers and reconstructions: the
    /// Fashion-MNIST test split for Fashion-MNIST runs, else the `n` images of the run's
    /// data after the first `n` of a seeded permutation (which the probes are fitted on).
    fn held_out(&self, data: &crate::data::ImageSet, n: usize, seed: u64) -> Result<Labelled> {
        if self.cfg.data.dataset == crate::config::DatasetKind::FashionMnist {
            let test = crate::data::load(&crate::config::DataConfig {
                split: crate::config::Split::Test,
                ..self.cfg.data.clone()
            })?;
            return representation::slice_of(&test, 0, n, seed);
        }
        representation::slice_of(data, n, n, seed)
    }

    /// The representation numbers of a family with an encoder (see
    /// `evaluator::representation`), fitted on `n` images of the run's data and scored on
    /// `n` held-out ones; `None` without an encoder.
    pub fn representation(
        &self,
        ev: &dyn crate::evaluator::Extractor,
        n: usize,
        seed: u64,
    ) -> Result<Option<representation::RepresentationReport>> {
        if !self.has_encoder()? {
            return Ok(None);
        }
        let data = crate::data::load(&self.cfg.data)?;
        let fit = representation::slice_of(&data, 0, n, seed)?;
        let held_out = self.held_out(&data, n, seed)?;
        if fit.n < 10 || held_out.n < 10 {
            return Err(Error::Data(format!(
                "{} has {} images: too few to fit and score a probe",
                data.source, data.len
            )));
        }
        let untrained = family::build(&self.cfg, &Device::Cpu)?;
        Ok(Some(representation::evaluate(
            self.family.as_ref(),
            untrained.as_ref(),
            ev,
            &fit,
            &held_out,
            self.ema,
            seed,
        )?))
    }

    /// `n` held-out images (see [`Trained::representation`]) and their reconstructions
    /// G(E(x)) (μ for a variational encoder): a PNG grid with each row of inputs above its
    /// row of reconstructions, or (.npy) the reconstructions as float32 (n, C, H, W).
    pub fn write_reconstructions(&self, n: usize, seed: u64, out: &Path) -> Result<()> {
        if !self.has_encoder()? {
            return Err(Error::Config(
                "reconstruct needs a model family with an encoder (bigan, bigbigan or vaegan)"
                    .into(),
            ));
        }
        if !(1..=MAX_GRID).contains(&n) {
            return Err(Error::Config(format!(
                "--n {n}: reconstruct 1 to {MAX_GRID} images"
            )));
        }
        let data = crate::data::load(&self.cfg.data)?;
        let held = self.held_out(&data, n, seed)?;
        let (codes, width) =
            representation::encode_all(self.family.as_ref(), &held.images, held.n, self.ema)?;
        let recon =
            representation::decode_all(self.family.as_ref(), &codes, held.n, width, self.ema)?;
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        let ext = out
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => npy::write_f32(out, &recon, &[held.n, c, s, s]),
            Some("png") => {
                let per = c * s * s;
                let cols = grid::columns(held.n).max(1);
                let mut tiles = Vec::with_capacity(2 * recon.len());
                for start in (0..held.n).step_by(cols) {
                    let end = (start + cols).min(held.n);
                    for src in [&held.images, &recon] {
                        tiles.extend_from_slice(&src[start * per..end * per]);
                        // A short last row is filled with mid-grey tiles.
                        tiles.extend(std::iter::repeat_n(0.0, (cols - (end - start)) * per));
                    }
                }
                let rows = 2 * held.n.div_ceil(cols);
                grid::write_png_columns(out, &tiles, rows * cols, cols, c, s)
            }
            _ => Err(Error::Config(format!(
                "--out {}: the file name must end in .png (inputs above reconstructions) or .npy",
                out.display()
            ))),
        }
    }

    /// E(x) of the first `n` images of the run's data (or of the Fashion-MNIST `split`)
    /// as float32 (n, z), and their labels as float32 (n) in `FILE.labels.npy` when the
    /// data has them.
    pub fn write_codes(&self, n: usize, test: bool, out: &Path) -> Result<usize> {
        if !self.has_encoder()? {
            return Err(Error::Config(
                "encode needs a model family with an encoder (bigan, bigbigan or vaegan)".into(),
            ));
        }
        let mut cfg = self.cfg.data.clone();
        if test {
            if cfg.dataset != crate::config::DatasetKind::FashionMnist {
                return Err(Error::Config(
                    "--test: only Fashion-MNIST runs have a test split; leave it out".into(),
                ));
            }
            cfg.split = crate::config::Split::Test;
        }
        let data = crate::data::load(&cfg)?;
        let n = n.min(data.len);
        let per = data.image_len();
        let mut images = vec![0f32; n * per];
        for i in 0..n {
            data.write_scaled(i, &mut images[i * per..(i + 1) * per])?;
        }
        let (codes, width) =
            representation::encode_all(self.family.as_ref(), &images, n, self.ema)?;
        npy::write_f32(out, &codes, &[n, width])?;
        if let Some(labels) = &data.labels {
            let l: Vec<f32> = labels[..n].iter().map(|&v| v as f32).collect();
            npy::write_f32(&out.with_extension("labels.npy"), &l, &[n])?;
        }
        Ok(n)
    }

    /// The traversal figure of a family with codes (InfoGAN, Chen et al. 2016 Fig. 2): one
    /// row per categorical value, `columns` columns sweeping continuous code `code` from
    /// −2 to 2, the noise fixed (drawn from `seed`); written as a PNG grid.
    pub fn write_traversal(
        &self,
        code: usize,
        columns: usize,
        seed: u64,
        out: &Path,
    ) -> Result<()> {
        if !(2..=64).contains(&columns) {
            return Err(Error::Config(format!(
                "--columns {columns}: a traversal has 2 to 64 columns"
            )));
        }
        let mut rng = Rng::new(seed, stream::SAMPLE);
        let Some(z) = self.family.traversal(code, columns, &mut rng)? else {
            return Err(Error::Config(
                "--traverse needs a run with latent codes (model.family = \"infogan\")".into(),
            ));
        };
        let n = z.dim(0)?;
        let images = self.family.render(&z, self.ema)?;
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        grid::write_png_columns(
            out,
            &images.flatten_all()?.to_vec1::<f32>()?,
            n,
            columns,
            c,
            s,
        )
    }

    /// Generate `n` images (of `class`, see [`Trained::generate`]) and write them to `out`:
    /// a grid for `.png` (in a conditional run without `class`, one class per row), a
    /// float32 array (n, C, H, W) for `.npy`, written a chunk at a time.
    pub fn write(&self, n: usize, class: Option<u32>, seed: u64, out: &Path) -> Result<()> {
        let ext = out
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        let limit = match ext.as_deref() {
            Some("png") => MAX_GRID,
            _ => MAX_ARRAY,
        };
        if n == 0 || n > limit {
            return Err(Error::Config(format!(
                "--n {n}: a {} holds 1 to {limit} images",
                if limit == MAX_GRID {
                    "grid (.png)"
                } else {
                    "array (.npy)"
                }
            )));
        }
        match ext.as_deref() {
            Some("png") => {
                // One class (or categorical code) per row, unless --class picks one.
                let images = match class {
                    None => self.draw(
                        n,
                        latent::grid_classes(n, self.family.classes()).as_deref(),
                        latent::grid_classes(n, self.family.codes()).as_deref(),
                        &mut Rng::new(seed, stream::SAMPLE),
                    )?,
                    Some(_) => self.generate(n, class, seed)?,
                };
                grid::write_png(out, &images, n, c, s)
            }
            Some("npy") => {
                let classes = self.classes_of(n, class)?;
                let mut rng = Rng::new(seed, stream::SAMPLE);
                let mut w = npy::NpyWriter::create(out, &[n, c, s, s])?;
                let mut start = 0;
                while start < n {
                    let count = CHUNK.min(n - start);
                    let cls = classes.as_ref().map(|k| &k[start..start + count]);
                    w.write(&self.draw(count, cls, None, &mut rng)?)?;
                    start += count;
                }
                w.finish()
            }
            _ => Err(Error::Config(format!(
                "--out {}: the file name must end in .png (a grid) or .npy (a NumPy array)",
                out.display()
            ))),
        }
    }
}

/// Most images in one sample grid (a 100 × 100 grid of 64 px tiles is already 6600 px).
pub const MAX_GRID: usize = 10_000;
/// Most images in one sampled array.
pub const MAX_ARRAY: usize = 1_000_000;
/// Images generated at once when writing an array (a multiple of the generator's batch of
/// 256, so the noise drawn is the same as in one call).
const CHUNK: usize = 2560;
