//! End-to-end tests of the loop on small real data (the Fashion-MNIST test split).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor};

use super::*;

fn tiny(steps: u64, extra: &[&str]) -> Config {
    let mut sets: Vec<String> = vec![
        format!("train.steps={steps}"),
        "train.batch_size=16".into(),
        "data.split=test".into(),
        "model.g_width=8".into(),
        "model.d_width=8".into(),
        "checkpoint.every=3".into(),
        "log.sample_every=4".into(),
        "log.grid=16".into(),
        "train.seed=11".into(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    Config::from_toml_str("", "test", &sets).unwrap()
}

/// Raises the stop flag after iteration `at`.
struct StopAt(u64, Arc<AtomicBool>);
impl Observer for StopAt {
    fn iteration(&mut self, step: u64, _: &[(&'static str, f64)]) {
        if step == self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
}

fn bits(map: &HashMap<String, Tensor>) -> Vec<(String, Vec<u32>)> {
    let mut v: Vec<_> = map
        .iter()
        .map(|(k, t)| {
            let f = t
                .flatten_all()
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap();
            (
                k.clone(),
                f.to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

fn losses(dir: &RunDir) -> Vec<Vec<u64>> {
    let (h, rows) = metrics::read(&dir.metrics()).unwrap();
    let keep: Vec<usize> = (0..h.len())
        .filter(|&i| h[i] != "images_per_s" && h[i] != "wall_s")
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&i| r[i].to_bits()).collect())
        .collect()
}

#[test]
fn short_run_writes_every_artifact_with_finite_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let mut s = Session::start(tiny(8, &[]), dir.clone(), &Device::Cpu).unwrap();
    assert_eq!(
        s.run(&mut Silent, &Default::default()).unwrap(),
        Outcome::Finished
    );
    let (h, rows) = metrics::read(&dir.metrics()).unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(h[..3], ["step", "epoch", "images_per_s"]);
    assert!(rows.iter().all(|r| r.iter().all(|v| v.is_finite())));
    for p in [
        dir.config(),
        dir.loss_plot(),
        dir.sample_grid(0),
        dir.sample_grid(4),
        dir.sample_grid(8),
    ] {
        assert!(p.is_file(), "{} missing", p.display());
    }
    assert_eq!(checkpoint::list(&dir.checkpoints()).unwrap(), vec![3, 6, 8]);
    // One GIF frame per sample grid.
    assert_eq!(crate::report::gif::frame_count(&dir.samples_gif()), 3);
}

#[test]
fn every_architecture_trains_with_finite_losses() {
    for arch in [
        &[
            "model.arch=mlp",
            "model.mlp_hidden=16",
            "model.d_dropout=0.3",
        ][..],
        &["model.arch=dcgan64", "data.image_size=32"][..],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("run"));
        let mut s = Session::start(tiny(3, arch), dir.clone(), &Device::Cpu).unwrap();
        s.run(&mut Silent, &Default::default()).unwrap();
        let (_, rows) = metrics::read(&dir.metrics()).unwrap();
        assert_eq!(rows.len(), 3, "{arch:?}");
        assert!(
            rows.iter().all(|r| r.iter().all(|v| v.is_finite())),
            "{arch:?}"
        );
    }
}

#[test]
fn interrupted_and_resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    resume_is_bit_identical(&["train.g_steps=2"]);
}

#[test]
fn stabilised_run_resumes_bit_identically_with_u_vectors_and_weight_average() {
    let files = resume_is_bit_identical(&[
        "model.spectral_norm=true",
        "model.d_norm=none",
        "ema.decay=0.9",
        "ema.start=2",
        "augment.policy=\"color,translation,cutout\"",
        "instance_noise.std=0.1",
    ]);
    assert!(
        files.contains_key("g_ema.safetensors"),
        "{:?}",
        files.keys()
    );
    assert!(files["d.safetensors"].contains_key("conv1.weight_u"));
    assert!(files["d.safetensors"].contains_key("fc.weight_u"));
}

/// Run `tiny(7, extra)` straight and interrupted at 4 then resumed: every checkpoint file,
/// the generator positions and metrics.csv must agree bit for bit. Returns the last
/// checkpoint's tensors.
fn resume_is_bit_identical(extra: &[&str]) -> HashMap<String, HashMap<String, Tensor>> {
    let tmp = tempfile::tempdir().unwrap();
    let straight = RunDir::new(tmp.path().join("straight"));
    Session::start(tiny(7, extra), straight.clone(), &Device::Cpu)
        .unwrap()
        .run(&mut Silent, &Default::default())
        .unwrap();

    let split = RunDir::new(tmp.path().join("split"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut first = Session::start(tiny(7, extra), split.clone(), &Device::Cpu).unwrap();
    // Stop after iteration 4: a checkpoint is written at 3 (schedule) and at 4 (stop).
    assert_eq!(
        first.run(&mut StopAt(4, stop.clone()), &stop).unwrap(),
        Outcome::Stopped(4)
    );
    drop(first);
    // Pretend the process died after writing two more metric rows and a torn one.
    let mut m = std::fs::read_to_string(split.metrics()).unwrap();
    let width = m.lines().next().unwrap().split(',').count();
    m.push_str(&format!("5{}\n6,0,1,", ",1".repeat(width - 1)));
    std::fs::write(split.metrics(), m).unwrap();

    let mut second = Session::resume(split.clone(), &Device::Cpu).unwrap();
    assert_eq!(second.step(), 4);
    assert_eq!(
        second.run(&mut Silent, &Default::default()).unwrap(),
        Outcome::Finished
    );

    let a = checkpoint::load(&straight.checkpoints(), Some(7), &Device::Cpu).unwrap();
    let b = checkpoint::load(&split.checkpoints(), Some(7), &Device::Cpu).unwrap();
    assert_eq!(a.state.files.len(), b.state.files.len());
    for f in a.tensors.keys() {
        assert!(
            bits(&a.tensors[f]) == bits(&b.tensors[f]),
            "{f} differs after resume ({extra:?})"
        );
    }
    assert_eq!(a.state.run.rng, b.state.run.rng);
    assert_eq!(a.state.run.batches, b.state.run.batches);
    assert_eq!(
        losses(&straight),
        losses(&split),
        "metrics.csv differs after resume"
    );
    // The GIF of the resumed run: grids 0 and 4 rebuilt at the resume, 7 appended.
    assert_eq!(crate::report::gif::frame_count(&split.samples_gif()), 3);
    assert!(
        std::fs::read(straight.samples_gif()).unwrap()
            == std::fs::read(split.samples_gif()).unwrap(),
        "samples.gif differs after resume"
    );
    a.tensors
}

#[test]
fn resume_refuses_an_edited_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    Session::start(tiny(3, &[]), dir.clone(), &Device::Cpu)
        .unwrap()
        .run(&mut Silent, &Default::default())
        .unwrap();
    let text = std::fs::read_to_string(dir.config())
        .unwrap()
        .replace("seed = 11", "seed = 12");
    std::fs::write(dir.config(), text).unwrap();
    let e = Session::resume(dir, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("was changed") && e.contains("train.seed: 11 → 12"),
        "{e}"
    );
}

#[test]
fn every_stabilisation_technique_trains_with_finite_losses() {
    let cases: [&[&str]; 6] = [
        &[
            "train.loss=wgan-gp",
            "model.d_norm=none",
            "model.spectral_norm=true",
        ],
        &[
            "train.loss=hinge",
            "train.feature_matching=true",
            "augment.policy=\"color,translation,cutout\"",
        ],
        &["train.loss=lsgan", "instance_noise.std=0.2"],
        &["ema.decay=0.99", "ema.start=5"],
        &["model.classes=10", "log.lipschitz_every=5"],
        &[
            "model.classes=10",
            "train.loss=wgan-gp",
            "model.d_norm=none",
            "model.spectral_norm=true",
            "augment.policy=\"translation,cutout\"",
            "ema.decay=0.9",
        ],
    ];
    crate::objectives::penalty::with_second_order(move || {
        for sets in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = RunDir::new(tmp.path().join("run"));
            let mut s = Session::start(tiny(12, sets), dir.clone(), &Device::Cpu).unwrap();
            s.run(&mut Silent, &Default::default()).unwrap();
            let (h, rows) = metrics::read(&dir.metrics()).unwrap();
            assert_eq!(rows.len(), 12, "{sets:?}");
            for (i, name) in h.iter().enumerate() {
                if name.ends_with("_loss") {
                    assert!(rows.iter().all(|r| r[i].is_finite()), "{sets:?}: {name}");
                }
            }
            if sets.contains(&"model.classes=10") {
                let t = crate::sample::load(&dir.root, None, true, &Device::Cpu).unwrap();
                assert_eq!(t.generate(4, Some(7), 0).unwrap().len(), 4 * 784);
                let e = t.generate(4, Some(10), 0).unwrap_err().to_string();
                assert!(e.contains("classes 0 to 9"), "{e}");
            }
        }
    });
}

#[test]
fn samples_never_go_through_d_input_transform() {
    // Same seed, same initial weights: G's samples are the same with augmentation and
    // instance noise on or off.
    let on = tiny(
        1,
        &[
            "augment.policy=\"color,translation,cutout\"",
            "instance_noise.std=0.5",
        ],
    );
    let a = family::build(&on, &Device::Cpu).unwrap();
    let b = family::build(&tiny(1, &[]), &Device::Cpu).unwrap();
    let draw = |f: &dyn Family| {
        family::generate(f, 8, &Draw::default(), &mut Rng::new(0, 0), true).unwrap()
    };
    assert_eq!(draw(a.as_ref()), draw(b.as_ref()));
}

#[test]
fn a_conditional_run_refuses_data_without_fitting_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Session::start(
        tiny(2, &["model.classes=5"]),
        RunDir::new(tmp.path().join("r")),
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("label 9") && e.contains("at least 10"), "{e}");
}

#[test]
fn every_objective_trains_a_few_dozen_steps_with_finite_losses() {
    let cases: [&[&str]; 9] = [
        &["train.loss=minimax"],
        &[
            "train.loss=non-saturating",
            "train.label_smoothing=one-sided",
            "train.feature_matching=true",
        ],
        &[
            "train.loss=wgan",
            "optim.d.kind=rmsprop",
            "optim.g.kind=rmsprop",
            "optim.d.lr=5e-5",
            "optim.g.lr=5e-5",
            "train.d_steps=5",
        ],
        &[
            "train.loss=wgan-gp",
            "model.d_norm=layer",
            "optim.d.beta1=0",
            "optim.d.beta2=0.9",
            "train.d_steps=5",
        ],
        &[
            "train.loss=wgan-gp",
            "model.critic=conv4",
            "model.d_norm=none",
            "gp.mode=finite-difference",
        ],
        &[
            "train.loss=lsgan",
            "train.label_smoothing=salimans",
            "lsgan.alpha.start=5",
            "lsgan.alpha.end=20",
            "lsgan.alpha.max=0.5",
        ],
        &[
            "train.loss=hinge",
            "optim.d.kind=sgd",
            "optim.d.momentum=0.9",
            "optim.d.lr=0.01",
        ],
        &[
            "model.arch=mlp",
            "model.mlp_hidden=16",
            "model.d_dropout=0.3",
            "train.g_every=3",
        ],
        &["train.loss=wgan", "log.lipschitz_every=10"],
    ];
    crate::objectives::penalty::with_second_order(move || {
        for sets in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = RunDir::new(tmp.path().join("run"));
            let cfg = tiny(30, sets);
            let mut s = Session::start(cfg, dir.clone(), &Device::Cpu).unwrap();
            assert_eq!(
                s.run(&mut Silent, &Default::default()).unwrap(),
                Outcome::Finished,
                "{sets:?}"
            );
            let (h, rows) = metrics::read(&dir.metrics()).unwrap();
            assert_eq!(rows.len(), 30, "{sets:?}");
            let g = h.iter().position(|c| c == "g_loss").unwrap();
            for r in &rows {
                for (i, v) in r.iter().enumerate() {
                    // With g_every = 3, G's columns are NaN on iterations without a G update.
                    let no_g_update =
                        i == g && sets.contains(&"train.g_every=3") && r[0] as u64 % 3 != 0;
                    // Lipschitz columns hold values every 10th iteration and NaN between.
                    let tracked = h[i] == "lipschitz_bound" || h[i] == "max_grad_norm";
                    let untracked_step = tracked && r[0] as u64 % 10 != 0;
                    assert!(
                        v.is_finite() || no_g_update || untracked_step,
                        "{sets:?}: column {} = {v} at step {}",
                        h[i],
                        r[0]
                    );
                    if tracked && !untracked_step {
                        assert!(*v > 0.0, "{sets:?}: {} = {v} at step {}", h[i], r[0]);
                    }
                }
            }
            if sets.contains(&"train.loss=lsgan") {
                let a = h.iter().position(|c| c == "alpha").unwrap();
                assert_eq!(
                    (rows[4][a], rows[29][a]),
                    (0.0, 0.5),
                    "α schedule in the metrics"
                );
            }
        }
    });
}

/// Collects the notes a run reports.
#[derive(Default)]
struct Notes(Vec<String>);
impl Observer for Notes {
    fn note(&mut self, msg: &str) {
        self.0.push(msg.to_string());
    }
}

/// A D learning rate that blows its weights up within an iteration or two.
const EXPLODE: [&str; 2] = ["optim.d.kind=sgd", "optim.d.lr=1e35"];

#[test]
fn divergence_stops_with_the_iteration_and_what_went_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let mut s = Session::start(tiny(6, &EXPLODE), dir.clone(), &Device::Cpu).unwrap();
    let e = s.run(&mut Silent, &Default::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Diverged(_)), "{msg}");
    assert!(
        msg.contains("at iteration") && msg.contains("on_nan"),
        "{msg}"
    );
}

