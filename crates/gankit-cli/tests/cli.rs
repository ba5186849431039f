//! The real `gankit` binary on small real data (the Fashion-MNIST test split).

mod common;

use std::path::Path;
use std::process::Command;

use common::{TINY, gankit, stderr, write_fashion_pngs};

#[test]
fn train_sample_and_resume_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "r", "--seed", "3"];
    args.extend(TINY);
    let o = gankit(&args, tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tmp.path().join("runs/r");
    for f in [
        "config.toml",
        "metrics.csv",
        "loss.png",
        "samples/step_000004.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(
        std::fs::read_to_string(run.join("config.toml"))
            .unwrap()
            .contains("seed = 3")
    );

    let o = gankit(
        &["sample", "runs/r", "--n", "5", "--out", "s.npy"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let b = std::fs::read(tmp.path().join("s.npy")).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("(5, 1, 28, 28)"),
        "{header}"
    );
    let values: Vec<f32> = b[10 + hlen..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), 5 * 28 * 28);
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));

    let o = gankit(
        &[
            "sample", "runs/r", "--step", "2", "--n", "4", "--out", "g.png",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(image_dims(&tmp.path().join("g.png")).0 > 0);

    // A finished run resumes to "done" without training further.
    let o = gankit(&["resume", "runs/r"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("iteration 4"), "{}", stderr(&o));
}

#[test]
fn a_conditional_run_samples_one_class_or_one_class_per_row() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "c", "--set", "model.classes=10"];
    args.extend(TINY);
    let o = gankit(&args, tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gankit(
        &[
            "sample", "runs/c", "--n", "6", "--class", "3", "--out", "k.npy",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gankit(
        &["sample", "runs/c", "--n", "100", "--out", "rows.png"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // 10 × 10 tiles of 28 px with 2 px borders.
    assert_eq!(image_dims(&tmp.path().join("rows.png")), (302, 302));
    assert_user_error(
        &[
            "sample", "runs/c", "--n", "2", "--class", "12", "--out", "x.png",
        ],
        tmp.path(),
        "classes 0 to 9",
    );
    let mut args = vec!["train", "--name", "u"];
    args.extend(TINY);
    assert!(gankit(&args, tmp.path()).status.success());
    assert_user_error(
        &[
            "sample", "runs/u", "--n", "2", "--class", "1", "--out", "x.png",
        ],
        tmp.path(),
        "not conditional",
    );
}

fn image_dims(p: &Path) -> (u32, u32) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[1..4], b"PNG");
    (
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        u32::from_be_bytes(b[20..24].try_into().unwrap()),
    )
}

/// A user error: exit code 2 and one line on stderr naming the problem, no panic.
fn assert_user_error(args: &[&str], cwd: &Path, needle: &str) {
    let o = gankit(args, cwd);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
    assert_eq!(
        e.trim_end().lines().count(),
        1,
        "{args:?}: one line expected: {e}"
    );
    assert!(e.contains(needle), "{args:?}: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn user_errors_are_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[train]\nstesp = 3\n").unwrap();
    let bad = bad.to_str().unwrap();
    assert_user_error(
        &["train", "--config", bad],
        tmp.path(),
        "unknown field `stesp`",
    );
    assert_user_error(
        &["train", "--config", "missing.toml"],
        tmp.path(),
        "missing.toml",
    );
    assert_user_error(
        &["train", "--set", "optim.g.lr=-1"],
        tmp.path(),
        "optim.g.lr",
    );
    assert_user_error(
        &[
            "train",
            "--set",
            "data.dataset=folder",
            "--set",
            "data.path=nowhere",
        ],
        tmp.path(),
        "nowhere",
    );
    assert_user_error(&["resume", "."], tmp.path(), "not a gankit run directory");
    assert_user_error(&["train", "--device", "gpu"], tmp.path(), "cuda:N or auto");
    assert_user_error(
        &["bench", "--device", "cuda:x", "--steps", "1"],
        tmp.path(),
        "cuda:N or auto",
    );
    if !cfg!(feature = "cuda") {
        // A CPU-only build says how to get a CUDA one.
        assert_user_error(
            &["train", "--device", "cuda"],
            tmp.path(),
            "--features cuda",
        );
        assert_user_error(
            &["bench", "--device", "cuda", "--steps", "1"],
            tmp.path(),
            "--features cuda",
        );
    }
    // Refused before anything was written.
    assert!(!tmp.path().join("runs").exists());
    assert_user_error(
        &["sample", ".", "--n", "2", "--out", "x.png"],
        tmp.path(),
        "not a gankit run directory",
    );
}

#[test]
fn sample_refuses_unknown_formats_and_datasets_lists_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "r"];
    args.extend(TINY);
    args.extend(["--set", "train.steps=1"]);
    assert!(gankit(&args, tmp.path()).status.success());
    assert_user_error(
        &["sample", "runs/r", "--n", "2", "--out", "x.jpg"],
        tmp.path(),
        ".png",
    );
    assert_user_error(
        &[
            "sample", "runs/r", "--step", "9", "--n", "2", "--out", "x.png",
        ],
        tmp.path(),
        "step 9",
    );
    let o = gankit(&["datasets"], tmp.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("fashion-mnist") && out.contains("folder"),
        "{out}"
    );
    // A second train into the same run directory is refused.
    assert_user_error(&args, tmp.path(), "gankit resume");
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "r"];
    args.extend(TINY);
    args.extend([
        "--set",
        "train.steps=100000",
        "--set",
        "checkpoint.every=100000",
    ]);
    let child = Command::new(env!("CARGO_BIN_EXE_gankit"))
        .args(&args)
        .current_dir(tmp.path())
        .env("RAYON_NUM_THREADS", "2")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = tmp.path().join("runs/r/metrics.csv");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 4 {
        assert!(t0.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(
        e.contains("stopped at iteration") && e.contains("gankit resume"),
        "{e}"
    );
    let ckpts: Vec<_> = std::fs::read_dir(tmp.path().join("runs/r/checkpoints"))
        .unwrap()
        .collect();
    assert_eq!(ckpts.len(), 1, "one checkpoint, written on Ctrl-C");
}

#[test]
fn dcgan64_trains_on_an_image_folder_in_rgb() {
    // A small real folder: Fashion-MNIST images written as PNGs in nested directories.
    let tmp = tempfile::tempdir().unwrap();
    write_fashion_pngs(&tmp.path().join("faces"), 24, |i| format!("part{}", i % 3));
    let o = gankit(
        &[
            "train",
            "--config",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../configs/dcgan64-folder.toml"
            ),
            "--set",
            "data.path=faces",
            "--set",
            "data.image_size=32",
            "--set",
            "train.steps=2",
            "--set",
            "train.batch_size=8",
            "--set",
            "model.g_width=4",
            "--set",
            "model.d_width=4",
            "--set",
            "log.grid=4",
            "--name",
            "f",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("24 images"), "{}", stderr(&o));
    let o = gankit(
        &["sample", "runs/f", "--n", "3", "--out", "s.npy"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let b = std::fs::read(tmp.path().join("s.npy")).unwrap();
    let header = String::from_utf8_lossy(&b[10..80]).into_owned();
    assert!(header.contains("(3, 3, 32, 32)"), "{header}");
    // Unlabelled images are scored with the fallback extractor, its caveat beside the numbers.
    let o = gankit(&["eval", "runs/f", "--n", "16"], tmp.path());
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("FID") && out.contains("untrained"), "{out}");
    let json = std::fs::read_to_string(tmp.path().join("runs/f/eval.json")).unwrap();
    assert!(
        json.contains("random-features") && json.contains("caveat"),
        "{json}"
    );
}

#[test]
fn bad_data_and_config_values_get_one_clear_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    // IDX: truncated, not IDX at all, missing.
    let mut header = vec![0u8, 0, 8, 3];
    for d in [100u32, 28, 28] {
        header.extend(d.to_be_bytes());
    }
    header.extend([7u8; 500]);
    std::fs::write(p.join("cut-images-idx3-ubyte"), &header).unwrap();
    std::fs::write(p.join("junk-images-idx3-ubyte"), b"garbage!").unwrap();
    // Folders: empty; only broken images; one broken image among good ones, with "fail".
    std::fs::create_dir_all(p.join("empty")).unwrap();
    std::fs::create_dir_all(p.join("broken")).unwrap();
    std::fs::write(p.join("broken/a.png"), b"not a png").unwrap();
    std::fs::write(p.join("broken/b.jpg"), b"").unwrap();
    std::fs::create_dir_all(p.join("mixed")).unwrap();
    std::fs::write(p.join("mixed/bad.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let set = |kv: &str| vec!["--set".to_string(), kv.to_string()];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [
                set("data.dataset=idx"),
                set("data.path=cut-images-idx3-ubyte"),
            ]
            .concat(),
            "truncated",
        ),
        (
            [
                set("data.dataset=idx"),
                set("data.path=junk-images-idx3-ubyte"),
            ]
            .concat(),
            "not an IDX file",
        ),
        (
            [set("data.dataset=idx"), set("data.path=nothing-here")].concat(),
            "is not a file",
        ),
        (
            [set("data.dataset=folder"), set("data.path=empty")].concat(),
            "no .png",
        ),
        (
            [set("data.dataset=folder"), set("data.path=broken")].concat(),
            "could be decoded",
        ),
        (
            [
                set("data.dataset=folder"),
                set("data.path=mixed"),
                set("data.unreadable=fail"),
            ]
            .concat(),
            "data.unreadable",
        ),
        (set("train.d_steps=0"), "d_steps"),
        (set("train.batch_size=0"), "batch_size"),
        (set("optim.d.lr=-0.1"), "optim.d.lr"),
        (set("train.rollback_lr_factor=2"), "rollback_lr_factor"),
        (set("train.on_nan=retry"), "on_nan"),
        (
            [set("model.arch=dcgan64"), set("data.image_size=48")].concat(),
            "power of two",
        ),
        (set("data.channels=2"), "channels"),
        (set("train.loss=wgan-gp"), "batch"),
    ];
    for (args, needle) in &cases {
        let mut a = vec!["train"];
        a.extend(args.iter().map(String::as_str));
        assert_user_error(&a, p, needle);
    }
}

#[test]
fn a_checkpoint_meeting_another_config_is_refused_naming_the_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "r"];
    args.extend(TINY);
    assert!(gankit(&args, tmp.path()).status.success());
    let cfg = tmp.path().join("runs/r/config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("d_width = 8"));
    std::fs::write(&cfg, text.replace("d_width = 8", "d_width = 16")).unwrap();
    assert_user_error(
        &["sample", "runs/r", "--n", "2", "--out", "x.png"],
        tmp.path(),
        "model.d_width: 8 → 16",
    );
    assert_user_error(&["resume", "runs/r"], tmp.path(), "model.d_width: 8 → 16");
}

