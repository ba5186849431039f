//! `gankit eval --evaluator inception` through the binary, with the synthetic Inception
//! weights (`evaluator::inception::synthetic`) imported into a fresh home: the error
//! without weights, scoring arrays, pytorch-fid statistics files written and read back,
//! and the 8-bit rounding.

mod common;

use std::path::Path;

use common::{gankit, stderr, text};

/// `n` embedded Fashion-MNIST test images from `from`, in [-1, 1], (n, 1, 28, 28), with
/// `offset` added (clamped): 0 keeps them on the 8-bit grid.
fn images(d: &Path, file: &str, from: usize, n: usize, offset: f32) {
    let (all, _) = gankit::data::fashion::embedded().unwrap();
    let x: Vec<f32> = all.data[from * 784..(from + n) * 784]
        .iter()
        .map(|&v| (v as f32 / 127.5 - 1.0 + offset).clamp(-1.0, 1.0))
        .collect();
    gankit::report::npy::write_f32(&d.join(file), &x, &[n, 1, 28, 28]).unwrap();
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn inception_scores_arrays_and_reads_and_writes_pytorch_fid_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let home = d.join("home");
    let home_s = home.display().to_string();
    // 16 images a side: the features' 2048-d covariances are singular, which the report
    // warns about; the equivalence with pytorch-fid at full rank is the library's test.
    images(d, "real.npy", 0, 16, 0.0);
    images(d, "fake.npy", 100, 16, 0.0);
    images(d, "fake_off.npy", 100, 16, 0.3 / 255.0);
    let score = |fake: &str, extra: &[&str], out: &str| {
        let args = [
            &[
                "eval",
                "--fake",
                fake,
                "--evaluator",
                "inception",
                "--home",
                &home_s,
                "--out",
                out,
            ][..],
            extra,
        ]
        .concat();
        gankit(&args, d)
    };
    let eval = |extra: &[&str], out: &str| score("fake.npy", extra, out);

    // No weights: one line saying how to get them, exit 2.
    let o = eval(&["--real", "real.npy"], "e.json");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("scripts/convert_inception.py")
            && stderr(&o).contains("import-inception"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));

    let weights = d.join("synthetic.safetensors");
    let w = gankit::evaluator::inception::synthetic::weights().unwrap();
    gankit::checkpoint::write_safetensors(&weights, &w).unwrap();
    let o = gankit(
        &[
            "evaluator",
            "import-inception",
            &weights.display().to_string(),
            "--home",
            &home_s,
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));

    // Both sides from images, their statistics saved.
    let o = eval(
        &["--real", "real.npy", "--save-stats", "stats"],
        "full.json",
    );
    assert!(o.status.success(), "{}", text(&o));
    let full = json(&d.join("full.json"));
    assert_eq!(full["evaluator"], "inception-v3-fid");
    let fid = full["fid"].as_f64().unwrap();
    assert!(fid.is_finite() && fid > 0.0, "{fid}");
    for key in ["kid", "precision", "recall", "density", "coverage"] {
        assert!(full[key].as_f64().unwrap().is_finite(), "{key}");
    }
    let is = full["inception_score"].as_f64().unwrap();
    assert!(is >= 1.0, "{is}");
    // Inception's classes are ImageNet's: no class histogram for Fashion-MNIST.
    assert!(full.get("class_histogram").is_none());
    assert!(stdout_lacks(&o, "class histogram"));

    // The real side from the saved statistics: the same FID, and only FID.
    let o = eval(&["--stats", "stats/real.npz"], "stats.json");
    assert!(o.status.success(), "{}", text(&o));
    let from_stats = json(&d.join("stats.json"));
    assert_eq!(from_stats["fid"].as_f64().unwrap(), fid);
    assert!(from_stats.get("precision").is_none() && from_stats.get("kid").is_none());
    assert_eq!(from_stats["real_statistics"], "stats/real.npz");
    assert!(
        text(&o).contains("n/a (needs both sides' features"),
        "{}",
        text(&o)
    );
    // Images a third of a level off the 8-bit grid round back onto it by default, and
    // --fid-only gives the same FID without the neighbourhood metrics.
    let off = |extra: &[&str], out: &str| {
        let o = score("fake_off.npy", extra, out);
        assert!(o.status.success(), "{}", text(&o));
        json(&d.join(out))
    };
    let only = off(
        &["--real", "real.npy", "--fid-only", "--save-stats", "only"],
        "only.json",
    );
    assert_eq!(
        std::fs::read(d.join("only/real.npz")).unwrap(),
        std::fs::read(d.join("stats/real.npz")).unwrap()
    );
    assert_eq!(only["fid"].as_f64().unwrap(), fid);
    assert_eq!(only["real_images"], 16);
    assert!(only.get("recall").is_none() && only.get("kid").is_none());
    let unrounded = off(&["--stats", "stats/real.npz", "--no-quantize"], "raw.json");
    let unrounded = unrounded["fid"].as_f64().unwrap();
    assert!(
        unrounded != fid && (unrounded - fid).abs() < 0.1 * fid,
        "{unrounded} vs {fid}"
    );

    // Statistics of another network's width are refused with a clear line.
    let small = d.join("small.npz");
    gankit::evaluator::stats_file::write(
        &small,
        &gankit::metrics::GaussianStats {
            mean: nalgebra::DVector::zeros(3),
            cov: nalgebra::DMatrix::identity(3, 3),
        },
    )
    .unwrap();
    let o = eval(&["--stats", "small.npz"], "bad.json");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("statistics of 3 features") && stderr(&o).contains("have 2048"),
        "{}",
        stderr(&o)
    );

    // NumPy reads the files as pytorch-fid does and finds the same FID, when a Python
    // with NumPy is named (CI names one). With 16 images the 2048-d covariances are
    // singular, and the ~2000 zero eigenvalues' round-off under the square roots differs
    // between the two eigensolvers by about 1e-6 of the FID.
    if let Ok(python) = std::env::var("GANKIT_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fid_from_stats.py");
        let o = std::process::Command::new(python)
            .arg(script)
            .arg(d.join("stats/generated.npz"))
            .arg(d.join("stats/real.npz"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let theirs: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        assert!(
            (theirs - fid).abs() <= 1e-4 * fid,
            "NumPy {theirs} vs gankit {fid}"
        );
    }
}

fn stdout_lacks(o: &std::process::Output, what: &str) -> bool {
    !String::from_utf8_lossy(&o.stdout).contains(what)
}
