//! `gankit evaluator train` and `gankit eval` through the binary, on a small labelled IDX
//! set cut from the embedded Fashion-MNIST test split.

mod common;

use std::path::Path;
use std::process::Output;

use common::{TINY, gankit, text};

/// Write the first `n` embedded images (from `skip`) as an IDX pair `name-images-idx3-ubyte`.
fn write_idx(dir: &Path, name: &str, skip: usize, n: usize) -> String {
    let (images, labels) = gankit::data::fashion::embedded().unwrap();
    let mut img = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        img.extend_from_slice(&d.to_be_bytes());
    }
    img.extend_from_slice(&images.data[skip * 784..(skip + n) * 784]);
    let mut lab = vec![0, 0, 8, 1];
    lab.extend_from_slice(&(n as u32).to_be_bytes());
    lab.extend_from_slice(&labels.data[skip..skip + n]);
    let p = dir.join(format!("{name}-images-idx3-ubyte"));
    std::fs::write(&p, img).unwrap();
    std::fs::write(dir.join(format!("{name}-labels-idx1-ubyte")), lab).unwrap();
    p.display().to_string()
}

fn sha_line(o: &Output) -> String {
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    t.split("sha256 ")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn evaluator_trains_deterministically_and_eval_scores_arrays_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let train = write_idx(d, "small", 0, 512);
    let test = write_idx(d, "smalltest", 512, 256);
    let args = [
        "evaluator",
        "train",
        "--dataset",
        "fashion-mnist",
        "--train",
        &train,
        "--test",
        &test,
        "--epochs",
        "1",
    ];
    let a = gankit(&args, d);
    assert!(a.status.success(), "{}", text(&a));
    assert!(text(&a).contains("test accuracy"), "{}", text(&a));
    let b = gankit(&args, d);
    assert_eq!(sha_line(&a), sha_line(&b), "same seed, same weights");
    assert_eq!(sha_line(&a).len(), 64);

    // Real images scored against themselves and against noise, as arrays.
    let (images, _) = gankit::data::fashion::embedded().unwrap();
    let slice = |from: usize| -> Vec<f32> {
        images.data[from * 784..(from + 200) * 784]
            .iter()
            .map(|&v| v as f32 / 127.5 - 1.0)
            .collect()
    };
    gankit::report::npy::write_f32(&d.join("real.npy"), &slice(0), &[200, 1, 28, 28]).unwrap();
    gankit::report::npy::write_f32(&d.join("other.npy"), &slice(2000), &[200, 1, 28, 28]).unwrap();
    let noise: Vec<f32> = gankit::rng::Rng::new(0, 0).uniform_vec(200 * 784, -1.0, 1.0);
    gankit::report::npy::write_f32(&d.join("noise.npy"), &noise, &[200, 1, 28, 28]).unwrap();
    let fid = |fake: &str| -> f64 {
        let o = gankit(
            &[
                "eval", "--fake", fake, "--real", "real.npy", "--out", "e.json",
            ],
            d,
        );
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("e.json")).unwrap()).unwrap();
        for key in [
            "kid",
            "precision",
            "recall",
            "density",
            "coverage",
            "inception_score",
        ] {
            assert!(v[key].as_f64().unwrap().is_finite(), "{key}");
        }
        v["fid"].as_f64().unwrap()
    };
    let same = fid("real.npy");
    let other = fid("other.npy");
    let far = fid("noise.npy");
    assert!(same.abs() < 1e-6, "FID of a set with itself: {same}");
    assert!(
        other < far,
        "other clothing ({other}) is closer than noise ({far})"
    );

    // A run directory: its samples against its own data.
    let mut args = vec!["train", "--name", "r", "--set", "train.steps=2"];
    args.extend(TINY);
    let o = gankit(&args, d);
    assert!(o.status.success(), "{}", text(&o));
    let o = gankit(&["eval", "runs/r", "--n", "64"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("FID") && d.join("runs/r/eval.json").is_file(),
        "{}",
        text(&o)
    );

    // Evaluation during training: FID columns, the FID curve and the best checkpoint.
    let mut args = vec![
        "train",
        "--name",
        "e",
        "--set",
        "eval.every=2",
        "--set",
        "eval.n=64",
    ];
    args.extend(TINY);
    let o = gankit(&args, d);
    assert!(o.status.success(), "{}", text(&o));
    let m = std::fs::read_to_string(d.join("runs/e/metrics.csv")).unwrap();
    let header: Vec<&str> = m.lines().next().unwrap().split(',').collect();
    let fid_col = header
        .iter()
        .position(|c| *c == "fid")
        .expect("a fid column");
    let fids: Vec<&str> = m
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(fid_col).unwrap())
        .collect();
    assert_eq!(fids[0], "NaN");
    assert!(
        fids[1].parse::<f64>().unwrap().is_finite() && fids[3].parse::<f64>().unwrap().is_finite(),
        "{fids:?}"
    );
    assert!(d.join("runs/e/checkpoints/best/state.json").is_file());
    assert!(d.join("runs/e/fid.png").is_file());

    // Wrong shapes and missing evaluators are user errors.
    gankit::report::npy::write_f32(&d.join("bad.npy"), &[0.0; 12], &[1, 3, 2, 2]).unwrap();
    let o = gankit(&["eval", "--fake", "bad.npy", "--real", "real.npy"], d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = gankit(
        &[
            "eval",
            "--fake",
            "real.npy",
            "--real",
            "real.npy",
            "--evaluator",
            "kmnist",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("gankit evaluator train"), "{}", text(&o));
}

#[test]
fn a_fresh_install_evaluates_with_the_built_in_reference_evaluator() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut args = vec!["train", "--name", "r"];
    args.extend(TINY);
    assert!(gankit(&args, d).status.success());
    // No `gankit evaluator train` before: GANKIT_HOME is empty.
    let o = gankit(&["eval", "runs/r", "--n", "100"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("fashion-mnist-v1 (7ae3df29967a)"),
        "{}",
        text(&o)
    );
    let json = std::fs::read_to_string(d.join("runs/r/eval.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["evaluator"], "fashion-mnist-v1");
    assert_eq!(v["evaluator_sha256"], gankit::evaluator::REFERENCE_SHA256);
    // It cannot be replaced by a trained one.
    let o = gankit(
        &[
            "evaluator",
            "train",
            "--name",
            "fashion-mnist-v1",
            "--epochs",
            "1",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot be replaced"), "{}", text(&o));
}
