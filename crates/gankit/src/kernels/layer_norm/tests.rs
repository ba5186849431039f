use super::*;
use crate::kernels::testing::{max_rel, rand};
use candle_core::{DType, Var};

type F = dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>;

/// For y = f(x, γ, β) and out = Σ r·y: y, ∂out/∂(x, γ, β), and the gradient in (x, γ, β) of
/// ‖∂out/∂x‖² (second order, as the gradient penalty takes it). Missing gradients are zeros.
fn orders(vars: &[Var; 3], r: &Tensor, f: &F) -> Vec<Tensor> {
    let [x, gamma, beta] = vars;
    let y = f(x.as_tensor(), gamma.as_tensor(), beta.as_tensor()).unwrap();
    let first = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    let get = |g: &candle_core::backprop::GradStore, v: &Var| {
        g.get(v)
            .cloned()
            .unwrap_or_else(|| v.as_tensor().zeros_like().unwrap())
    };
    let gx = get(&first, x);
    let second = gx.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = vec![y];
    out.extend(vars.iter().map(|v| get(&first, v)));
    out.extend(vars.iter().map(|v| get(&second, v)));
    out
}

fn vars(shape: &[usize], seed: u64) -> [Var; 3] {
    let c = shape[1];
    let x = ((rand(shape, seed, DType::F64) * 2.0).unwrap() + 0.5).unwrap();
    let gamma = (rand(&[c], seed + 1, DType::F64) + 1.0).unwrap();
    let beta = (rand(&[c], seed + 2, DType::F64) * 0.3).unwrap();
    [x, gamma, beta].map(|t| Var::from_tensor(&t).unwrap())
}

#[test]
fn fused_op_matches_the_composed_one_to_second_order() {
    crate::objectives::penalty::with_second_order(|| {
        let names = ["y", "dx", "dγ", "dβ", "d²x", "d²γ", "d²β"];
        for (i, (shape, slope)) in [
            (&[4usize, 3, 5, 5][..], 0.2),
            (&[2, 7], 0.2),
            (&[3, 2, 1, 9], 1.0),
            (&[5, 4, 3, 2], 0.0),
        ]
        .into_iter()
        .enumerate()
        {
            let seed = 40 + 5 * i as u64;
            let v = vars(shape, seed);
            let r = rand(shape, seed + 3, DType::F64);
            let ours = orders(&v, &r, &move |x, g, b| layer_norm_act(x, g, b, 1e-5, slope));
            let theirs = orders(&v, &r, &move |x, g, b| composed(x, g, b, 1e-5, slope));
            for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                let err = max_rel(a, b);
                assert!(err < 1e-10, "{shape:?} slope {slope} {}: {err}", names[k]);
            }
        }
    });
}

#[test]
fn f32_matches_f64() {
    let v = vars(&[6, 4, 3, 3], 70);
    let f = |dtype| {
        let [x, g, b] = v.each_ref().map(|t| t.as_tensor().to_dtype(dtype).unwrap());
        layer_norm_act(&x, &g, &b, 1e-5, 0.2).unwrap()
    };
    assert!(max_rel(&f(DType::F32), &f(DType::F64)) < 1e-6);
}

#[test]
fn third_order_is_refused_with_an_error() {
    crate::objectives::penalty::with_second_order(|| {
        let v = vars(&[2, 3, 2, 2], 80);
        let y = layer_norm_act(
            v[0].as_tensor(),
            v[1].as_tensor(),
            v[2].as_tensor(),
            1e-5,
            0.2,
        );
        let first = y.unwrap().sum_all().unwrap().backward().unwrap();
        let dgamma = first.get(&v[1]).unwrap();
        let err = dgamma.sum_all().unwrap().backward().unwrap_err();
        assert!(err.to_string().contains("second order"), "{err}");
    });
}
