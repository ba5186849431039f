//! The encoder families' losses: against PyTorch (scripts/reference_family_losses.py wrote
//! fixtures/losses.json, from the papers' formulas) and against hand-computed values.

use candle_core::{Device, Tensor};

use super::bigan::{bigan_eg_loss, bigbigan_d_loss, bigbigan_eg_loss};
use super::vaegan::{feature_nll, kl_prior};
use crate::config::LossKind;
use crate::models::joint::JointScores;
use crate::objectives::adversarial;

/// Value k of a tensor: a · sin(b·k + c) (the script's `pattern`).
fn pattern(shape: &[usize], a: f64, b: f64, c: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|k| a * (b * k as f64 + c).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn reference(key: &str) -> f64 {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/family/fixtures/losses.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v[key].as_f64().unwrap_or_else(|| panic!("no {key}"))
}

fn value(t: Tensor) -> f64 {
    t.to_scalar::<f64>().unwrap()
}

fn close(name: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12,
        "{name}: {got} vs PyTorch {want}"
    );
}

#[test]
fn bigbigan_losses_match_pytorch() {
    let n = 6;
    let scores = |a: f64, b0: f64, db: f64, c0: f64, dc: f64| {
        let s = |i: usize| pattern(&[n], a, b0 + i as f64 * db, c0 + dc * i as f64);
        JointScores {
            s_x: Some(s(0)),
            s_z: Some(s(1)),
            s_xz: s(2),
        }
    };
    let real = scores(1.5, 0.7, 0.11, 0.0, 0.2);
    let fake = scores(1.5, 0.5, 0.13, 1.0, 0.3);
    close(
        "D",
        value(bigbigan_d_loss(&real, &fake).unwrap()),
        reference("bigbigan_d"),
    );
    close(
        "E, G",
        value(bigbigan_eg_loss(&real, &fake).unwrap()),
        reference("bigbigan_eg"),
    );
}

#[test]
fn vaegan_losses_match_pytorch() {
    let (n, z) = (6, 5);
    let mu = pattern(&[n, z], 0.8, 0.37, 0.1);
    let log_var = pattern(&[n, z], 0.6, 0.29, 0.4);
    close(
        "KL",
        value(kl_prior(&mu, &log_var).unwrap()),
        reference("kl"),
    );
    let f_recon = pattern(&[n, 3, 2, 2], 1.0, 0.41, 0.3);
    let f_real = pattern(&[n, 3, 2, 2], 1.0, 0.43, 0.9);
    let nll = feature_nll(&f_recon, &f_real).unwrap();
    close("L_llike", value(nll.clone()), reference("nll"));
    let s_real = pattern(&[n], 2.0, 0.31, 0.2);
    let s_fakes = pattern(&[2 * n], 2.0, 0.23, 0.7);
    let d = adversarial::d_loss(LossKind::NonSaturating, &s_real, &s_fakes).unwrap();
    close("D", value(d), reference("vaegan_d"));
    let g = ((nll * 0.01).unwrap()
        + adversarial::g_loss(LossKind::NonSaturating, &s_fakes).unwrap())
    .unwrap();
    close("decoder", value(g), reference("vaegan_g"));
}

/// By hand: BiGAN's E / G loss with the non-saturating form is softplus(−s_fake) for G's
/// pairs plus softplus(s_real) for E's; KL of N(0, 1) is 0 and of N(1, e) is ½(e − 1 − 1 + 1).
#[test]
fn hand_computed_values() {
    let d = Device::Cpu;
    let sp = |x: f64| (1.0 + x.exp()).ln();
    let real = Tensor::new(&[0.5f64, -1.0], &d).unwrap();
    let fake = Tensor::new(&[2.0f64, 0.0], &d).unwrap();
    let got = value(bigan_eg_loss(LossKind::NonSaturating, &real, &fake).unwrap());
    let want = (sp(-2.0) + sp(0.0)) / 2.0 + (sp(0.5) + sp(-1.0)) / 2.0;
    close("BiGAN E+G", got, want);
    let hinge = value(bigan_eg_loss(LossKind::Hinge, &real, &fake).unwrap());
    close("BiGAN hinge E+G", hinge, -1.0 + (-0.25));
    let zero = Tensor::zeros((3, 4), candle_core::DType::F64, &d).unwrap();
    close("KL(N(0,1))", value(kl_prior(&zero, &zero).unwrap()), 0.0);
    let mu = Tensor::ones((1, 1), candle_core::DType::F64, &d).unwrap();
    let lv = Tensor::ones((1, 1), candle_core::DType::F64, &d).unwrap();
    // −½ (1 + 1 − 1 − e) = (e − 1) / 2.
    close(
        "KL(N(1, e))",
        value(kl_prior(&mu, &lv).unwrap()),
        (std::f64::consts::E - 1.0) / 2.0,
    );
    // Without unary scores BigBiGAN's D loss is the joint hinge alone.
    let joint = |s: &Tensor| JointScores {
        s_x: None,
        s_z: None,
        s_xz: s.clone(),
    };
    let dl = value(bigbigan_d_loss(&joint(&real), &joint(&fake)).unwrap());
    close("joint hinge", dl, (0.5 + 2.0) / 2.0 + (3.0 + 1.0) / 2.0);
}
