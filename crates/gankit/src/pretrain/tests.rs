use super::*;
use crate::data;

fn tiny(extra: &[&str]) -> Config {
    let mut sets: Vec<String> = [
        "data.split=test",
        "model.g_width=8",
        "model.d_width=8",
        "train.batch_size=32",
        "pretrain.images=256",
        "pretrain.lr=0.003",
        "log.grid=16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sets.extend(extra.iter().map(|s| s.to_string()));
    Config::from_toml_str("", "t", &sets).unwrap()
}

fn losses_of(cfg: &Config) -> (Vec<EpochLoss>, tempfile::TempDir) {
    let data = data::load(&cfg.data).unwrap();
    let mut nets = Nets::build(cfg, &Device::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let l = run(cfg, &mut nets, &data, tmp.path(), &mut |_| {}).unwrap();
    (l, tmp)
}

/// The generator's epoch losses at one side of the stack.
fn g_stage(losses: &[EpochLoss], side: usize) -> Vec<f64> {
    losses
        .iter()
        .filter(|l| l.phase == "g" && l.side == side)
        .map(|l| l.loss)
        .collect()
}

#[test]
fn each_generator_stage_lowers_its_l1_loss_and_d_learns_real_from_fake() {
    let cfg = tiny(&["pretrain.g_epochs=4", "pretrain.d_epochs=3"]);
    let (losses, tmp) = losses_of(&cfg);
    for side in [7, 14, 28] {
        let stage = g_stage(&losses, side);
        assert_eq!(stage.len(), 4, "{side}");
        assert!(stage[3] < stage[0], "{side}×{side}: {stage:?}");
    }
    let d: Vec<f64> = losses
        .iter()
        .filter(|l| l.phase == "d")
        .map(|l| l.loss)
        .collect();
    assert!(d[2] < d[0], "{d:?}");
    for f in [
        "stage_1_7x7.png",
        "stage_2_14x14.png",
        "stage_3_28x28.png",
        "losses.csv",
    ] {
        assert!(tmp.path().join("pretrain").join(f).is_file(), "{f}");
    }
}

#[test]
fn dcgan64_pretrains_from_4x4_up() {
    let cfg = tiny(&[
        "model.arch=dcgan64",
        "data.image_size=32",
        "model.g_width=4",
        "model.d_width=4",
        "pretrain.g_epochs=1",
        "pretrain.images=64",
    ]);
    let (losses, _) = losses_of(&cfg);
    let sides: Vec<usize> = losses.iter().map(|l| l.side).collect();
    assert_eq!(sides, vec![2, 4, 8, 16, 32]);
}

#[test]
fn pretraining_is_refused_where_it_cannot_apply() {
    for (sets, needle) in [
        (["model.arch=mlp", "pretrain.g_epochs=1"], "mlp"),
        (["model.classes=10", "pretrain.d_epochs=1"], "conditional"),
    ] {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let cfg = Config::from_toml_str("", "t", &sets).unwrap();
        let e = crate::family::check(&cfg).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn the_perceptual_loss_also_falls_stage_by_stage() {
    let cfg = tiny(&[
        "pretrain.g_epochs=3",
        "pretrain.d_epochs=0",
        "pretrain.loss=perceptual",
    ]);
    crate::family::check(&cfg).unwrap();
    let (losses, _tmp) = losses_of(&cfg);
    for side in [7, 14, 28] {
        let stage = g_stage(&losses, side);
        assert!(stage[2] < stage[0], "{side}×{side}: {stage:?}");
    }
    let rgb = Config::from_toml_str(
        "",
        "t",
        &[
            "model.arch=dcgan64".into(),
            "data.image_size=32".into(),
            "pretrain.g_epochs=1".into(),
            "pretrain.loss=perceptual".into(),
        ],
    )
    .unwrap();
    let e = crate::family::check(&rgb).unwrap_err().to_string();
    assert!(e.contains("28×28 grayscale"), "{e}");
}
