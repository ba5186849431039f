//! `gankit evaluator train` and `gankit eval`.

use std::path::{Path, PathBuf};

use candle_core::Device;
use clap::Args;
use gankit::config::{DataConfig, DatasetKind, Split};
use gankit::data::{self, ImageSet};
use gankit::evaluator::input::{self, InputRange};
use gankit::evaluator::{self, Extractor, RealFeatures, TrainOptions};
use gankit::{Error, Result};

#[derive(Args)]
pub struct ImportInceptionArgs {
    /// pytorch-fid's Inception weights as safetensors (a .pth goes through
    /// scripts/convert_inception.py first).
    file: PathBuf,
    /// Where evaluators are stored (default: $GANKIT_HOME, else ~/.local/share/gankit).
    #[arg(long)]
    home: Option<PathBuf>,
}

/// `gankit evaluator import-inception FILE`: check and store the Inception weights.
pub fn import_inception(args: ImportInceptionArgs) -> Result<()> {
    let home = args.home.unwrap_or_else(evaluator::home);
    let info = evaluator::inception::store::import(&home, &args.file)?;
    eprintln!(
        "imported {} tensors from {} as {} (SHA-256 {})",
        info.tensors,
        args.file.display(),
        evaluator::inception::store::weights_path(&home).display(),
        &info.sha256[..12]
    );
    Ok(())
}

#[derive(Args)]
pub struct EvaluatorTrainArgs {
    /// "fashion-mnist" (the train and test splits, found as `gankit datasets` shows), or a
    /// name for the IDX files given with --train and --test.
    #[arg(long, default_value = "fashion-mnist")]
    dataset: String,
    /// Directory with the Fashion-MNIST files (default: the system copy).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Training images (IDX; labels-idx1 beside it), for datasets other than Fashion-MNIST.
    #[arg(long, requires = "test")]
    train: Option<PathBuf>,
    /// Test images (IDX; labels-idx1 beside it).
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// Name to store it under, which `--evaluator NAME` and `eval.evaluator` then select
    /// (default: the --dataset name). The built-in fashion-mnist-v1 and random-features
    /// cannot be replaced.
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where evaluators are stored (default: $GANKIT_HOME, else ~/.local/share/gankit).
    #[arg(long)]
    home: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory: its generator's samples are scored against its own data set.
    run_dir: Option<PathBuf>,
    /// Checkpoint step of the run (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Score G's own weights, not their average, in a run with [ema].
    #[arg(long)]
    no_ema: bool,
    /// Images to score (and real images to compare with), 10 to 1,000,000.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Score this array instead of a run: float32 / float64 / uint8 (N, C, H, W), values in
    /// the --input-range.
    #[arg(long, conflicts_with = "run_dir")]
    fake: Option<PathBuf>,
    /// The value range of --fake and --real arrays: -1,1 (gankit's, the default), 0,1
    /// (torchvision's) or 0,255 (8-bit pixels). Values outside it are an error.
    #[arg(long, default_value = "-1,1", allow_hyphen_values = true)]
    input_range: InputRange,
    /// Real images as an array like --fake.
    #[arg(long, conflicts_with = "dataset")]
    real: Option<PathBuf>,
    /// Real images from a data set: fashion-mnist, fashion-mnist:train or fashion-mnist:test.
    #[arg(long)]
    dataset: Option<String>,
    /// Evaluator name: "auto" picks the data set's own (the built-in fashion-mnist-v1 for
    /// Fashion-MNIST and for arrays), "inception" is pytorch-fid's Inception-v3 (the FID
    /// papers report; import its weights first), "random-features" is the fallback for
    /// data without labels, any other name one stored by `gankit evaluator train --name`.
    #[arg(long, default_value = "auto")]
    evaluator: String,
    /// With --evaluator inception: score the images as they are, without first rounding
    /// them to the 8 bits a saved PNG holds (pytorch-fid scores PNG files, so the rounding
    /// is the default).
    #[arg(long)]
    no_quantize: bool,
    /// The real side as a pytorch-fid statistics file (mu, sigma), e.g. published
    /// reference statistics: FID (and the Inception Score) only, since KID, precision,
    /// recall, density and coverage need the real images.
    #[arg(long, value_name = "FILE.npz", conflicts_with_all = ["real", "dataset"])]
    stats: Option<PathBuf>,
    /// Write the statistics (mu, sigma) of the generated images to DIR/generated.npz, and
    /// of the real ones to DIR/real.npz, as pytorch-fid writes them.
    #[arg(long, value_name = "DIR")]
    save_stats: Option<PathBuf>,
    /// FID and the Inception Score only, as pytorch-fid computes: skips KID and the
    /// nearest-neighbour metrics (precision, recall, density, coverage), which take most
    /// of the time after the features at 2048 dimensions.
    #[arg(long)]
    fid_only: bool,
    /// Seed of the generated noise and of the real subset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Truncation trick for a run's samples: noise from N(0, I) truncated at ±ψ.
    #[arg(long, value_name = "PSI", conflicts_with = "fake")]
    truncation: Option<f64>,
    /// Families with an encoder: images the linear probe is fitted on, and held-out images
    /// it and the reconstructions are scored on.
    #[arg(long, default_value_t = 10_000)]
    probe_n: usize,
    /// Images per code value for the code purity of a run with a categorical code
    /// (InfoGAN).
    #[arg(long, default_value_t = 1000)]
    purity_n: usize,
    /// Where to write eval.json (default: the run directory, or beside --fake).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where evaluators are stored (default: $GANKIT_HOME, else ~/.local/share/gankit).
    #[arg(long)]
    home: Option<PathBuf>,
}

