//! One function per subcommand: turn arguments into library calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use clap::Args;
use gankit::config::Config;
use gankit::train::{Outcome, RunDir, Session, default_name, run_path};
use gankit::{Error, Result};

use crate::progress::{Bar, Decoding};

#[derive(Args)]
pub struct TrainArgs {
    /// Experiment config (TOML). Default: the built-in default, configs/dcgan-fashion.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config value, e.g. --set train.steps=300 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Directory that holds the run directories.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Run directory name (default: <arch>-<date>-<time>).
    #[arg(long)]
    name: Option<String>,
    /// Seed (overrides train.seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (overrides train.threads; 0 = all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where to train: cpu, cuda, cuda:N, or auto (CUDA when this build has it and a GPU
    /// answers).
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
pub struct SampleArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of images (not with --traverse).
    #[arg(long, required_unless_present = "traverse")]
    n: Option<usize>,
    /// Output file: .png (a grid) or .npy (float32 (N, C, H, W) in [-1, 1]).
    #[arg(long)]
    out: PathBuf,
    /// Conditional runs: draw only this class (default: one class per grid row, or every
    /// class in turn in a .npy).
    #[arg(long)]
    class: Option<u32>,
    /// Draw from G's own weights, not their average, in a run with [ema].
    #[arg(long)]
    no_ema: bool,
    /// Truncation trick (Brock et al. 2019): draw the noise from N(0, I) truncated at ±ψ
    /// (values beyond are drawn again); codes and classes are untouched.
    #[arg(long, value_name = "PSI")]
    truncation: Option<f64>,
    /// InfoGAN runs: write the traversal figure instead (one row per categorical value,
    /// columns sweeping continuous code --code from −2 to 2, the noise fixed).
    #[arg(long)]
    traverse: bool,
    /// The continuous code a traversal sweeps.
    #[arg(long, default_value_t = 0, requires = "traverse")]
    code: usize,
    /// Columns of a traversal.
    #[arg(long, default_value_t = 10, requires = "traverse")]
    columns: usize,
}

#[derive(Args)]
pub struct AttentionArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Images (rows of the figure).
    #[arg(long, default_value_t = 4)]
    n: usize,
    /// The map side of the attention layer to show (default: the first of model.attention).
    #[arg(long)]
    side: Option<usize>,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn attention(args: AttentionArgs) -> Result<()> {
    let trained = gankit::sample::load(&args.run_dir, args.step, true, &Device::Cpu)?;
    trained.write_attention(args.n, args.side, args.seed, &args.out)?;
    eprintln!(
        "wrote the attention maps of {} images from iteration {} to {}",
        args.n,
        trained.step,
        args.out.display()
    );
    Ok(())
}

/// A truncation ψ must be a positive number (about 0.5 to 2 is useful).
pub fn check_truncation(psi: Option<f64>) -> Result<()> {
    match psi {
        Some(p) if !(p > 0.0 && p.is_finite()) => Err(Error::Config(format!(
            "--truncation {p} must be a positive number (0.5 to 2 is the useful range)"
        ))),
        _ => Ok(()),
    }
}

/// Set what candle reads from the environment once, before any worker thread starts or
/// any backward pass runs: the thread count (RAYON_NUM_THREADS; `threads` 0 = all cores),
/// and, for a config that differentiates a gradient (WGAN-GP's exact penalty),
/// CANDLE_GRAD_DO_NOT_DETACH, without which candle drops the graph of backward passes.
pub fn prepare_process(cfg: &Config, threads: usize) -> Result<()> {
    let max = gankit::config::limits::MAX_THREADS;
    if threads > max {
        return Err(Error::Config(format!(
            "--threads {threads} must be at most {max} (0 = every core)"
        )));
    }
    // SAFETY: called on the main thread before any other thread is spawned.
    unsafe {
        if threads > 0 {
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        }
        if gankit::family::needs_second_order(cfg) {
            std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
        }
    }
    Ok(())
}

/// A flag raised by Ctrl-C: training saves a checkpoint and exits 0.
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // If a handler is already installed (never, in this binary) Ctrl-C just kills the run,
    // which loses nothing before the last checkpoint.
    let _ = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst));
    stop
}

fn drive(mut session: Session) -> Result<()> {
    let stop = stop_flag();
    let mut bar = Bar::new();
    let outcome = session.run(&mut bar, &stop)?;
    drop(bar);
    let dir = session.run_dir().root.display().to_string();
    match outcome {
        Outcome::Finished => eprintln!("done: {dir} (iteration {})", session.step()),
        Outcome::Stopped(s) => {
            eprintln!("stopped at iteration {s}; continue with: gankit resume {dir}")
        }
    }
    Ok(())
}

pub fn train(args: TrainArgs) -> Result<()> {
    let mut sets = args.set;
    if let Some(s) = args.seed {
        sets.push(format!("train.seed={s}"));
    }
    if let Some(t) = args.threads {
        sets.push(format!("train.threads={t}"));
    }
    let cfg = match &args.config {
        Some(p) => Config::load(p, &sets)?,
        None => Config::from_toml_str("", "default config", &sets)?,
    };
    prepare_process(&cfg, cfg.train.threads)?;
    let device = gankit::device::select(&args.device)?;
    let name = args.name.unwrap_or_else(|| default_name(&cfg));
    let dir = RunDir::new(run_path(&args.out, &name)?);
    let mut decoding = Decoding::new();
    let session = Session::start_with(cfg, dir, &device, &mut |d, t| decoding.update(d, t))?;
    drive(session)
}