/// A 6-iteration run whose D explodes at once, with `train.on_nan = "rollback"` and a
/// factor that tames it: it must finish after rolling back to iteration 0.
fn rolled_back_run(extra: &[&str], dir: &RunDir) -> Session {
    let mut sets = EXPLODE.to_vec();
    sets.extend(["train.on_nan=rollback", "train.rollback_lr_factor=1e-38"]);
    sets.extend(extra);
    let mut s = Session::start(tiny(6, &sets), dir.clone(), &Device::Cpu).unwrap();
    let mut notes = Notes::default();
    assert_eq!(
        s.run(&mut notes, &Default::default()).unwrap(),
        Outcome::Finished
    );
    assert!(
        notes
            .0
            .iter()
            .any(|n| n.contains("rolled back to iteration 0")),
        "{:?}",
        notes.0
    );
    s
}

#[test]
fn rollback_reloads_the_last_checkpoint_with_lower_learning_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    rolled_back_run(&[], &dir);
    // metrics.csv: iterations 1..=6 once each, every value finite.
    let (h, rows) = metrics::read(&dir.metrics()).unwrap();
    let steps: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(steps, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    for r in &rows {
        for (name, v) in h.iter().zip(r) {
            assert!(v.is_finite(), "{name} = {v}");
        }
    }
    let last = checkpoint::load(&dir.checkpoints(), None, &Device::Cpu).unwrap();
    assert_eq!(last.state.run.rollbacks, 1);
    assert!((last.state.run.lr_scale - 1e-38).abs() < 1e-45);
    // A resume keeps the lowered learning rates.
    let mut resumed = Session::resume(dir.clone(), &Device::Cpu).unwrap();
    let lr = resumed.family.model_mut().optimizer("d").lr();
    assert!((lr - 1e35 * 1e-38).abs() < 1e-6);
}