/// The file-size limit (`ulimit -f`, in 512-byte blocks: 200 KiB) stands in for a full
/// disk: the grids and loss curves fit, the first checkpoint's weights do not. The run must stop with one clear line, leave
/// config.toml and metrics.csv whole and no checkpoint, and resume once space is back.
#[cfg(unix)]
#[test]
fn a_full_disk_stops_with_a_clear_error_and_damages_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = vec!["train", "--name", "full"];
    args.extend(TINY);
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 400; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_gankit"))
        .args(&args)
        .current_dir(tmp.path())
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("free some space") && !e.contains("panicked"),
        "{e}"
    );
    let run = tmp.path().join("runs/full");
    gankit::config::Config::load(&run.join("config.toml"), &[]).unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.ends_with('\n'), "no torn line");
    assert!(
        e.contains("safetensors"),
        "the checkpoint is what did not fit: {e}"
    );
    let left: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "no partial checkpoint is left: {left:?}");
    let o = gankit(&["resume", "runs/full"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        gankit::checkpoint::list(&run.join("checkpoints")).unwrap(),
        vec![2, 4]
    );
}

/// An output folder without write permission: one clear line, exit 2. Root ignores
/// permissions, so as root the binary runs as `nobody` (util-linux's setpriv).
#[cfg(unix)]
#[test]
fn an_unwritable_output_folder_is_one_clear_line() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let bin = env!("CARGO_BIN_EXE_gankit");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        // A copy nobody can reach, whatever the permissions of the checkout's folders.
        let copy = tmp.path().join("gankit");
        std::fs::copy(bin, &copy).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy);
        c
    } else {
        Command::new(bin)
    };
    let o = cmd
        .args(["train", "--out", "out", "--name", "r"])
        .args(TINY)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("Permission denied") && e.contains("writable"),
        "{e}"
    );
    assert_eq!(
        e.trim().lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{e}"
    );
}

