//! A run's optional records through the real binary: weight histograms and TensorBoard
//! event files, read back by TensorBoard's own Python reader (scripts/read_tensorboard.py)
//! where the `tensorboard` package is installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TINY, gankit, stderr};

/// The Python that reads the event files: `GANKIT_PYTHON` when set (the reader is then
/// required: a failure fails the test), else the repository's venv or `python3` if either
/// has the `tensorboard` package; None (the reading part is skipped) otherwise.
fn reader_python() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os("GANKIT_PYTHON") {
        return Some((PathBuf::from(p), true));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [root.join("venv/bin/python"), PathBuf::from("python3")]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", "import tensorboard"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|py| (py, false))
}

fn metrics_column(run: &Path, name: &str) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|f| (f[0].parse().unwrap(), f[i].parse().unwrap()))
        .collect()
}

#[test]
fn tensorboard_files_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "tb"];
    args.extend(TINY);
    args.extend([
        "--set",
        "log.tensorboard=true",
        "--set",
        "log.histograms=[0, 2]",
        "--set",
        "log.sample_every=2",
    ]);
    let o = gankit(&args, tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tmp.path().join("runs/tb");
    for f in [
        "histograms/step_000000.png",
        "histograms/step_000002.png",
        "tensorboard/events.out.tfevents.gankit",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(!run.join("histograms/step_000004.png").exists());

    let Some((python, required)) = reader_python() else {
        eprintln!("skipped reading the event file back: no Python with the tensorboard package");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/read_tensorboard.py");
    let o = Command::new(&python)
        .arg(&script)
        .arg(run.join("tensorboard"))
        .output()
        .expect("python runs");
    if !o.status.success() {
        assert!(!required, "the reader failed: {}", stderr(&o));
        eprintln!("skipped: the reader failed: {}", stderr(&o));
        return;
    }
    let read: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // Every metrics.csv value of a loss column, at its iteration, as a float32.
    for column in ["d_loss", "g_loss"] {
        let want = metrics_column(&run, column);
        let got = read["scalars"][column].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{column}");
        for (g, (step, v)) in got.iter().zip(&want) {
            assert_eq!(g[0].as_u64().unwrap(), *step);
            assert!((g[1].as_f64().unwrap() - v).abs() <= 1e-6 * v.abs().max(1.0));
        }
    }
    // The sample grids at 0, 2 and 4, 3×3 images of 28 pixels with 2-pixel gaps.
    let images = read["images"]["samples"].as_array().unwrap();
    let steps: Vec<u64> = images.iter().map(|e| e[0].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 2, 4]);
    let png = std::fs::read(run.join("samples/step_000004.png")).unwrap();
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(images[2][1].as_u64().unwrap(), u64::from(width));
    // A histogram per weight tensor at 0 and 2, counting all its values.
    let hist = read["histograms"].as_object().unwrap();
    assert!(
        hist.keys().any(|k| k.starts_with("g/")) && hist.keys().any(|k| k.starts_with("d/")),
        "{hist:?}"
    );
    for (tag, events) in hist {
        let steps: Vec<u64> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [0, 2], "{tag}");
        let e = &events[0];
        assert!(
            e[1].as_f64().unwrap() >= 4.0 && e[2].as_f64().unwrap() < e[3].as_f64().unwrap(),
            "{tag}: {e}"
        );
    }
}
