//! The gradient penalty of every critic gankit ships, checked against central finite
//! differences in f64, and the finite-difference penalty against the exact one.

use candle_core::{DType, Device, Tensor, Var};

use super::*;
use crate::config::Config;
use crate::models::{DOutput, build_discriminator};
use crate::nn::ParamStore;

fn rand(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = Rng::new(seed, 7).normal_vec(n, 0.0, 1.0);
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

fn value(p: &Penalty) -> f64 {
    p.value(1.0).unwrap().to_scalar::<f64>().unwrap()
}

/// (name, --set overrides) of every critic: architectures × normalisations a penalty allows.
const CRITICS: [(&str, &[&str]); 11] = [
    (
        "allconv (16 px), no norm, an extra layer",
        &[
            "model.arch=allconv",
            "data.image_size=16",
            "model.d_norm=none",
            "model.d_width=2",
            "model.extra_layers=1",
        ],
    ),
    (
        "resnet (16 px)",
        &["model.arch=resnet", "data.image_size=16", "model.d_width=2"],
    ),
    (
        "dcgan28 + self-attention at 7 (paper)",
        &[
            "model.d_norm=none",
            "model.d_width=8",
            "model.attention=[7]",
        ],
    ),
    (
        "dcgan64 (32 px) + layer norm + self-attention at 16 (official)",
        &[
            "model.arch=dcgan64",
            "data.image_size=32",
            "model.d_norm=layer",
            "model.d_width=2",
            "model.attention=[16]",
            "model.attention_variant=official",
        ],
    ),
    (
        "dcgan28 + layer norm",
        &["model.d_norm=layer", "model.d_width=3"],
    ),
    (
        "dcgan28, no norm",
        &["model.d_norm=none", "model.d_width=3"],
    ),
    (
        "dcgan64 (32 px) + layer norm",
        &[
            "model.arch=dcgan64",
            "data.image_size=32",
            "model.d_norm=layer",
            "model.d_width=2",
        ],
    ),
    (
        "report 004 conv critic",
        &["model.critic=conv4", "model.d_norm=none"],
    ),
    (
        "mlp",
        &["model.arch=mlp", "model.mlp_hidden=4", "data.image_size=8"],
    ),
    (
        "dcgan28, spectral norm",
        &[
            "model.d_norm=none",
            "model.d_width=3",
            "model.spectral_norm=true",
        ],
    ),
    (
        "mlp, spectral norm",
        &[
            "model.arch=mlp",
            "model.mlp_hidden=4",
            "data.image_size=8",
            "model.spectral_norm=true",
        ],
    ),
];

fn critic(sets: &[&str]) -> (Box<dyn Discriminator>, ParamStore, usize) {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg = Config::from_toml_str("[train]\nloss = \"wgan-gp\"", "t", &sets).unwrap();
    let store = ParamStore::new(Rng::new(1, 2), &Device::Cpu);
    let d = build_discriminator(&cfg, store.var_builder_with(DType::F64)).unwrap();
    // Move the weights off DCGAN's tiny N(0, 0.02) scale so the penalty is not ≈ 1 everywhere.
    for (name, v) in store.trainable() {
        if name.ends_with("gamma") {
            // Attention starts switched off (γ = 0); switch it on, so its weights count.
            v.set(&(v.as_tensor().ones_like().unwrap() * 0.5).unwrap())
                .unwrap();
        } else {
            v.set(&(v.as_tensor() * 25.0).unwrap()).unwrap();
        }
    }
    (d, store, cfg.data.image_size)
}

#[test]
fn exact_penalty_parameter_gradients_match_finite_differences_for_every_critic() {
    with_second_order(|| {
        for (name, sets) in CRITICS {
            let (d, store, size) = critic(sets);
            let real = rand(&[3, 1, size, size], 10);
            let fake = rand(&[3, 1, size, size], 11);
            let eps = Tensor::new(&[0.2f64, 0.5, 0.9], &Device::Cpu)
                .unwrap()
                .reshape((3, 1, 1, 1))
                .unwrap();
            let pen = || exact_with(d.as_ref(), &real, &fake, None, &eps, &mut Mode::Eval).unwrap();
            let grads = pen().value(1.0).unwrap().backward().unwrap();
            let h = 1e-6;
            let (mut worst, mut scale) = (0f64, 0f64);
            for (pname, var) in store.trainable() {
                // The last layer's bias does not change ∇x D: no gradient means zero.
                let g = match grads.get(&var) {
                    Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                    None => vec![0.0; var.elem_count()],
                };
                let _ = &pname;
                let base = var.flatten_all().unwrap().to_vec1::<f64>().unwrap();
                for i in (0..base.len()).step_by(base.len().div_ceil(6)) {
                    let at = |delta: f64| {
                        let mut p = base.clone();
                        p[i] += delta;
                        var.set(&Tensor::from_vec(p, var.dims(), &Device::Cpu).unwrap())
                            .unwrap();
                        value(&pen())
                    };
                    let num = (at(h) - at(-h)) / (2.0 * h);
                    var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap())
                        .unwrap();
                    worst = worst.max((num - g[i]).abs());
                    scale = scale.max(num.abs());
                }
            }
            let rel = worst / scale;
            assert!(
                scale > 0.0 && rel < 1e-6,
                "{name}: relative error {rel:e} (scale {scale:e})"
            );
        }
    });
}

