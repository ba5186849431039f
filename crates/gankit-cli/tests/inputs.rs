//! Every kind of input gankit reads, given bad: one line saying what to change and exit 2,
//! never a panic, a hang or a number computed from garbage. One case per input kind
//! (commands and flags, config values, .npy arrays, checkpoints' safetensors and
//! state.json, metrics.csv on resume, evaluator files, the feature cache); IDX files,
//! image folders and TOML syntax have theirs in cli.rs.

mod common;

use std::path::Path;

use common::{TINY, gankit, stderr, text};

/// A user error: exit code 2 and one line on stderr naming the problem, no panic.
fn assert_user_error(args: &[&str], cwd: &Path, needle: &str) {
    let o = gankit(args, cwd);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{args:?}: one line: {e}");
    assert!(e.contains(needle), "{args:?}: wanted {needle:?} in {e}");
    assert!(!e.contains("panicked"), "{e}");
}

/// A finished tiny run in `dir/runs/r` (4 iterations, checkpoints at 2 and 4).
fn tiny_run(dir: &Path) {
    let mut args = vec!["train", "--name", "r"];
    args.extend(TINY);
    let o = gankit(&args, dir);
    assert!(o.status.success(), "{}", text(&o));
}

fn write_npy(dir: &Path, name: &str, values: &[f32], shape: &[usize]) {
    gankit::report::npy::write_f32(&dir.join(name), values, shape).unwrap();
}

/// 200 real test images in [-1, 1], (200, 1, 28, 28).
fn real_images() -> Vec<f32> {
    let (images, _) = gankit::data::fashion::embedded().unwrap();
    images.data[..200 * 784]
        .iter()
        .map(|&v| v as f32 / 127.5 - 1.0)
        .collect()
}

#[test]
fn commands_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    // Work one level down, so that `--name ../../x` from `w/runs` would land in our own
    // temporary folder (never in the shared /tmp, where an `x` may already exist).
    let d = &tmp.path().join("w");
    std::fs::create_dir(d).unwrap();
    tiny_run(d);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--threads", "100000000"], "at most 1024"),
        (vec!["train", "--name", "../../x"], "one folder name"),
        (vec!["train", "--name", "/tmp/abs"], "one folder name"),
        (
            vec!["train", "--seed", "x"],
            "invalid value 'x' for '--seed",
        ),
        (vec!["train", "--bogus"], "--bogus"),
        (
            vec!["resume", "runs/r", "--threads", "5000"],
            "at most 1024",
        ),
        (
            vec!["sample", "runs/r", "--n", "0", "--out", "x.png"],
            "--n 0",
        ),
        (
            vec!["sample", "runs/r", "--n", "20000", "--out", "x.png"],
            "grid (.png) holds 1 to 10000",
        ),
        (
            vec!["sample", "runs/r", "--n", "2000000", "--out", "x.npy"],
            "1000000",
        ),
        (
            vec!["sample", "runs/r", "--n", "x", "--out", "x.png"],
            "--n",
        ),
        (vec!["eval", "runs/r", "--n", "0"], "--n 0"),
        (vec!["eval", "runs/r", "--n", "5"], "between 10 and"),
        (
            vec!["eval", "runs/r", "--input-range", "0,2"],
            "use -1,1 (default), 0,1 or 0,255",
        ),
        (vec!["eval"], "give a run directory or --fake"),
        (vec!["bench", "--steps", "0"], "--steps"),
        (vec!["bench", "--threads", "99999"], "at most 1024"),
        (vec!["bench", "--batch", "10000000"], "train.batch_size"),
        (vec!["evaluator", "train", "--epochs", "0"], "--epochs 0"),
        (vec!["nonsense"], "nonsense"),
    ];
    for (args, needle) in &cases {
        assert_user_error(args, d, needle);
    }
    // Nothing was created outside --out by the refused name.
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn config_values() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cases = [
        ("train.batch_size=1000000", "at most 65536"),
        ("model.g_width=100000", "model.g_width"),
        ("optim.d.beta1=nan", "optim.d.beta1"),
        ("model.d_dropout=1.5", "model.d_dropout"),
        ("log.grid=0", "log.grid"),
        ("eval.n=2000000", "eval.n"),
        ("augment.policy=rotate", "rotate"),
        ("ema.decay=1", "ema.decay"),
        ("wgan.clip=-0.01", "wgan.clip"),
        ("model.classes=300", "model.classes"),
    ];
    for (set, needle) in cases {
        // The tiny settings first, the bad value last (a later --set wins): a value that is
        // wrongly accepted then fails the test in seconds instead of training a full run.
        let mut args = vec!["train"];
        args.extend(TINY);
        args.extend(["--set", set]);
        assert_user_error(&args, d, needle);
    }
}