#[test]
fn rollback_gives_up_after_max_rollbacks_keeping_a_finite_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let mut extra = EXPLODE.to_vec();
    extra.extend(["train.on_nan=rollback", "train.max_rollbacks=2"]);
    let mut s = Session::start(tiny(6, &extra), dir.clone(), &Device::Cpu).unwrap();
    let e = s
        .run(&mut Silent, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("after 2 rollbacks"), "{e}");
    let last = checkpoint::load(&dir.checkpoints(), None, &Device::Cpu).unwrap();
    for (_, t) in last.tensors.values().flat_map(|m| m.iter()) {
        let v = t
            .flatten_all()
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        assert!(v.to_vec1::<f32>().unwrap().iter().all(|x| x.is_finite()));
    }
}

#[test]
fn a_run_killed_before_its_first_checkpoint_resumes_from_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    drop(Session::start(tiny(3, &[]), dir.clone(), &Device::Cpu).unwrap());
    std::fs::write(dir.metrics(), "torn").unwrap();
    let mut s = Session::resume(dir.clone(), &Device::Cpu).unwrap();
    assert_eq!(s.step(), 0);
    assert_eq!(
        s.run(&mut Silent, &Default::default()).unwrap(),
        Outcome::Finished
    );
    let (_, rows) = metrics::read(&dir.metrics()).unwrap();
    assert_eq!(rows.len(), 3);
}