fn fashion(split: Split, dir: Option<PathBuf>) -> Result<ImageSet> {
    let set = data::load(&DataConfig {
        split,
        path: dir,
        ..DataConfig::default()
    })?;
    if set.source.starts_with("embedded") && split == Split::Train {
        return Err(Error::Data(
            "the Fashion-MNIST train split was not found: install Debian's dataset-fashion-mnist or pass --data DIR".into(),
        ));
    }
    Ok(set)
}

pub fn train_evaluator(args: EvaluatorTrainArgs) -> Result<()> {
    if !(1..=1000).contains(&args.epochs) {
        return Err(Error::Config(format!(
            "--epochs {}: train for 1 to 1000 epochs (4 is the default)",
            args.epochs
        )));
    }
    let home = args.home.unwrap_or_else(evaluator::home);
    let name = args.name.clone().unwrap_or_else(|| args.dataset.clone());
    if evaluator::reserved(&name) {
        return Err(Error::Config(format!(
            "--name {name} is built into gankit and cannot be replaced: store yours under another name"
        )));
    }
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::Config(format!(
            "--name {name:?} must be a plain name (it becomes a file name)"
        )));
    }
    let (train, test) = match (&args.train, &args.test) {
        (Some(tr), Some(te)) => {
            let load = |p: &Path| -> Result<ImageSet> {
                let cfg = DataConfig {
                    dataset: DatasetKind::Idx,
                    path: Some(p.to_path_buf()),
                    ..DataConfig::default()
                };
                data::load(&cfg)
            };
            (load(tr)?, load(te)?)
        }
        _ if args.dataset == "fashion-mnist" => (
            fashion(Split::Train, args.data.clone())?,
            fashion(Split::Test, args.data)?,
        ),
        _ => {
            return Err(Error::Config(format!(
                "--dataset {}: give its IDX files with --train FILE --test FILE",
                args.dataset
            )));
        }
    };
    eprintln!(
        "training the {name} evaluator on {} ({} images), testing on {} images",
        train.source, train.len, test.len
    );
    let opts = TrainOptions {
        epochs: args.epochs,
        seed: args.seed,
        ..TrainOptions::default()
    };
    let t0 = std::time::Instant::now();
    let mut ev = evaluator::train(&name, train, &test, &opts, &mut |e, loss| {
        eprintln!(
            "epoch {e}: mean loss {loss:.4} ({:.0} s)",
            t0.elapsed().as_secs_f64()
        );
    })?;
    let path = ev.save(&home)?;
    println!(
        "test accuracy {:.2} % · {} · sha256 {}",
        100.0 * ev.info.test_accuracy,
        path.display(),
        ev.info.sha256
    );
    Ok(())
}

