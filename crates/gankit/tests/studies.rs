//! What every shipped study's members really train with: the settings each member's name
//! and the reports promise, checked on the resolved config of every run at both scales. A
//! member missing from the table below fails, and so does a wrong value (a member named
//! "pretrained-linear-0.5" once ran without α).

use std::path::Path;

use gankit::config::{Config, Critic, LossKind, Norm, RampShape};
use gankit::study::spec::{Scale, plan};

/// One member's promised settings.
struct Expect {
    study: &'static str,
    member: &'static str,
    loss: LossKind,
    /// α's shape and maximum (on whichever loss carries it); None: α off.
    alpha: Option<(RampShape, f64)>,
    pretrained: bool,
    label_smoothing: bool,
    d_dropout: f32,
    /// G every this many (iterations or epochs).
    g_every: u64,
    normalized_init: bool,
    diffaugment: bool,
    critic: Critic,
    d_norm: Norm,
    /// Image channels at the full and at the reduced scale.
    channels: (usize, usize),
}

const fn member(study: &'static str, member: &'static str, loss: LossKind) -> Expect {
    Expect {
        study,
        member,
        loss,
        alpha: None,
        pretrained: false,
        label_smoothing: false,
        d_dropout: 0.0,
        g_every: 1,
        normalized_init: false,
        diffaugment: false,
        critic: Critic::Default,
        d_norm: Norm::Auto,
        channels: (1, 1),
    }
}

fn table() -> Vec<Expect> {
    use LossKind::*;
    let rgb = |e: Expect| Expect {
        channels: (3, 3),
        ..e
    };
    // Report 001's members: CelebA at full scale, Fashion-MNIST reduced.
    let celeba_then_fashion = |e: Expect| Expect {
        channels: (3, 1),
        ..e
    };
    let alpha = |e: Expect, shape, max| Expect {
        alpha: Some((shape, max)),
        ..e
    };
    let pre = |e: Expect| Expect {
        pretrained: true,
        ..e
    };
    let s0 = "report000";
    let s1 = "report001";
    let s4 = "report004";
    vec![
        rgb(member(s0, "dcgan-celeba", NonSaturating)),
        rgb(member(s0, "wgan-celeba", Wgan)),
        rgb(Expect {
            d_norm: Norm::Layer,
            ..member(s0, "wgan-gp-celeba", WganGp)
        }),
        member(s0, "dcgan-cufs", NonSaturating),
        member(s0, "wgan-cufs", Wgan),
        Expect {
            d_norm: Norm::Layer,
            ..member(s0, "wgan-gp-cufs", WganGp)
        },
        celeba_then_fashion(member(s1, "lsgan", Lsgan)),
        alpha(
            celeba_then_fashion(member(s1, "linear-0.3", Lsgan)),
            RampShape::Linear,
            0.3,
        ),
        alpha(
            celeba_then_fashion(member(s1, "linear-0.5", Lsgan)),
            RampShape::Linear,
            0.5,
        ),
        alpha(
            celeba_then_fashion(member(s1, "linear-0.9", Lsgan)),
            RampShape::Linear,
            0.9,
        ),
        alpha(
            celeba_then_fashion(member(s1, "step-0.5", Lsgan)),
            RampShape::Step,
            0.5,
        ),
        alpha(
            celeba_then_fashion(member(s1, "smooth-step-0.5", Lsgan)),
            RampShape::SmoothStep,
            0.5,
        ),
        Expect {
            label_smoothing: true,
            ..celeba_then_fashion(member(s1, "label-smoothing", Lsgan))
        },
        pre(celeba_then_fashion(member(s1, "pretrained", Lsgan))),
        alpha(
            pre(celeba_then_fashion(member(
                s1,
                "pretrained-linear-0.5",
                Lsgan,
            ))),
            RampShape::Linear,
            0.5,
        ),
        member(s4, "vanilla", NonSaturating),
        Expect {
            d_dropout: 0.3,
            ..member(s4, "dropout", NonSaturating)
        },
        Expect {
            g_every: 2,
            ..member(s4, "g-every-2", NonSaturating)
        },
        Expect {
            d_norm: Norm::Batch,
            ..member(s4, "batch-norm", NonSaturating)
        },
        Expect {
            d_dropout: 0.3,
            g_every: 2,
            ..member(s4, "dropout-g-every-2", NonSaturating)
        },
        Expect {
            d_dropout: 0.3,
            g_every: 2,
            diffaugment: true,
            ..member(s4, "diffaugment", NonSaturating)
        },
        member(s4, "wgan-clip", Wgan),
        member(s4, "wgan-unconstrained", Wgan),
        member(s4, "wgan-gp", WganGp),
        Expect {
            normalized_init: true,
            ..member(s4, "wgan-gp-normalized", WganGp)
        },
        Expect {
            normalized_init: true,
            critic: Critic::Conv4,
            ..member(s4, "conv-critic", WganGp)
        },
        Expect {
            normalized_init: true,
            critic: Critic::Conv4,
            diffaugment: true,
            ..member(s4, "conv-critic-diffaugment", WganGp)
        },
    ]
}

