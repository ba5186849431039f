//! `gankit sweep --slurm` against a real Slurm (scripts/slurm_single_node.sh starts one on
//! this machine): a four-run study submitted as an array job, one task cancelled mid-run,
//! the study submitted again, and the study completes with the cancelled run resumed.
//! Skipped where no Slurm answers, unless `GANKIT_SLURM=1` (then a missing Slurm fails).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{gankit, stderr, text};

fn slurm_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            o.status.success() && (s.contains("idle") || s.contains("mixed"))
        });
    if !up && std::env::var_os("GANKIT_SLURM").is_some_and(|v| v == "1") {
        panic!("GANKIT_SLURM=1 but no Slurm answers (scripts/slurm_single_node.sh starts one)");
    }
    up
}

fn write_study(root: &Path) {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let study = format!(
        r#"title = "slurm study"
seeds = [0, 1]
set = ["train.steps=3000", "train.batch_size=8", "data.split=test", "model.g_width=8",
       "model.d_width=8", "log.grid=4", "log.sample_every=1000", "checkpoint.every=100"]
eval_n = 40
[[member]]
name = "dcgan"
config = "{0}/dcgan-fashion.toml"
[[member]]
name = "lsgan"
config = "{0}/lsgan-alpha.toml"
"#,
        configs.display()
    );
    std::fs::write(root.join("study.toml"), study).unwrap();
}

/// Wait until `done` holds, failing after `limit`.
fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether jobs `ids` have all left the queue.
fn finished(ids: &[&str]) -> bool {
    let o = Command::new("squeue")
        .args(["-h", "-o", "%i", "-j", &ids.join(",")])
        .output()
        .expect("squeue runs");
    o.status.success() && String::from_utf8_lossy(&o.stdout).trim().is_empty()
}

/// Submit the study; the array job's id and the comparison job's.
fn submit(root: &Path) -> (String, String) {
    let o = gankit(&["sweep", "study.toml", "--slurm", "--threads", "1"], root);
    assert!(o.status.success(), "{}", text(&o));
    let array = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let err = stderr(&o);
    let compare = err
        .split("the comparison as job ")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"))
        .trim()
        .to_string();
    (array, compare)
}

#[test]
fn a_study_runs_as_a_slurm_array_and_a_cancelled_task_resumes_when_resubmitted() {
    if !slurm_up() {
        eprintln!("skipped: no Slurm (scripts/slurm_single_node.sh starts one)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_study(root);
    let study = root.join("runs/study");
    let (array, compare) = submit(root);
    assert!(study.join("slurm/array.sbatch").is_file());

    // Cancel the first run's task once it has a checkpoint, well before its end.
    let first = study.join("runs/dcgan-s0");
    wait_for("a checkpoint of dcgan-s0", Duration::from_secs(300), || {
        first.join("checkpoints/step_00000100").is_dir()
    });
    let o = Command::new("scancel")
        .arg(format!("{array}_0"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("the first submission", Duration::from_secs(600), || {
        finished(&[&array, &compare])
    });
    assert!(!first.join("eval.json").exists(), "dcgan-s0 was cancelled");
    for name in ["dcgan-s1", "lsgan-s0", "lsgan-s1"] {
        assert!(
            study.join("runs").join(name).join("eval.json").is_file(),
            "{name}"
        );
    }
    // The comparison ran after the array, with the runs there were.
    assert!(study.join("compare/report.html").is_file());

    // Again: only the cancelled run is submitted, and it resumes.
    let (array, compare) = submit(root);
    let script = std::fs::read_to_string(study.join("slurm/array.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0\n"), "{script}");
    wait_for("the second submission", Duration::from_secs(600), || {
        finished(&[&array, &compare])
    });
    assert!(first.join("eval.json").is_file());
    let log = std::fs::read_to_string(study.join("logs/dcgan-s0.log")).unwrap();
    assert!(log.contains("resuming  at iteration"), "{log}");
    let table = std::fs::read_to_string(study.join("compare/compare.md")).unwrap();
    // Each member's row: its name, its settings (dcgan-fashion's are gankit's defaults), then
    // its runs and iterations.
    for member in ["| dcgan | defaults |", "| lsgan | lsgan.alpha.end 2500,"] {
        let row = table.lines().find(|l| l.starts_with(member));
        let row = row.unwrap_or_else(|| panic!("{member} not in\n{table}"));
        assert!(row.contains(" | 2 | 3000 | "), "{row}");
    }

    // Nothing left to run: nothing is submitted.
    let o = gankit(&["sweep", "study.toml", "--slurm"], root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("nothing to submit"), "{}", stderr(&o));
}
