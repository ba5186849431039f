//! Config rot: every file in configs/ loads, validates and trains a few iterations at tiny
//! width (the folder configs on a small generated folder), so no shipped config can
//! drift out of step with the code.

use std::path::{Path, PathBuf};

use candle_core::Device;
use gankit::config::{Arch, Config, DatasetKind};
use gankit::train::{RunDir, Session, Silent};

/// Every `.toml` under configs/, sub-folders included (configs/reports/ holds the reports'
/// own settings).
fn configs() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "toml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs"),
        &mut out,
    );
    out.sort();
    out
}

/// 24 Fashion-MNIST test images as PNGs in two sub-folders.
fn image_folder(dir: &Path) -> PathBuf {
    let (images, _) = gankit::data::fashion::embedded().unwrap();
    let root = dir.join("faces");
    for i in 0..24 {
        let sub = root.join(format!("part{}", i % 2));
        std::fs::create_dir_all(&sub).unwrap();
        let px: Vec<f32> = images.data[i * 784..(i + 1) * 784]
            .iter()
            .map(|&b| b as f32 / 127.5 - 1.0)
            .collect();
        gankit::report::grid::write_png(&sub.join(format!("{i}.png")), &px, 1, 1, 28).unwrap();
    }
    root
}

/// Overrides that keep a config's every technique but shrink it to seconds.
fn tiny(cfg: &Config, folder: &Path) -> Vec<String> {
    let mut s: Vec<String> = [
        "train.steps=3",
        "train.batch_size=8",
        "model.g_width=4",
        "model.d_width=4",
        "model.mlp_hidden=8",
        "log.grid=4",
        "log.sample_every=2",
        "checkpoint.every=2",
        "eval.every=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match cfg.data.dataset {
        DatasetKind::Folder => {
            s.push(format!("data.path={}", folder.display()));
            if !matches!(cfg.model.arch, Arch::Dcgan28 | Arch::Mlp) && cfg.data.image_size > 32 {
                s.push("data.image_size=32".into());
                // Attention layers follow their maps to the smaller image.
                let scale = cfg.data.image_size / 32;
                let sides: Vec<String> = cfg
                    .model
                    .attention
                    .iter()
                    .map(|a| (a / scale).to_string())
                    .collect();
                s.push(format!("model.attention=[{}]", sides.join(",")));
            }
        }
        DatasetKind::FashionMnist => s.push("data.split=test".into()),
        DatasetKind::Idx => {}
    }
    if cfg.pretrain.enabled() {
        s.extend(["pretrain.images=16".into(), "pretrain.g_epochs=1".into()]);
        s.push(format!(
            "pretrain.d_epochs={}",
            cfg.pretrain.d_epochs.min(1)
        ));
    }
    if cfg.model.arch == Arch::Progressive {
        // Grow (and fade) every step, so three steps pass through every phase.
        s.extend([
            "progressive.fade_images=8".into(),
            "progressive.stable_images=8".into(),
        ]);
    }
    if cfg.log.lipschitz_every > 0 {
        s.push("log.lipschitz_every=2".into());
    }
    if cfg.model.classes > 0 {
        s.push("log.grid=10".into());
    }
    s
}

#[test]
fn every_shipped_config_loads_and_trains_a_few_iterations() {
    // WGAN-GP's exact penalty needs second-order gradients, which candle reads once per
    // thread at its first backward pass: set, then train on a fresh thread (harmless for
    // the other objectives).
    // SAFETY: set before the thread that reads it starts; nothing else writes it.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    std::thread::spawn(train_every_config).join().unwrap();
}

fn train_every_config() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = image_folder(tmp.path());
    let files = configs();
    assert!(files.len() >= 40, "{} configs", files.len());
    for path in &files {
        let name = &path.file_stem().unwrap().to_string_lossy().into_owned();
        let cfg = Config::load(path, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let small = Config::load(path, &tiny(&cfg, &folder))
            .unwrap_or_else(|e| panic!("{name} (tiny): {e}"));
        assert!(
            gankit::config::differences(&cfg, &small)
                .iter()
                .all(|d| !d.starts_with("train.loss") && !d.starts_with("model.arch")),
            "{name}: the tiny version keeps the objective and architecture"
        );
        let dir = RunDir::new(tmp.path().join("runs").join(name));
        let mut s = Session::start(small, dir, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{name}: start: {e}"));
        s.run(&mut Silent, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: train: {e}"));
        assert_eq!(s.step(), 3, "{name}");
    }
}