/// The settings `cfg` trains with, in the table's terms.
fn check(e: &Expect, cfg: &Config, scale: Scale) {
    let at = format!("{}/{} ({})", e.study, e.member, scale.name());
    assert_eq!(cfg.train.loss, e.loss, "{at}: loss");
    let a = match cfg.train.loss {
        LossKind::Wgan => &cfg.wgan.alpha,
        _ => &cfg.lsgan.alpha,
    };
    let alpha_on = cfg.train.loss == LossKind::Lsgan || cfg.train.loss == LossKind::Wgan;
    let got = (alpha_on && a.max > 0.0).then_some((a.shape, a.max));
    assert_eq!(got, e.alpha, "{at}: α (shape, max)");
    if got.is_some() {
        assert!(
            a.end > a.start && a.end <= cfg.train.steps,
            "{at}: α ramps within the run"
        );
    }
    assert_eq!(cfg.pretrain.enabled(), e.pretrained, "{at}: pretraining");
    let smoothing = cfg.train.label_smoothing != gankit::config::LabelSmoothing::None;
    assert_eq!(smoothing, e.label_smoothing, "{at}: label smoothing");
    assert_eq!(cfg.model.d_dropout, e.d_dropout, "{at}: D's dropout");
    assert_eq!(cfg.train.g_every, e.g_every, "{at}: G every");
    assert_eq!(
        cfg.model.normalized_init == ["d"],
        e.normalized_init,
        "{at}: normalised initialisation"
    );
    assert_eq!(
        !cfg.augment.policy.is_empty(),
        e.diffaugment,
        "{at}: DiffAugment"
    );
    assert_eq!(cfg.model.critic, e.critic, "{at}: critic");
    assert_eq!(cfg.model.d_norm, e.d_norm, "{at}: D's normalisation");
    let channels = match scale {
        Scale::Full => e.channels.0,
        Scale::Reduced => e.channels.1,
    };
    assert_eq!(cfg.data.channels, channels, "{at}: channels");
}

#[test]
fn every_study_member_trains_with_what_its_name_and_report_promise() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../studies");
    let expected = table();
    let mut seen = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    for path in files {
        let study = path.file_stem().unwrap().to_string_lossy().into_owned();
        for scale in [Scale::Full, Scale::Reduced] {
            let p = plan(&path, scale).unwrap_or_else(|e| panic!("{e}"));
            for run in &p.runs {
                let e = expected
                    .iter()
                    .find(|e| e.study == study && e.member == run.member)
                    .unwrap_or_else(|| {
                        panic!("{study}/{}: not in this test's table: add it", run.member)
                    });
                let cfg = Config::load(&run.config, &run.set).unwrap();
                check(e, &cfg, scale);
                seen.push((e.study, e.member));
            }
        }
    }
    for e in &expected {
        assert!(
            seen.contains(&(e.study, e.member)),
            "{}/{}: in the table but in no study",
            e.study,
            e.member
        );
    }
}