#[test]
fn arrays_to_score() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let real = real_images();
    write_npy(d, "real.npy", &real, &[200, 1, 28, 28]);
    write_npy(d, "nan.npy", &vec![f32::NAN; 200 * 784], &[200, 1, 28, 28]);
    let wide: Vec<f32> = real.iter().map(|v| v * 2.0).collect();
    write_npy(d, "wide.npy", &wide, &[200, 1, 28, 28]);
    write_npy(d, "empty.npy", &[], &[0, 1, 28, 28]);
    write_npy(d, "flat.npy", &real[..784 * 20], &[20, 784]);
    std::fs::write(d.join("junk.npy"), b"\x93NUMPY\x01\x00\xff\x7f{'descr'").unwrap();
    let eval = |fake: &str, extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = ["eval", "--fake", fake, "--real", "real.npy"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--evaluator".into(), "random-features".into()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (eval("nan.npy", &[]), "156800 of 156800 values are NaN"),
        (eval("wide.npy", &[]), "outside the declared range [-1, 1]"),
        (eval("real.npy", &["--input-range", "0,1"]), "span [-1, 1]"),
        (eval("empty.npy", &[]), "0 images"),
        (eval("flat.npy", &[]), "(N, C, H, W)"),
        (eval("junk.npy", &[]), "truncated header"),
        (eval("missing.npy", &[]), "missing.npy"),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_user_error(&args, d, needle);
    }
    // The other conventions score the same images to the same numbers.
    let fid = |args: Vec<String>| -> f64 {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = gankit(&args, d);
        assert!(o.status.success(), "{}", text(&o));
        let json = std::fs::read_to_string(d.join(args[2]).with_extension("eval.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["fid"]
            .as_f64()
            .unwrap()
    };
    let unit: Vec<f32> = real.iter().map(|v| (v + 1.0) / 2.0).collect();
    write_npy(d, "unit.npy", &unit, &[200, 1, 28, 28]);
    let bytes: Vec<f32> = real.iter().map(|v| ((v + 1.0) * 127.5).round()).collect();
    write_npy(d, "bytes.npy", &bytes, &[200, 1, 28, 28]);
    let own = fid(eval("real.npy", &[]));
    assert!(own.abs() < 1e-6, "{own}");
    let mut a = eval("unit.npy", &["--input-range", "0,1"]);
    a[4] = "unit.npy".into();
    assert!(fid(a).abs() < 1e-6);
    let mut a = eval("bytes.npy", &["--input-range", "0,255"]);
    a[4] = "bytes.npy".into();
    assert!(fid(a).abs() < 1e-6);
    // Identical images: a finite FID and a warning, never NaN.
    write_npy(d, "same.npy", &real[..784].repeat(50), &[50, 1, 28, 28]);
    let o = gankit(
        &eval("same.npy", &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("warning: the covariance of the generated features is singular"));
    let json = std::fs::read_to_string(d.join("same.eval.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["fid"].as_f64().unwrap().is_finite() && v["warnings"].is_array());
}

/// Replace a checkpoint file and record its checksum in state.json, so that what is
/// tested is the file's content, not the checksum that would catch an accident.
fn forge(ckpt: &Path, file: &str, bytes: &[u8]) {
    use sha2::{Digest, Sha256};
    std::fs::write(ckpt.join(file), bytes).unwrap();
    let sp = ckpt.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
    let hash: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    state["files"][file] = hash.into();
    std::fs::write(&sp, serde_json::to_string(&state).unwrap()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn checkpoints_state_and_metrics_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A run stopped half way: a checkpoint at 2 of 6 iterations.
    let mut args = vec!["train", "--name", "r"];
    args.extend(TINY);
    args.extend(["--set", "train.steps=6", "--set", "checkpoint.every=2"]);
    assert!(gankit(&args, d).status.success());
    let run = d.join("runs/r");
    let latest = run.join("checkpoints/step_00000006");
    std::fs::remove_dir_all(run.join("checkpoints/step_00000004")).unwrap();
    std::fs::remove_dir_all(&latest).unwrap();
    let pristine = d.join("pristine");
    copy_dir(&run, &pristine);
    let fresh = |name: &str| -> std::path::PathBuf {
        let p = d.join("runs").join(name);
        copy_dir(&pristine, &p);
        p
    };
    const CKPT: &str = "checkpoints/step_00000002";
    type Damage = Box<dyn Fn(&Path)>;
    let state_edit = |key: &'static str, value: serde_json::Value| -> Damage {
        Box::new(move |run: &Path| {
            let sp = run.join(CKPT).join("state.json");
            let mut s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
            s[key] = value.clone();
            std::fs::write(&sp, s.to_string()).unwrap();
        })
    };
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "safetensors-garbage",
            Box::new(|run: &Path| forge(&run.join(CKPT), "g.safetensors", b"\x08\0\0\0\0\0\0\0{}")),
            "not a valid safetensors file",
        ),
        (
            "safetensors-nan",
            Box::new(|run: &Path| {
                let p = run.join(CKPT).join("d.safetensors");
                let mut m =
                    gankit::checkpoint::read_safetensors(&p, &candle_core::Device::Cpu).unwrap();
                let (name, t) = m
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap();
                let nan = (t.ones_like().unwrap() * f64::NAN).unwrap();
                m.insert(name, nan);
                let q = run.join("x.safetensors");
                gankit::checkpoint::write_safetensors(&q, &m).unwrap();
                forge(
                    &run.join(CKPT),
                    "d.safetensors",
                    &std::fs::read(&q).unwrap(),
                );
            }),
            "holds NaN",
        ),
        (
            "safetensors-checksum",
            Box::new(|run: &Path| {
                let p = run.join(CKPT).join("opt_g.safetensors");
                let mut b = std::fs::read(&p).unwrap();
                let k = b.len() - 1;
                b[k] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
            "does not match the checksum",
        ),
        (
            "state-json",
            Box::new(|run: &Path| {
                std::fs::write(run.join(CKPT).join("state.json"), "{\"step\": 2,").unwrap()
            }),
            "is damaged",
        ),
        (
            "state-lr",
            state_edit("lr_scale", serde_json::json!(7.0)),
            "lr_scale = 7 is impossible",
        ),
        (
            "state-step",
            state_edit("step", serde_json::json!(1_000_000)),
            "past train.steps",
        ),
        (
            "state-rng",
            state_edit(
                "rng",
                serde_json::json!({"seed": 9, "stream": 3, "word_pos": "0"}),
            ),
            "noise generator",
        ),
        (
            "metrics-line",
            Box::new(|run: &Path| {
                let p = run.join("metrics.csv");
                let t = std::fs::read_to_string(&p).unwrap();
                let mut lines: Vec<&str> = t.lines().collect();
                lines[1] = "1,zz";
                std::fs::write(&p, lines.join("\n") + "\n").unwrap();
            }),
            "metrics.csv line 2 is damaged",
        ),
        (
            "metrics-header",
            Box::new(|run: &Path| {
                let p = run.join("metrics.csv");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, t.replacen("step,", "steps,", 1)).unwrap();
            }),
            "has columns",
        ),
        (
            "config",
            Box::new(|run: &Path| {
                let p = run.join("config.toml");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, t.replace("[train]", "[train]\nbogus = 1")).unwrap();
            }),
            "bogus",
        ),
    ];
    for (name, damage, needle) in &cases {
        let run = fresh(name);
        damage(&run);
        assert_user_error(&["resume", &format!("runs/{name}")], d, needle);
    }
    // The untouched copy still resumes and finishes.
    let run = fresh("ok");
    let o = gankit(&["resume", "runs/ok"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run.join("checkpoints/step_00000006/state.json").is_file());
}

#[test]
fn evaluator_and_cache_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let home = d.join("home");
    let real = real_images();
    write_npy(d, "real.npy", &real, &[200, 1, 28, 28]);
    // An evaluator as `gankit evaluator train` stores it (untrained: only its files matter).
    let mut ev = gankit::evaluator::Evaluator::new("tiny", 10, 1, 28, 0).unwrap();
    let weights = ev.save(&home).unwrap();
    let info = weights.with_extension("json");
    const EVAL: [&str; 7] = [
        "eval",
        "--fake",
        "real.npy",
        "--real",
        "real.npy",
        "--evaluator",
        "tiny",
    ];
    let o = gankit(&EVAL, d);
    assert!(o.status.success(), "{}", text(&o));
    let good_info = std::fs::read_to_string(&info).unwrap();
    let good_weights = std::fs::read(&weights).unwrap();
    let mut flipped = good_weights.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let cases: [(String, &[u8], &str); 3] = [
        (
            good_info.replace("\"size\": 28", "\"size\": 1000000"),
            &good_weights,
            "which no evaluator has",
        ),
        ("{".into(), &good_weights, "is damaged"),
        (good_info.clone(), &flipped, "does not match the hash"),
    ];
    for (json, bytes, needle) in cases {
        std::fs::write(&info, json).unwrap();
        std::fs::write(&weights, bytes).unwrap();
        assert_user_error(&EVAL, d, needle);
    }

    // The real-feature cache of a run: damaged, it is recomputed, and the numbers are the
    // ones a cold cache gives.
    tiny_run(d);
    let fid = || -> f64 {
        let o = gankit(
            &[
                "eval",
                "runs/r",
                "--n",
                "64",
                "--evaluator",
                "random-features",
            ],
            d,
        );
        assert!(o.status.success(), "{}", text(&o));
        let json = std::fs::read_to_string(d.join("runs/r/eval.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["fid"]
            .as_f64()
            .unwrap()
    };
    let cold = fid();
    let cache = home.join("cache");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "npy"))
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(fid(), cold, "warm cache, same numbers");
    let mut b = std::fs::read(&files[0]).unwrap();
    let k = b.len() - 2;
    b[k] ^= 0x7f;
    std::fs::write(&files[0], &b).unwrap();
    assert_eq!(fid(), cold, "a damaged cache is recomputed, never used");
}
