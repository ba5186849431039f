//! Helpers shared by the CLI tests (each test binary uses a part of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Run the real binary in `cwd`, with evaluators stored under `cwd/home`.
pub fn gankit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gankit"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .env("GANKIT_HOME", cwd.join("home"))
        .output()
        .expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o))
}

/// Overrides for a tiny, fast run on the test split.
pub const TINY: [&str; 14] = [
    "--set",
    "train.steps=4",
    "--set",
    "train.batch_size=8",
    "--set",
    "data.split=test",
    "--set",
    "model.g_width=8",
    "--set",
    "model.d_width=8",
    "--set",
    "log.grid=9",
    "--set",
    "checkpoint.every=2",
];

/// `n` Fashion-MNIST test images as 28×28 grayscale PNGs `dir/<folder(i)>/<i>.png`.
pub fn write_fashion_pngs(dir: &Path, n: usize, folder: impl Fn(usize) -> String) {
    let (images, _) = gankit::data::fashion::embedded().unwrap();
    for i in 0..n {
        let sub = dir.join(folder(i));
        std::fs::create_dir_all(&sub).unwrap();
        let px: Vec<f32> = images.data[i * 784..(i + 1) * 784]
            .iter()
            .map(|&b| b as f32 / 127.5 - 1.0)
            .collect();
        gankit::report::grid::write_png(&sub.join(format!("{i:02}.png")), &px, 1, 1, 28).unwrap();
    }
}