/// An image array (N, C, H, W) from an .npy file, checked and mapped to [-1, 1].
fn read_array(path: &Path, range: InputRange) -> Result<(Vec<f32>, [usize; 4])> {
    let a = gankit::report::npy::read(path)?;
    input::images(&a, range, &path.display().to_string())
}

fn real_set(spec: &str) -> Result<ImageSet> {
    match spec {
        "fashion-mnist" | "fashion-mnist:train" => fashion(Split::Train, None),
        "fashion-mnist:test" => fashion(Split::Test, None),
        other => Err(Error::Config(format!(
            "--dataset {other}: use fashion-mnist, fashion-mnist:train or fashion-mnist:test, or --real FILE.npy"
        ))),
    }
}

/// Write pytorch-fid statistics files of both sides under `dir` (see `--save-stats`).
fn save_stats(
    dir: Option<&Path>,
    real: &RealFeatures,
    fake: &evaluator::FakeFeatures,
) -> Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let generated = dir.join("generated.npz");
    evaluator::stats_file::write(
        &generated,
        &gankit::metrics::GaussianStats::of(&fake.features),
    )?;
    eprintln!("wrote {}", generated.display());
    // Statistics read from a file are not written back as if computed here.
    if real.images.is_some() {
        let path = dir.join("real.npz");
        evaluator::stats_file::write(&path, &real.stats)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The most images `gankit eval --n` scores.
const MAX_SCORED: usize = 1_000_000;

pub fn eval(args: EvalArgs) -> Result<()> {
    if !(input::MIN_IMAGES..=MAX_SCORED).contains(&args.n) {
        return Err(Error::Config(format!(
            "--n {}: score between {} and {MAX_SCORED} images (10000 is usual)",
            args.n,
            input::MIN_IMAGES
        )));
    }
    let home = args.home.clone().unwrap_or_else(evaluator::home);
    let t0 = std::time::Instant::now();
    let range = args.input_range;
    // The generated images (or the generator), their shape, the default output and the
    // default evaluator.
    enum Fake {
        Run(Box<gankit::sample::Trained>),
        Array(Vec<f32>),
    }
    let (fake, [n_fake, c, s, _], default_out, auto) = match (&args.run_dir, &args.fake) {
        (Some(run), None) => {
            crate::commands::check_truncation(args.truncation)?;
            let mut trained = gankit::sample::load(run, args.step, !args.no_ema, &Device::Cpu)?;
            trained.truncation = args.truncation;
            let d = &trained.cfg.data;
            let shape = [args.n, d.channels, d.image_size, d.image_size];
            let auto = evaluator::default_for(d);
            (
                Fake::Run(Box::new(trained)),
                shape,
                run.join("eval.json"),
                auto,
            )
        }
        (None, Some(f)) => {
            let (images, shape) = read_array(f, range)?;
            (
                Fake::Array(images),
                shape,
                f.with_extension("eval.json"),
                evaluator::REFERENCE.to_string(),
            )
        }
        _ => {
            return Err(Error::Config(
                "give a run directory or --fake FILE.npy".into(),
            ));
        }
    };
    let name = if args.evaluator == "auto" {
        auto
    } else {
        args.evaluator.clone()
    };
    if args.no_quantize && !evaluator::is_inception(&name) {
        return Err(Error::Config(
            "--no-quantize applies to --evaluator inception only".into(),
        ));
    }
    let ev = evaluator::open(&home, &name, c, s, !args.no_quantize)?;
    let ev: &dyn Extractor = ev.as_ref();
    let cache = home.join("cache");
    let real: RealFeatures = match (&args.stats, &args.real, &args.dataset, &args.run_dir) {
        (Some(file), ..) => {
            let stats = evaluator::stats_file::read(file)?;
            if stats.mean.len() != ev.feature_dims() {
                return Err(Error::Data(format!(
                    "{}: statistics of {} features, the {name} evaluator's have {}: they come from another network (pytorch-fid's files match --evaluator inception)",
                    file.display(),
                    stats.mean.len(),
                    ev.feature_dims()
                )));
            }
            RealFeatures::from_stats(stats)
        }
        (None, Some(r), _, _) => {
            let (images, [n, rc, rs, _]) = read_array(r, range)?;
            if (rc, rs) != (c, s) {
                return Err(Error::Data(format!(
                    "{}: {rc}×{rs}×{rs} images, the generated ones are {c}×{s}×{s}",
                    r.display()
                )));
            }
            RealFeatures::from_features(ev.extract(&images, n)?.0)
        }
        (None, None, Some(d), _) => {
            evaluator::real_features(ev, &real_set(d)?, args.n, args.seed, Some(&cache))?
        }
        (None, None, None, Some(run)) => {
            let cfg = gankit::train::RunDir::new(run).load_config()?;
            let mut decoding = crate::progress::Decoding::new();
            let set = data::load_with(&cfg.data, &mut |d, t| decoding.update(d, t))?;
            eprintln!(
                "real      {} ({} images, {:.1} s after the start)",
                set.source,
                set.len,
                t0.elapsed().as_secs_f64()
            );
            evaluator::real_features(ev, &set, args.n, args.seed, Some(&cache))?
        }
        (None, None, None, None) => {
            return Err(Error::Config(
                "--fake needs --real FILE.npy, --dataset NAME or --stats FILE.npz".into(),
            ));
        }
    };
    let real = if args.fid_only {
        real.without_features()
    } else {
        real
    };
    eprintln!(
        "features  real side ready {:.1} s after the start",
        t0.elapsed().as_secs_f64()
    );
    let per = c * s * s;
    // Generated a chunk at a time: the same noise as one call, bounded memory. A
    // conditional run's samples cycle through its classes, which are scored too.
    let classes = match &fake {
        Fake::Run(trained) => trained.classes_of(n_fake, None)?,
        Fake::Array(_) => None,
    };
    let mut rng = gankit::rng::Rng::new(args.seed, gankit::rng::stream::SAMPLE);
    let features = evaluator::extract_in_chunks(ev, n_fake, per, |start, count| match &fake {
        Fake::Array(images) => Ok(images[start * per..(start + count) * per].to_vec()),
        Fake::Run(trained) => {
            let cls = classes.as_ref().map(|c| &c[start..start + count]);
            trained.draw(count, cls, None, &mut rng)
        }
    })?;
    save_stats(args.save_stats.as_deref(), &real, &features)?;
    let mut report =
        evaluator::score_features(ev, &real, &features, classes.as_deref(), args.seed)?;
    if let Fake::Run(trained) = &fake {
        let codes = trained.family.codes();
        // The code's purity is judged by the data's classes, which Inception lacks.
        if codes > 0 && ev.data_classes() && !args.fid_only {
            if !(10..=100_000).contains(&args.purity_n) {
                return Err(Error::Config(format!(
                    "--purity-n {}: draw 10 to 100000 images per code value",
                    args.purity_n
                )));
            }
            let mut rng = gankit::rng::Rng::new(args.seed, gankit::rng::stream::EVAL);
            report.code_purity = Some(evaluator::code_purity(ev, codes, args.purity_n, |v, n| {
                trained.draw(n, None, Some(&vec![v; n]), &mut rng)
            })?);
        }
        if !(10..=100_000).contains(&args.probe_n) {
            return Err(Error::Config(format!(
                "--probe-n {}: fit the probe on 10 to 100000 images",
                args.probe_n
            )));
        }
        if !args.fid_only {
            report.representation = trained.representation(ev, args.probe_n, args.seed)?;
        }
    }
    report.real_statistics = args.stats.as_ref().map(|f| f.display().to_string());
    print!("{}", report.table());
    eprintln!("scored in {:.1} s", t0.elapsed().as_secs_f64());
    let out = args.out.unwrap_or(default_out);
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    std::fs::write(&out, json)
        .map_err(|e| Error::Run(format!("cannot write {}: {e}", out.display())))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