/// D(x) = Σ w·x: a linear critic whose gradient is w everywhere.
struct Linear(Tensor);
impl Discriminator for Linear {
    fn forward(
        &self,
        x: &Tensor,
        _: Option<&Tensor>,
        _: &mut Mode,
    ) -> candle_core::Result<DOutput> {
        let f = x.flatten_from(1)?;
        Ok(DOutput {
            logits: f.broadcast_mul(&self.0)?.sum(1)?,
            features: f,
        })
    }
}

#[test]
fn finite_difference_penalty_is_exact_when_the_gradient_lies_along_the_segment() {
    with_second_order(|| {
        let fake = rand(&[4, 1, 3, 3], 2);
        // w parallel to every sample's real − fake: take all four differences equal.
        let diff = rand(&[1, 1, 3, 3], 3);
        let real = fake.broadcast_add(&diff).unwrap();
        let w = Var::from_tensor(&(diff.flatten_all().unwrap() * 0.7).unwrap()).unwrap();
        let d = Linear(w.as_tensor().clone());
        let e1 = Tensor::new(&[0.1f64, 0.4, 0.6, 0.8], &Device::Cpu)
            .unwrap()
            .reshape((4, 1, 1, 1))
            .unwrap();
        let e2 = Tensor::new(&[0.3f64, 0.9, 0.2, 0.75], &Device::Cpu)
            .unwrap()
            .reshape((4, 1, 1, 1))
            .unwrap();
        let exact = exact_with(&d, &real, &fake, None, &e1, &mut Mode::Eval).unwrap();
        let fd = finite_difference_with(&d, &real, &fake, None, &e1, &e2, &mut Mode::Eval).unwrap();
        let norm_w = w
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            (exact.mean_norm - norm_w).abs() < 1e-9,
            "{} vs {norm_w}",
            exact.mean_norm
        );
        assert!(
            (value(&fd) - value(&exact)).abs() < 1e-9,
            "{} vs {}",
            value(&fd),
            value(&exact)
        );
    });
}

#[test]
fn finite_difference_penalty_error_against_the_exact_one_is_reported() {
    with_second_order(|| {
        let (d, _, size) = critic(CRITICS[0].1);
        let mut rng = Rng::new(3, 3);
        let real = rand(&[16, 1, size, size], 20);
        let fake = rand(&[16, 1, size, size], 21);
        let eps1 = epsilons(&mut rng, &real).unwrap();
        let eps2 = epsilons(&mut rng, &real).unwrap();
        let exact = exact_with(d.as_ref(), &real, &fake, None, &eps1, &mut Mode::Eval).unwrap();
        let fd = finite_difference_with(
            d.as_ref(),
            &real,
            &fake,
            None,
            &eps1,
            &eps2,
            &mut Mode::Eval,
        )
        .unwrap();
        let (e, f) = (value(&exact), value(&fd));
        eprintln!(
            "dcgan28 + layer norm critic: exact penalty {e:.6} (mean ‖∇D‖ {:.4}), finite difference {f:.6} (mean slope {:.4}), relative error {:.3}",
            exact.mean_norm,
            fd.mean_norm,
            (f - e).abs() / e.abs()
        );
        assert!(e.is_finite() && f.is_finite());
        // A slope along one direction never exceeds the gradient's norm (by much, for a
        // piecewise-smooth critic); the approximation underestimates.
        assert!(fd.mean_norm <= exact.mean_norm * 1.5);
    });
}

#[test]
fn critics_own_input_gradients_match_the_backward_pass_to_second_order() {
    with_second_order(|| {
        let mut checked = 0;
        for (name, sets) in CRITICS {
            let (d, store, size) = critic(sets);
            let x = Var::from_tensor(&rand(&[3, 1, size, size], 12)).unwrap();
            let Some(ours) = d.input_gradient(&x, None, &mut Mode::Eval).unwrap() else {
                continue;
            };
            let theirs = input_gradient_by_backward(d.as_ref(), &x, None, &mut Mode::Eval).unwrap();
            let close = |a: &Tensor, b: &Tensor, what: &str| {
                let err = crate::kernels::testing::max_rel(a, b);
                assert!(err < 1e-10, "{name}, {what}: {err:e}");
            };
            close(&ours, &theirs, "∇x D");
            // The penalty's parameter gradients differentiate through each version.
            let grads = |g: &Tensor| norms(g).unwrap().sum_all().unwrap().backward().unwrap();
            let (ga, gb) = (grads(&ours), grads(&theirs));
            for (pname, var) in store.trainable() {
                match (ga.get(&var), gb.get(&var)) {
                    (Some(a), Some(b)) => close(a, b, &pname),
                    (None, None) => {}
                    (a, b) => panic!(
                        "{name}, {pname}: gradient {:?} vs {:?}",
                        a.is_some(),
                        b.is_some()
                    ),
                }
            }
            checked += 1;
        }
        // dcgan28 with layer norm and without, dcgan64 with layer norm, report 004's conv critic.
        assert_eq!(
            checked, 4,
            "the conv critics without spectral norm build their own"
        );
    });
}
