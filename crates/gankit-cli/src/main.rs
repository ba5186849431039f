//! `gankit`: the command-line shell over the gankit library.
//!
//! `main` parses the arguments, runs one command and maps errors to exit codes: 0 success,
//! 2 an input the user can fix (one line saying what to change), 1 anything else.

mod bench;
mod cache;
mod commands;
mod compare;
mod evaluate;
mod progress;
mod slurm;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gankit",
    version,
    about = "Train, stabilise, evaluate and compare GANs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN (the default config on Fashion-MNIST when no --config is given).
    Train(commands::TrainArgs),
    /// Continue a run from its newest checkpoint, exactly where it stopped.
    Resume {
        /// The run directory.
        run_dir: PathBuf,
        /// Worker threads (default: the run's train.threads; 0 = all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Where to continue: cpu, cuda, cuda:N or auto. A run goes on on another device
        /// than it started on just as well (checkpoints are device-free).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Draw images from a trained generator: a .png grid or a .npy float32 array.
    Sample(commands::SampleArgs),
    /// Families with an encoder: held-out images above their reconstructions G(E(x)).
    Reconstruct(commands::ReconstructArgs),
    /// Families with an encoder: E(x) of a data set, as a NumPy array.
    Encode(commands::EncodeArgs),
    /// Draw the attention maps of a run with self-attention (SAGAN): where each query
    /// point of generated images looks.
    Attention(commands::AttentionArgs),
    /// List the datasets gankit knows and where each was found; with PATH, describe that
    /// image folder, zip or tar (count, sizes, classes, unreadable files) without training.
    Datasets {
        /// A folder of PNG / JPEG images, a .zip or a .tar of them.
        path: Option<PathBuf>,
    },
    /// Score generated images: FID, KID, precision / recall, density / coverage, IS, modes.
    Eval(evaluate::EvalArgs),
    /// Run a study: every member at every seed, --jobs at a time, each trained (or
    /// resumed) then evaluated, then compared.
    Sweep(sweep::SweepArgs),
    /// Put runs or a study side by side: overlaid curves, final grids, a table of metrics
    /// (mean ± std over seeds) and loss oscillation; PNGs, Markdown and one HTML page.
    Compare(compare::CompareArgs),
    /// Time training iterations of a config: ms per iteration, images/s, peak memory.
    Bench(bench::BenchArgs),
    /// Manage the feature extractors the metrics use.
    #[command(subcommand)]
    Evaluator(EvaluatorCommand),
    /// Show, check and remove the decoded-image caches of image folders.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
}

#[derive(Subcommand)]
enum EvaluatorCommand {
    /// Train the classifier whose features the metrics compare (seeded, deterministic).
    Train(evaluate::EvaluatorTrainArgs),
    /// Check and store pytorch-fid's Inception-v3 weights (safetensors; convert a .pth with
    /// scripts/convert_inception.py), for the standard FID.
    ImportInception(evaluate::ImportInceptionArgs),
}

/// When the process started running `main`, for the start-up time `train` and `resume`
/// report.
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    STARTED.get_or_init(std::time::Instant::now);
    // A write past the file-size limit (ulimit -f) then fails with an error gankit reports
    // like a full disk, instead of the signal killing the process mid-checkpoint.
    // SAFETY: setting a signal's disposition to "ignore" before any other thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    gankit::kernels::keep_freed_memory();
    // GANKIT_ISA narrows the instruction sets; it must come before anything reads the CPU's
    // features (gemm, candle and gankit's kernels each read them once).
    if let Err(e) = gankit::isa::restrict_from_env() {
        return exit_code(Err(e));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Train(args) => commands::train(args),
        Command::Resume {
            run_dir,
            threads,
            device,
        } => commands::resume(run_dir, threads, &device),
        Command::Sample(args) => commands::sample(args),
        Command::Attention(args) => commands::attention(args),
        Command::Reconstruct(args) => commands::reconstruct(args),
        Command::Encode(args) => commands::encode(args),
        Command::Datasets { path } => commands::datasets(path),
        Command::Eval(args) => evaluate::eval(args),
        Command::Bench(args) => bench::bench(args),
        Command::Compare(args) => compare::compare(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Evaluator(EvaluatorCommand::Train(args)) => evaluate::train_evaluator(args),
        Command::Evaluator(EvaluatorCommand::ImportInception(args)) => {
            evaluate::import_inception(args)
        }
        Command::Cache(c) => cache::run(c),
    };
    exit_code(result)
}

/// `--help` and `--version` print as clap writes them; a wrong argument is one line saying
/// what is wrong and where the help is, exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind::*;
    match e.kind() {
        DisplayHelp | DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ");
    eprintln!("error: {first} (see gankit --help, or gankit COMMAND --help)");
    ExitCode::from(2)
}

fn exit_code(result: Result<(), gankit::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_user_error() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