pub fn resume(run_dir: PathBuf, threads: Option<usize>, device: &str) -> Result<()> {
    let cfg = RunDir::new(&run_dir).load_config()?;
    prepare_process(&cfg, threads.unwrap_or(cfg.train.threads))?;
    let device = gankit::device::select(device)?;
    let mut decoding = Decoding::new();
    let dir = RunDir::new(run_dir);
    drive(Session::resume_with(dir, &device, &mut |d, t| {
        decoding.update(d, t)
    })?)
}

pub fn sample(args: SampleArgs) -> Result<()> {
    check_truncation(args.truncation)?;
    let mut trained = gankit::sample::load(&args.run_dir, args.step, !args.no_ema, &Device::Cpu)?;
    trained.truncation = args.truncation;
    if args.traverse {
        trained.write_traversal(args.code, args.columns, args.seed, &args.out)?;
        eprintln!(
            "wrote the traversal of code {} from iteration {} to {}",
            args.code,
            trained.step,
            args.out.display()
        );
        return Ok(());
    }
    let n = args
        .n
        .ok_or_else(|| Error::Config("--n: how many images to draw".into()))?;
    trained.write(n, args.class, args.seed, &args.out)?;
    eprintln!(
        "wrote {n} images from iteration {} to {}",
        trained.step,
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct ReconstructArgs {
    /// The run directory (a family with an encoder: bigan, bigbigan, vaegan).
    run_dir: PathBuf,
    /// Images to reconstruct (held-out ones: the test split for Fashion-MNIST).
    #[arg(long, default_value_t = 32)]
    n: usize,
    /// .png (each row of inputs above its reconstructions) or .npy (the reconstructions).
    #[arg(long)]
    out: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Seed of the choice of images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use E's and G's own weights, not their averages.
    #[arg(long)]
    no_ema: bool,
}

pub fn reconstruct(args: ReconstructArgs) -> Result<()> {
    let trained = gankit::sample::load(&args.run_dir, args.step, !args.no_ema, &Device::Cpu)?;
    trained.write_reconstructions(args.n, args.seed, &args.out)?;
    eprintln!(
        "wrote {} reconstructions from iteration {} to {}",
        args.n,
        trained.step,
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct EncodeArgs {
    /// The run directory (a family with an encoder: bigan, bigbigan, vaegan).
    run_dir: PathBuf,
    /// Output: float32 (N, z_dim); the labels, when the data has them, go to
    /// FILE.labels.npy.
    #[arg(long)]
    out: PathBuf,
    /// Encode at most this many images (the first of the data set).
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Encode Fashion-MNIST's test split instead of the run's data.
    #[arg(long)]
    test: bool,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Use E's own weights, not their average.
    #[arg(long)]
    no_ema: bool,
}

pub fn encode(args: EncodeArgs) -> Result<()> {
    let trained = gankit::sample::load(&args.run_dir, args.step, !args.no_ema, &Device::Cpu)?;
    let n = trained.write_codes(args.n, args.test, &args.out)?;
    eprintln!(
        "wrote the codes of {n} images (iteration {}) to {}",
        trained.step,
        args.out.display()
    );
    Ok(())
}

pub fn datasets(path: Option<PathBuf>) -> Result<()> {
    if let Some(path) = path {
        return describe(&path);
    }
    for d in gankit::data::known() {
        println!(
            "{:<14} {}\n{:<14} {}",
            d.name, d.description, "", d.location
        );
    }
    Ok(())
}

/// `gankit datasets PATH`: what an image source holds.
fn describe(path: &std::path::Path) -> Result<()> {
    let r = gankit::data::describe::describe(path)?;
    println!("{} {}", r.kind, path.display());
    let size = if r.bytes >= 1_000_000 {
        format!("{:.1} MB", r.bytes as f64 / 1e6)
    } else {
        format!("{:.1} kB", r.bytes as f64 / 1e3)
    };
    println!(
        "images    {} ({size}), {} readable",
        r.listed,
        r.listed - r.unreadable.len()
    );
    let shown: Vec<String> = r
        .sizes
        .iter()
        .take(5)
        .map(|((w, h), n)| format!("{w}×{h} ({n})"))
        .collect();
    let more = r.sizes.len().saturating_sub(5);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    println!("sizes     {}{more}", shown.join(", "));
    match &r.classes {
        Some(c) => {
            let list: Vec<String> = c.iter().map(|(name, n)| format!("{name} ({n})")).collect();
            println!(
                "classes   {} (data.labels = \"folders\"): {}",
                c.len(),
                list.join(", ")
            );
        }
        None => println!("classes   none (not every image is in a class sub-folder)"),
    }
    if !r.unreadable.is_empty() {
        println!(
            "unreadable {} (skipped by default; data.unreadable = \"fail\" refuses them):",
            r.unreadable.len()
        );
        for u in r.unreadable.iter().take(10) {
            println!("  {u}");
        }
        if r.unreadable.len() > 10 {
            println!("  …");
        }
    }
    Ok(())
}
