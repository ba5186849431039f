//! `gankit sweep STUDY.toml`: every run of a study (`gankit::study::spec`), `--jobs` at a
//! time, each as a child `gankit train` (or `resume`, when an earlier sweep was
//! interrupted) then `gankit eval`, with the cores split between them; finished runs (an
//! eval.json) are skipped. The study folder holds study.json (the plan), runs/, logs/ and,
//! at the end, compare/ (`gankit compare` of all its runs). With `--slurm` the runs go to
//! a Slurm array job instead (`crate::slurm`), whose tasks run `--member INDEX`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, ValueEnum};
use gankit::study::spec::{self, PlannedRun, Scale};
use gankit::study::{compare, runs};
use gankit::{Error, Result};

#[derive(Clone, Copy, ValueEnum)]
enum ScaleArg {
    /// The reports' own settings.
    Full,
    /// The study's [reduced] settings: a scale that finishes on a small machine.
    Reduced,
}

#[derive(Args)]
pub struct SweepArgs {
    /// The study file (TOML; see studies/).
    study: PathBuf,
    /// Runs trained at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// The study's own scale, or its [reduced] one.
    #[arg(long, value_enum, default_value = "full")]
    scale: ScaleArg,
    /// The study folder (default: runs/<study name>, with -reduced at the reduced scale).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Threads per run (default: the cores divided by --jobs; with --slurm, the CPUs each
    /// array task asks for).
    #[arg(long)]
    threads: Option<usize>,
    /// Submit the unfinished runs as a Slurm array job (one run per task) and a comparison
    /// job after it; the scripts are written to STUDY_DIR/slurm/ (and only written where
    /// `sbatch` is missing). The study folder must be on a shared file system.
    #[arg(long, conflicts_with = "member")]
    slurm: bool,
    /// An extra `#SBATCH` option for --slurm, e.g. --sbatch-option=--time=24:00:00
    /// (repeatable).
    #[arg(long, requires = "slurm", allow_hyphen_values = true)]
    sbatch_option: Vec<String>,
    /// Train (or resume) and evaluate only run INDEX of the plan (what each Slurm array
    /// task runs), without the comparison.
    #[arg(long, value_name = "INDEX", conflicts_with = "plan")]
    member: Option<usize>,
    /// Print each member's runs and the settings that differ between members, then stop:
    /// nothing is trained and no folder is written.
    #[arg(long, conflicts_with = "slurm")]
    plan: bool,
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !(1..=256).contains(&args.jobs) {
        return Err(Error::Config(format!(
            "--jobs {}: run 1 to 256 at once",
            args.jobs
        )));
    }
    let threads = args.threads.unwrap_or((cores / args.jobs).max(1));
    if !(1..=1024).contains(&threads) {
        return Err(Error::Config(format!(
            "--threads {threads}: give 1 to 1024"
        )));
    }
    let scale = match args.scale {
        ScaleArg::Full => Scale::Full,
        ScaleArg::Reduced => Scale::Reduced,
    };
    let plan = spec::plan(&args.study, scale)?;
    if args.plan {
        println!(
            "# {} ({} scale, {} runs)\n",
            plan.title,
            scale.name(),
            plan.runs.len()
        );
        print!("{}", plan.markdown());
        return Ok(());
    }
    let stem = args
        .study
        .file_stem()
        .map_or("study".into(), |s| s.to_string_lossy().into_owned());
    let dir = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(match scale {
            Scale::Full => stem.clone(),
            Scale::Reduced => format!("{stem}-reduced"),
        })
    });
    record_plan(&dir, &plan, scale)?;
    let total = plan.runs.len();
    let exe = std::env::current_exe().map_err(|e| Error::io("the gankit binary", e))?;
    if let Some(i) = args.member {
        let run = plan.runs.get(i).ok_or_else(|| {
            Error::Config(format!(
                "--member {i}: the study has runs 0 to {}",
                total.saturating_sub(1)
            ))
        })?;
        let tag = format!("[{}/{total}] {}", i + 1, run.name);
        return run_member(&exe, &dir, &plan, run, threads, &tag);
    }
    if args.slurm {
        return submit_to_slurm(
            &args.study,
            &dir,
            &plan,
            scale.name(),
            threads,
            &args.sbatch_option,
        );
    }
    eprintln!(
        "study     {} ({total} runs, {} at a time, threads per run: {threads}) in {}",
        plan.title,
        args.jobs,
        dir.display()
    );
    let queue = Mutex::new(plan.runs.iter().enumerate().collect::<VecDeque<_>>());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(total) {
            s.spawn(|| {
                loop {
                    let Some((i, run)) = queue.lock().expect("queue").pop_front() else {
                        break;
                    };
                    let tag = format!("[{}/{total}] {}", i + 1, run.name);
                    if let Err(e) = run_member(&exe, &dir, &plan, run, threads, &tag) {
                        eprintln!("{tag}: failed: {e}");
                        failed.lock().expect("failures").push(run.name.clone());
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().expect("failures");
    let records = runs::collect(std::slice::from_ref(&dir))?;
    let c = compare::write(&records, &dir.join("compare"), &plan.title)?;
    print!("{}", c.table.markdown());
    eprintln!("report    {}", dir.join("compare/report.html").display());
    eprintln!(
        "disk      {:.1} MB in {}",
        gankit::study::disk_usage(&dir) as f64 / 1e6,
        dir.display()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Run(format!(
            "{} of {total} runs failed ({}); their logs are in {}; run the sweep again to resume them",
            failed.len(),
            failed.join(", "),
            dir.join("logs").display()
        )))
    }
}

/// Hand the study's unfinished runs to Slurm (see [`crate::slurm`]).
fn submit_to_slurm(
    study: &Path,
    dir: &Path,
    plan: &spec::Plan,
    scale: &str,
    threads: usize,
    options: &[String],
) -> Result<()> {
    let absolute = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(p, e));
    let (study, dir) = (absolute(study)?, absolute(dir)?);
    let members: Vec<usize> = (0..plan.runs.len())
        .filter(|&i| {
            !dir.join("runs")
                .join(&plan.runs[i].name)
                .join("eval.json")
                .is_file()
        })
        .collect();
    if members.is_empty() {
        eprintln!("study     every run is finished; nothing to submit");
        return Ok(());
    }
    let sub = crate::slurm::Submission {
        dir: &dir,
        study: &study,
        scale,
        title: &plan.title,
        members: &members,
        threads,
        options,
    };
    let crate::slurm::Submitted { scripts, jobs } = crate::slurm::submit(&sub)?;
    match jobs {
        Some((array, compare)) => {
            eprintln!(
                "slurm     submitted {} of {} runs as array job {array}, the comparison as job {compare}",
                members.len(),
                plan.runs.len()
            );
            println!("{array}");
        }
        None => eprintln!(
            "slurm     sbatch not found: submit {} then {} with --dependency=afterany:<array job id>",
            scripts[0].display(),
            scripts[1].display()
        ),
    }
    Ok(())
}

/// Write the study folder's study.json, or check that the one there plans the same runs (a
/// changed study would otherwise resume runs trained with the old settings).
fn record_plan(dir: &Path, plan: &spec::Plan, scale: Scale) -> Result<()> {
    let runs: Vec<serde_json::Value> = plan
        .runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "config": r.config.display().to_string(),
                "set": r.set,
            })
        })
        .collect();
    let json = serde_json::json!({ "title": plan.title, "scale": scale.name(), "runs": runs });
    let path = dir.join("study.json");
    if let Ok(old) = std::fs::read_to_string(&path) {
        let old: serde_json::Value = serde_json::from_str(&old).unwrap_or_default();
        if old["runs"] != json["runs"] || old["scale"] != json["scale"] {
            return Err(Error::Config(format!(
                "{} holds a study with other runs or settings: give the sweep another --out, or remove that folder",
                dir.display()
            )));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| Error::io(dir, e))?;
    let text = serde_json::to_string_pretty(&json).expect("plan serialises");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

/// Train (or resume) and evaluate one run unless it is finished; then keep only its newest
/// `keep_checkpoints` checkpoints.
fn run_member(
    exe: &Path,
    dir: &Path,
    plan: &spec::Plan,
    run: &PlannedRun,
    threads: usize,
    tag: &str,
) -> Result<()> {
    let run_dir = dir.join("runs").join(&run.name);
    if run_dir.join("eval.json").is_file() {
        eprintln!("{tag}: finished earlier, skipped");
        return Ok(());
    }
    let log = dir.join("logs").join(format!("{}.log", run.name));
    let t0 = Instant::now();
    let threads_s = threads.to_string();
    if run_dir.join("config.toml").is_file() {
        eprintln!("{tag}: resuming");
        let args = [
            "resume",
            &run_dir.to_string_lossy(),
            "--threads",
            &threads_s,
        ];
        child(exe, &args.map(String::from), threads, &log)?;
    } else {
        eprintln!("{tag}: training");
        let mut args: Vec<String> = vec![
            "train".into(),
            "--config".into(),
            run.config.to_string_lossy().into(),
            "--out".into(),
            dir.join("runs").to_string_lossy().into(),
            "--name".into(),
            run.name.clone(),
            "--threads".into(),
            threads_s.clone(),
        ];
        for s in &run.set {
            args.extend(["--set".into(), s.clone()]);
        }
        child(exe, &args, threads, &log)?;
    }
    let args = [
        "eval".to_string(),
        run_dir.to_string_lossy().into(),
        "--n".into(),
        plan.eval_n.to_string(),
    ];
    child(exe, &args, threads, &log)?;
    let checkpoints = gankit::train::RunDir::new(&run_dir).checkpoints();
    gankit::checkpoint::prune(&checkpoints, plan.keep_checkpoints)?;
    let fid = runs::RunRecord::load(&run_dir)
        .ok()
        .and_then(|r| r.eval_number("fid"))
        .map_or(String::new(), |f| format!(", FID {f:.2}"));
    eprintln!("{tag}: done in {:.0} s{fid}", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Run the gankit binary with `args`, its output appended to `log`, on `threads` threads.
fn child(exe: &Path, args: &[String], threads: usize, log: &Path) -> Result<()> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(log, e))
    };
    let status = Command::new(exe)
        .args(args)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .status()
        .map_err(|e| Error::io(exe, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Run(format!(
            "`gankit {}` exited with {status}; see {}",
            args[0],
            log.display()
        )))
    }
}