#[test]
fn infogan_draws_its_traversal_and_eval_reports_the_code_purity() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![
        "train",
        "--config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/infogan-fashion.toml"
        ),
        "--name",
        "i",
    ];
    args.extend(TINY);
    args.extend(["--set", "log.grid=20"]);
    let o = gankit(&args, tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gankit(
        &[
            "sample",
            "runs/i",
            "--traverse",
            "--code",
            "1",
            "--columns",
            "5",
            "--out",
            "t.png",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // 10 rows (categorical values) × 5 columns of 28 px tiles, 2 px borders.
    assert_eq!(image_dims(&tmp.path().join("t.png")), (152, 302));
    assert_user_error(
        &[
            "sample",
            "runs/i",
            "--traverse",
            "--code",
            "2",
            "--out",
            "t.png",
        ],
        tmp.path(),
        "continuous codes 0 to 1",
    );
    let o = gankit(
        &[
            "sample",
            "runs/i",
            "--n",
            "6",
            "--truncation",
            "0.5",
            "--out",
            "s.npy",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_user_error(
        &[
            "sample",
            "runs/i",
            "--n",
            "6",
            "--truncation",
            "0",
            "--out",
            "s.npy",
        ],
        tmp.path(),
        "positive",
    );
    let o = gankit(
        &["eval", "runs/i", "--n", "50", "--purity-n", "20"],
        tmp.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("code purity"), "{out}");
    let json = std::fs::read_to_string(tmp.path().join("runs/i/eval.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let p = v["code_purity"]["purity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{p}");
    assert_eq!(v["code_purity"]["counts"].as_array().unwrap().len(), 10);
    // A plain GAN has no traversal.
    let mut args = vec!["train", "--name", "g"];
    args.extend(TINY);
    assert!(gankit(&args, tmp.path()).status.success());
    assert_user_error(
        &["sample", "runs/g", "--traverse", "--out", "t.png"],
        tmp.path(),
        "infogan",
    );
}

#[test]
fn sagan_trains_and_draws_its_attention_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![
        "train",
        "--config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/sagan-fashion.toml"
        ),
        "--name",
        "s",
    ];
    args.extend(TINY);
    let o = gankit(&args, tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gankit(
        &["attention", "runs/s", "--n", "3", "--out", "maps.png"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // 3 rows × (image + 4 query panels) of 28 px × 3, 4 px borders.
    assert_eq!(image_dims(&tmp.path().join("maps.png")), (444, 268));
    assert_user_error(
        &["attention", "runs/s", "--side", "7", "--out", "m.png"],
        tmp.path(),
        "attention at [14]",
    );
    let mut args = vec!["train", "--name", "g"];
    args.extend(TINY);
    assert!(gankit(&args, tmp.path()).status.success());
    assert_user_error(
        &["attention", "runs/g", "--out", "m.png"],
        tmp.path(),
        "no self-attention",
    );
}

#[test]
fn encoder_families_reconstruct_encode_and_report_their_representation() {
    let tmp = tempfile::tempdir().unwrap();
    for family in ["bigan", "bigbigan", "vaegan"] {
        let config = format!(
            "{}/../../configs/{family}-fashion.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut args = vec!["train", "--config", &config, "--name", family];
        args.extend(TINY);
        args.extend(["--set", "model.z_dim=8", "--set", "bigan.joint_width=32"]);
        let o = gankit(&args, tmp.path());
        assert!(o.status.success(), "{family}: {}", stderr(&o));
        let run = format!("runs/{family}");
        let o = gankit(
            &["reconstruct", &run, "--n", "10", "--out", "r.png"],
            tmp.path(),
        );
        assert!(o.status.success(), "{family}: {}", stderr(&o));
        // 4 columns; 3 row pairs of inputs and reconstructions: 6 rows of 28 px tiles.
        assert_eq!(image_dims(&tmp.path().join("r.png")), (122, 182));
        let o = gankit(
            &["encode", &run, "--n", "50", "--test", "--out", "z.npy"],
            tmp.path(),
        );
        assert!(o.status.success(), "{family}: {}", stderr(&o));
        let z = gankit::report::npy::read(&tmp.path().join("z.npy")).unwrap();
        assert_eq!(z.shape, vec![50, 8]);
        let labels = gankit::report::npy::read(&tmp.path().join("z.labels.npy")).unwrap();
        assert_eq!(labels.shape, vec![50]);
        let o = gankit(&["eval", &run, "--n", "50", "--probe-n", "100"], tmp.path());
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{family}: {}", stderr(&o));
        assert!(
            out.contains("probe on E(x)") && out.contains("reconstruction"),
            "{out}"
        );
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(format!("{run}/eval.json"))).unwrap(),
        )
        .unwrap();
        let r = &v["representation"];
        for key in [
            "probe_encoder",
            "probe_pixels",
            "probe_untrained_encoder",
            "nearest_neighbour",
            "reconstruction_class_agreement",
            "reconstruction_l1",
            "reconstruction_fid",
        ] {
            let x = r[key].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite(), "{family} {key}: {r}");
        }
    }
    // A plain GAN has nothing to reconstruct.
    let mut args = vec!["train", "--name", "g"];
    args.extend(TINY);
    assert!(gankit(&args, tmp.path()).status.success());
    assert_user_error(
        &["reconstruct", "runs/g", "--out", "r.png"],
        tmp.path(),
        "encoder",
    );
}
