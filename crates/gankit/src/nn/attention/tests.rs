//! The self-attention layer against PyTorch (scripts/reference_attention.py wrote
//! fixtures.json), its second-order gradients against central differences, and γ = 0.

use candle_core::{DType, Device, Tensor, Var};

use super::*;
use crate::nn::ParamStore;
use crate::rng::Rng;

const B: usize = 2;
const C: usize = 16;
const S: usize = 4;

/// Value k of a tensor: a · sin(b·k + c) (the script's `pattern`).
fn pattern(shape: &[usize], a: f64, b: f64, c: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|k| a * (b * k as f64 + c).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// The block in f64 with the script's weights and γ = 0.7.
fn block(variant: AttentionVariant) -> (SelfAttention, ParamStore) {
    let store = ParamStore::new(Rng::new(0, 0), &Device::Cpu);
    let layer = self_attention(C, variant, false, store.var_builder_with(DType::F64)).unwrap();
    let cv = if variant == AttentionVariant::Official {
        C / 2
    } else {
        C
    };
    let vars = store.vars();
    let set = |name: &str, t: Tensor| vars[name].set(&t).unwrap();
    set("f.weight", pattern(&[C / 8, C, 1, 1], 0.3, 0.61, 0.2));
    set("g.weight", pattern(&[C / 8, C, 1, 1], 0.3, 0.53, 0.7));
    set("h.weight", pattern(&[cv, C, 1, 1], 0.2, 0.41, 0.4));
    if variant == AttentionVariant::Official {
        set("v.weight", pattern(&[C, cv, 1, 1], 0.2, 0.29, 0.9));
    }
    set("gamma", Tensor::new(&[0.7f64], &Device::Cpu).unwrap());
    (layer, store)
}

fn fixture(variant: &str, key: &str) -> Vec<f64> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/nn/attention/fixtures.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v[variant][key]
        .as_array()
        .unwrap_or_else(|| panic!("no {variant}.{key}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn assert_close(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-9, "{name}[{i}]: {g} vs PyTorch {w}");
    }
}

#[test]
fn values_and_gradients_match_pytorch() {
    for (variant, name) in [
        (AttentionVariant::Paper, "paper"),
        (AttentionVariant::Official, "official"),
    ] {
        let (layer, store) = block(variant);
        let x = Var::from_tensor(&pattern(&[B, C, S, S], 1.0, 0.37, 0.1)).unwrap();
        let r = pattern(&[B, C, S, S], 1.0, 0.23, 0.5);
        let y = layer.forward_t(x.as_tensor(), &Mode::Eval).unwrap();
        assert_close(&format!("{name} y"), &flat(&y), &fixture(name, "y"));
        let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(
            &format!("{name} dx"),
            &flat(grads.get(&x).unwrap()),
            &fixture(name, "dx"),
        );
        let vars = store.vars();
        let mut keys = vec![
            ("gamma", "dgamma"),
            ("f.weight", "df"),
            ("g.weight", "dg"),
            ("h.weight", "dh"),
        ];
        if variant == AttentionVariant::Official {
            keys.push(("v.weight", "dv"));
        }
        for (var, key) in keys {
            let g = grads.get(&vars[var]).unwrap();
            assert_close(&format!("{name} {key}"), &flat(g), &fixture(name, key));
        }
    }
}

#[test]
fn gamma_zero_gives_exactly_the_input() {
    let store = ParamStore::new(Rng::new(1, 0), &Device::Cpu);
    let layer = self_attention(C, AttentionVariant::Official, true, store.var_builder()).unwrap();
    let x = pattern(&[B, C, S, S], 1.0, 0.37, 0.1)
        .to_dtype(DType::F32)
        .unwrap();
    let mut rng = Rng::new(0, 0);
    let y = layer.forward_t(&x, &Mode::Train(&mut rng)).unwrap();
    let (a, b) = (
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
}

#[test]
fn softmax_rows_sum_to_one_and_pooling_keeps_each_window_maximum() {
    let s = pattern(&[2, 3, 5], 4.0, 0.9, 0.0);
    let p = softmax_last(&s).unwrap();
    for row in p
        .sum(2)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
    {
        assert!((row - 1.0).abs() < 1e-15);
    }
    let x = pattern(&[1, 1, 4, 4], 1.0, 1.3, 0.0);
    let m = flat(&max_pool2x(&x).unwrap());
    let v = flat(&x);
    let at = |i: usize, j: usize| v[i * 4 + j];
    for (k, (i, j)) in [(0, 0), (0, 2), (2, 0), (2, 2)].into_iter().enumerate() {
        let want = [at(i, j), at(i, j + 1), at(i + 1, j), at(i + 1, j + 1)]
            .into_iter()
            .fold(f64::MIN, f64::max);
        assert_eq!(m[k], want);
    }
}

/// φ(θ) = ‖∂⟨r, y⟩/∂x‖²: its gradient with respect to the weights and γ goes through the
/// block's backward pass (the second order WGAN-GP needs), checked against central
/// differences of φ.
#[test]
fn second_order_gradients_match_central_differences() {
    crate::objectives::penalty::with_second_order(|| {
        for variant in [AttentionVariant::Paper, AttentionVariant::Official] {
            let (layer, store) = block(variant);
            let x = Var::from_tensor(&pattern(&[B, C, S, S], 1.0, 0.37, 0.1)).unwrap();
            let r = pattern(&[B, C, S, S], 1.0, 0.23, 0.5);
            let phi = || -> Tensor {
                let y = layer.forward_t(x.as_tensor(), &Mode::Eval).unwrap();
                let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                g.get(&x).unwrap().sqr().unwrap().sum_all().unwrap()
            };
            let grads = phi().backward().unwrap();
            let vars = store.vars();
            for (name, idx) in [
                ("gamma", 0),
                ("f.weight", 3),
                ("g.weight", 17),
                ("h.weight", 5),
            ] {
                let var = &vars[name];
                let analytic = flat(grads.get(var).unwrap())[idx];
                let base = flat(var.as_tensor());
                let eval = |d: f64| {
                    let mut v = base.clone();
                    v[idx] += d;
                    var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap())
                        .unwrap();
                    phi().to_scalar::<f64>().unwrap()
                };
                let h = 1e-5;
                let numeric = (eval(h) - eval(-h)) / (2.0 * h);
                eval(0.0);
                assert!(
                    (analytic - numeric).abs() <= 1e-6 * numeric.abs().max(1.0),
                    "{variant:?} {name}[{idx}]: {analytic} vs {numeric}"
                );
            }
        }
    });
}