#[test]
fn pretraining_runs_once_before_iteration_one_and_a_resume_skips_it() {
    let extra = [
        "pretrain.g_epochs=1",
        "pretrain.d_epochs=1",
        "pretrain.images=48",
        "train.loss=lsgan",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let mut notes = Notes::default();
    let mut s = Session::start(tiny(4, &extra), dir.clone(), &Device::Cpu).unwrap();
    s.run(&mut notes, &Default::default()).unwrap();
    let pretrain_notes = |n: &Notes| n.0.iter().filter(|m| m.starts_with("pretrain")).count();
    // Three G stages (7, 14, 28) and D, one epoch each.
    assert_eq!(pretrain_notes(&notes), 4, "{:?}", notes.0);
    let zero = checkpoint::load(&dir.checkpoints(), Some(0), &Device::Cpu);
    // keep = 3 of 0, 3, 4: the step-0 checkpoint is there and marks the pretraining.
    assert!(zero.unwrap().state.run.pretrained);
    // A run stopped after pretraining resumes without pretraining again.
    let dir2 = RunDir::new(tmp.path().join("run2"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut first = Session::start(tiny(4, &extra), dir2.clone(), &Device::Cpu).unwrap();
    first.run(&mut StopAt(1, stop.clone()), &stop).unwrap();
    drop(first);
    let mut notes = Notes::default();
    let mut again = Session::resume(dir2.clone(), &Device::Cpu).unwrap();
    again.run(&mut notes, &Default::default()).unwrap();
    assert_eq!(pretrain_notes(&notes), 0, "{:?}", notes.0);
    assert!(dir2.root.join("pretrain/stage_3_28x28.png").is_file());
}

/// A checkpoint of networks g, d, q (g averaged) and optimisers `opt_d` and `other`.
fn assert_files(files: &HashMap<String, HashMap<String, Tensor>>, other: &str) {
    let mut names: Vec<String> = files.keys().cloned().collect();
    names.sort();
    let mut want: Vec<String> = ["d", "g", "g_ema", "opt_d", other, "q"]
        .iter()
        .map(|f| format!("{f}.safetensors"))
        .collect();
    want.sort();
    assert_eq!(names, want);
}

/// The test family: three networks (`g`, `d`, `q`), optimiser `gq` over G, Q and D's body.
const THREE: &str = "model.family=three-net-test";

#[test]
fn a_three_network_family_checkpoints_resumes_averages_and_rolls_back_generically() {
    // Trains and resumes bit for bit, its weight average included.
    let files = resume_is_bit_identical(&[THREE, "ema.decay=0.9"]);
    assert_files(&files, "opt_gq");
    // The shared body has moments in both optimisers; Q's head only in `gq`.
    let gq = &files["opt_gq.safetensors"];
    assert!(gq.contains_key("m.d.body.weight") && gq.contains_key("m.q.head.weight"));
    assert!(!gq.contains_key("m.d.head.weight"));
    assert!(files["opt_d.safetensors"].contains_key("m.body.weight"));
    assert_ne!(
        bits(&files["g.safetensors"]),
        bits(&files["g_ema.safetensors"]),
        "the average lags G"
    );
    // An injected divergence (D's learning rate explodes) is rolled back.
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let mut s = rolled_back_run(&[THREE], &dir);
    let lr = s.family.model_mut().optimizer("d").lr();
    assert!((lr - 1e35 * 1e-38).abs() < 1e-6, "{lr}");
    let (h, rows) = metrics::read(&dir.metrics()).unwrap();
    assert_eq!(h[3..6], ["d_loss", "g_loss", "code_loss"]);
    assert!(rows.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn sagan_with_spectral_norm_on_g_and_its_average_resumes_bit_identically() {
    let files = resume_is_bit_identical(&[
        "model.attention=[7]",
        "model.g_spectral_norm=true",
        "model.spectral_norm=true",
        "model.d_norm=none",
        "train.loss=hinge",
        "ema.decay=0.9",
    ]);
    for f in ["g.safetensors", "g_ema.safetensors"] {
        for name in [
            "fc.weight_u",
            "deconv1.weight_u",
            "attn7.f.weight_u",
            "attn7.gamma",
        ] {
            assert!(files[f].contains_key(name), "{f} lacks {name}");
        }
    }
    assert!(files["d.safetensors"].contains_key("attn7.h.weight"));
    // γ has moved off 0 in both networks.
    for f in ["g.safetensors", "d.safetensors"] {
        let gamma = files[f]["attn7.gamma"].to_vec1::<f32>().unwrap()[0];
        assert!(gamma != 0.0, "{f}: γ = {gamma}");
    }
}

#[test]
fn attention_sides_must_exist_in_both_networks() {
    for (sets, needle) in [
        (&["model.attention=[13]"][..], "use some of [7, 14]"),
        (
            &["model.arch=mlp", "model.attention=[14]"],
            "use some of []",
        ),
        (
            &["model.attention=[7]", "model.attention_variant=official"],
            "even sides",
        ),
    ] {
        let e = crate::family::check(&tiny(1, sets))
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn infogan_resumes_bit_identically() {
    let files =
        resume_is_bit_identical(&["model.family=infogan", "model.z_dim=16", "ema.decay=0.9"]);
    assert_files(&files, "opt_g");
    // Optimiser d spans D and Q.
    let d = &files["opt_d.safetensors"];
    assert!(d.contains_key("m.d.conv1.weight") && d.contains_key("m.q.fc2.weight"));
}

/// IDX files of the first `n` embedded test images with their labels, or with the labels
/// shuffled.
fn labelled_idx(dir: &std::path::Path, n: usize, shuffle: bool) -> std::path::PathBuf {
    let (images, labels) = crate::data::fashion::embedded().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let mut img = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        img.extend_from_slice(&d.to_be_bytes());
    }
    img.extend_from_slice(&images.data[..n * 784]);
    let mut lab: Vec<u8> = labels.data[..n].to_vec();
    if shuffle {
        lab.reverse();
        lab.iter_mut().for_each(|l| *l = 9 - *l);
    }
    let mut l = vec![0, 0, 8, 1];
    l.extend_from_slice(&(n as u32).to_be_bytes());
    l.extend(lab);
    let p = dir.join("x-images-idx3-ubyte");
    std::fs::write(&p, img).unwrap();
    std::fs::write(dir.join("x-labels-idx1-ubyte"), l).unwrap();
    p
}

#[test]
fn infogan_never_reads_the_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |shuffle: bool| {
        let idx = labelled_idx(&tmp.path().join(format!("data{shuffle}")), 256, shuffle);
        let cfg = tiny(
            4,
            &[
                "model.family=infogan",
                "model.z_dim=16",
                "data.dataset=idx",
                &format!("data.path={}", idx.display()),
            ],
        );
        let dir = RunDir::new(tmp.path().join(format!("run{shuffle}")));
        Session::start(cfg, dir.clone(), &Device::Cpu)
            .unwrap()
            .run(&mut Silent, &Default::default())
            .unwrap();
        checkpoint::load(&dir.checkpoints(), Some(4), &Device::Cpu).unwrap()
    };
    let (a, b) = (run(false), run(true));
    for f in a.tensors.keys() {
        assert!(
            bits(&a.tensors[f]) == bits(&b.tensors[f]),
            "{f}: the labels changed training"
        );
    }
    // And the family refuses to be made conditional.
    let cfg = tiny(1, &["model.family=infogan", "model.classes=10"]);
    let e = crate::family::check(&cfg).unwrap_err().to_string();
    assert!(e.contains("without labels"), "{e}");
}

#[test]
fn truncation_bounds_the_noise_and_leaves_codes_and_classes_alone() {
    use crate::family::Draw;
    // InfoGAN: noise, one-hot code, continuous codes.
    let cfg = tiny(1, &["model.family=infogan", "model.z_dim=16"]);
    let f = family::build(&cfg, &Device::Cpu).unwrap();
    let codes: Vec<u32> = (0..64).map(|i| i % 10).collect();
    let z = |psi| {
        let d = Draw {
            codes: Some(&codes),
            truncation: psi,
            ..Default::default()
        };
        f.latent(64, &d, &mut Rng::new(3, 0))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    };
    let (plain, cut) = (z(None), z(Some(0.5)));
    for (p, c) in plain.iter().zip(&cut) {
        assert!(c[..16].iter().all(|v| v.abs() <= 0.5));
        assert_eq!(p[16..26], c[16..26], "the one-hot code is untouched");
    }
    let cont: Vec<f32> = cut.iter().flat_map(|r| r[26..28].to_vec()).collect();
    assert!(
        cont.iter().any(|v| v.abs() > 0.5),
        "continuous codes are not truncated"
    );
    // A conditional GAN: the one-hot class is untouched.
    let cfg = tiny(1, &["model.classes=10"]);
    let f = family::build(&cfg, &Device::Cpu).unwrap();
    let classes: Vec<u32> = (0..8).collect();
    let d = Draw {
        classes: Some(&classes),
        truncation: Some(1.0),
        ..Default::default()
    };
    let z = f
        .latent(8, &d, &mut Rng::new(3, 0))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (i, row) in z.iter().enumerate() {
        assert!(row[..100].iter().all(|v| v.abs() <= 1.0));
        assert_eq!(row[100 + i], 1.0);
        assert_eq!(row[100..].iter().sum::<f32>(), 1.0);
    }
}

const ENCODER_FAMILIES: [&str; 3] = ["bigan", "bigbigan", "vaegan"];

fn family_sets(family: &str) -> Vec<String> {
    let mut s = vec![
        format!("model.family={family}"),
        "model.z_dim=16".to_string(),
        "bigan.latent_width=16".into(),
        "bigan.joint_width=16".into(),
    ];
    if family == "bigbigan" {
        s.push("train.loss=hinge".into());
    }
    s
}

#[test]
fn encoder_families_resume_bit_identically() {
    for family in ENCODER_FAMILIES {
        let sets = family_sets(family);
        let mut extra: Vec<&str> = sets.iter().map(String::as_str).collect();
        extra.extend(["ema.decay=0.9", "ema.encoder=true"]);
        let files = resume_is_bit_identical(&extra);
        for f in ["g", "e", "d", "g_ema", "e_ema"] {
            assert!(
                files.contains_key(&format!("{f}.safetensors")),
                "{family}: {f}"
            );
        }
    }
}

/// Every network of each encoder family, and every head of its discriminator, gets a
/// gradient from the family's steps: one D step and one generator-side step, with the
/// gradients of each backward pass kept.
#[test]
fn every_network_and_head_of_the_encoder_families_receives_a_gradient() {
    for family in ENCODER_FAMILIES {
        let sets = family_sets(family);
        let extra: Vec<&str> = sets.iter().map(String::as_str).collect();
        let cfg = tiny(2, &extra);
        let mut f = family::build(&cfg, &Device::Cpu).unwrap();
        // Snapshot, one iteration, compare: a variable that changed got a gradient.
        let before: HashMap<String, Vec<u32>> = f
            .model()
            .networks
            .iter()
            .flat_map(|n| {
                n.params
                    .trainable()
                    .into_iter()
                    .map(move |(k, v)| (format!("{}/{k}", n.name), v))
            })
            .map(|(k, v)| {
                let bits = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (k, bits.iter().map(|x| x.to_bits()).collect())
            })
            .collect();
        let data = crate::data::load(&cfg.data).unwrap();
        let mut b = Batcher::new(Arc::new(data), 16, 0, 0).unwrap();
        let mut next = || real_batch(&cfg, b.next_batch().unwrap(), &Device::Cpu);
        iteration_steps(f.as_mut(), &mut next, &mut Rng::new(0, 3), &cfg.train, 1).unwrap();
        let mut unchanged = vec![];
        for n in &f.model().networks {
            for (k, v) in n.params.trainable() {
                let bits: Vec<u32> = v
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                if before[&format!("{}/{k}", n.name)] == bits {
                    unchanged.push(format!("{}/{k}", n.name));
                }
            }
        }
        // Every weight must move. A bias may not: at initialisation every score is near 0,
        // inside both hinge margins, where a score's bias gradient is (fakes − reals) / n
        // = 0 exactly.
        unchanged.retain(|k| !k.ends_with(".bias"));
        assert!(
            unchanged.is_empty(),
            "{family}: no gradient reached {unchanged:?}"
        );
        if family == "bigbigan" {
            let d: Vec<String> = f
                .model()
                .network("d")
                .params
                .vars()
                .keys()
                .cloned()
                .collect();
            for head in ["s_x.weight", "s_z.weight", "s_xz.weight"] {
                assert!(d.iter().any(|k| k == head), "{head}");
            }
        }
    }
}

#[test]
fn every_family_trains_30_iterations_at_28_and_64_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    for family in ["gan", "infogan", "bigan", "bigbigan", "vaegan"] {
        for size in [28, 64] {
            let mut sets = family_sets(family);
            if size == 64 {
                sets.extend([
                    "model.arch=dcgan64".to_string(),
                    "data.image_size=64".into(),
                    "model.g_width=4".into(),
                    "model.d_width=4".into(),
                    "train.batch_size=8".into(),
                ]);
            }
            let extra: Vec<&str> = sets.iter().map(String::as_str).collect();
            let dir = RunDir::new(tmp.path().join(format!("{family}{size}")));
            let mut s = Session::start(tiny(30, &extra), dir.clone(), &Device::Cpu).unwrap();
            s.run(&mut Silent, &Default::default())
                .unwrap_or_else(|e| panic!("{family} at {size}: {e}"));
            let (_, rows) = metrics::read(&dir.metrics()).unwrap();
            assert_eq!(rows.len(), 30, "{family} {size}");
        }
    }
}

#[test]
fn progressive_growing_resumes_bit_identically_in_the_middle_of_a_fade() {
    // 16 images per iteration: the base phase ends after iteration 2, the fade to 14×14
    // runs over iterations 3–6; the interrupted run stops at 4, mid-fade.
    resume_is_bit_identical(&[
        "model.arch=progressive",
        "progressive.fade_images=64",
        "progressive.stable_images=32",
    ]);
}

#[test]
fn generator_updates_follow_epochs_with_g_every_unit_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    // 256 images, batch 16: 16 iterations an epoch; G only in epochs 0 and 2.
    let idx = labelled_idx(&tmp.path().join("data"), 256, false);
    let path = format!("data.path={}", idx.display());
    let cfg = tiny(
        40,
        &[
            "data.dataset=idx",
            &path,
            "train.g_every=2",
            "train.g_every_unit=epochs",
            "checkpoint.every=40",
        ],
    );
    Session::start(cfg, dir.clone(), &Device::Cpu)
        .unwrap()
        .run(&mut Silent, &Default::default())
        .unwrap();
    let (h, rows) = metrics::read(&dir.metrics()).unwrap();
    let (ep, g) = (
        h.iter().position(|c| c == "epoch").unwrap(),
        h.iter().position(|c| c == "g_loss").unwrap(),
    );
    for r in &rows {
        let trained = r[g].is_finite();
        assert_eq!(
            trained,
            r[ep] as u64 % 2 == 0,
            "epoch {}: g_loss {}",
            r[ep],
            r[g]
        );
    }
}
