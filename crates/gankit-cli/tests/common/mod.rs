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
