//! Our ops against candle's reference ops (f32, 1e-4 relative) and against central finite
//! differences (f64), first and second order.

use candle_core::{DType, Device, Tensor, Var};

use super::*;
use crate::kernels::testing::{max_rel, rand};

/// (n, c_in, c_out, size, k, stride, pad, output_padding), odd sizes included.
const SHAPES: [(usize, usize, usize, usize, usize, usize, usize, usize); 6] = [
    (3, 3, 5, 9, 3, 2, 1, 1),
    (2, 4, 6, 7, 4, 2, 1, 0),
    (5, 2, 3, 8, 5, 2, 2, 1),
    (1, 1, 2, 11, 5, 1, 2, 0),
    (4, 3, 2, 6, 1, 1, 0, 0),
    (2, 2, 2, 13, 3, 3, 0, 2),
];

#[test]
fn forward_and_gradients_match_candles_ops_in_f32() {
    for (i, &(n, ci, co, size, k, s, p, op)) in SHAPES.iter().enumerate() {
        let seed = i as u64 * 10;
        let x = Var::from_tensor(&rand(&[n, ci, size, size], seed, DType::F32)).unwrap();
        let w = Var::from_tensor(&rand(&[co, ci, k, k], seed + 1, DType::F32)).unwrap();
        let ours = conv2d(&x, &w, s, p).unwrap();
        let theirs = x.conv2d(&w, p, s, 1, 1).unwrap();
        assert!(max_rel(&ours, &theirs) < 1e-4, "conv2d {:?}", SHAPES[i]);
        let r = rand(ours.dims(), seed + 2, DType::F32);
        let ga = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (theirs * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &w] {
            assert!(
                max_rel(ga.get(v).unwrap(), gb.get(v).unwrap()) < 1e-4,
                "conv2d grad {:?}",
                SHAPES[i]
            );
        }

        // Transposed: input (n, co, size, size), kernel (co, ci, k, k).
        let xt = Var::from_tensor(&rand(&[n, co, size, size], seed + 3, DType::F32)).unwrap();
        let ours = conv_transpose2d(&xt, &w, s, p, op.min(s.saturating_sub(1))).unwrap();
        let theirs = xt
            .conv_transpose2d(&w, p, op.min(s.saturating_sub(1)), s, 1)
            .unwrap();
        assert_eq!(ours.dims(), theirs.dims());
        assert!(
            max_rel(&ours, &theirs) < 1e-4,
            "conv_transpose2d {:?}",
            SHAPES[i]
        );
        let r = rand(ours.dims(), seed + 4, DType::F32);
        let ga = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (theirs * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&xt, &w] {
            assert!(
                max_rel(ga.get(v).unwrap(), gb.get(v).unwrap()) < 1e-4,
                "conv_transpose2d grad {:?}",
                SHAPES[i]
            );
        }
    }
}

/// Central differences of `f` at `v` along every 5th coordinate against `grad`.
fn fd_check(v: &Var, grad: &Tensor, f: &dyn Fn(&Tensor) -> f64) -> f64 {
    let base = v.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let g = grad.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let h = 1e-5;
    let (mut worst, mut scale) = (0f64, 0f64);
    for i in (0..base.len()).step_by(5) {
        let mut p = base.clone();
        p[i] += h;
        let fp = f(&Tensor::from_vec(p.clone(), v.dims(), &Device::Cpu).unwrap());
        p[i] -= 2.0 * h;
        let fm = f(&Tensor::from_vec(p, v.dims(), &Device::Cpu).unwrap());
        let num = (fp - fm) / (2.0 * h);
        worst = worst.max((num - g[i]).abs());
        scale = scale.max(num.abs());
    }
    worst / scale
}

fn sum(t: Tensor) -> f64 {
    t.sum_all().unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn second_order_gradients_match_finite_differences_in_f64() {
    // pen(w) = Σ (∂/∂x Σ conv(x, w)·r)², the shape of a gradient penalty; its gradient with
    // respect to w needs the backward pass of the backward pass.
    // SAFETY: tests only read this variable; any value keeps results the same.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    let result = std::thread::spawn(|| {
        for &(n, ci, co, size, k, s, p, op) in &SHAPES[..4] {
            let x = Var::from_tensor(&rand(&[n, ci, size, size], 1, DType::F64)).unwrap();
            let w = Var::from_tensor(&rand(&[co, ci, k, k], 2, DType::F64)).unwrap();
            let y = conv2d(&x, &w, s, p).unwrap();
            let r = rand(y.dims(), 3, DType::F64);
            let gx = (&y * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(&x)
                .unwrap()
                .clone();
            let pen = gx.sqr().unwrap().sum_all().unwrap();
            let gw = pen.backward().unwrap().get(&w).unwrap().clone();
            let pen_of = |wv: &Tensor| {
                let xs = Var::from_tensor(x.as_tensor()).unwrap();
                let y = conv2d(&xs, wv, s, p).unwrap();
                let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                sum(g.get(&xs).unwrap().sqr().unwrap())
            };
            let err = fd_check(&w, &gw, &pen_of);
            assert!(
                err < 1e-6,
                "conv2d penalty gradient {:?}: {err}",
                (n, ci, co, size, k, s, p)
            );

            // The same through a transposed convolution (a generator layer), with respect to
            // its input and its kernel.
            let op = op.min(s.saturating_sub(1));
            let xt = Var::from_tensor(&rand(&[n, co, size, size], 4, DType::F64)).unwrap();
            let yt = conv_transpose2d(&xt, &w, s, p, op).unwrap();
            let rt = rand(yt.dims(), 5, DType::F64);
            let first = (&yt * &rt).unwrap().sum_all().unwrap().backward().unwrap();
            let pen = first.get(&w).unwrap().sqr().unwrap().sum_all().unwrap();
            let gx2 = pen.backward().unwrap().get(&xt).unwrap().clone();
            let pen_of_x = |xv: &Tensor| {
                let ws = Var::from_tensor(w.as_tensor()).unwrap();
                let y = conv_transpose2d(xv, &ws, s, p, op).unwrap();
                let g = (y * &rt).unwrap().sum_all().unwrap().backward().unwrap();
                sum(g.get(&ws).unwrap().sqr().unwrap())
            };
            let err = fd_check(&xt, &gx2, &pen_of_x);
            assert!(
                err < 1e-6,
                "filter-gradient second order {:?}: {err}",
                (n, ci, co, size, k, s, p)
            );
        }
    })
    .join();
    result.unwrap();
}

#[test]
fn input_gradient_only_skips_weight_gradients_and_keeps_the_inputs() {
    let x = Var::from_tensor(&rand(&[2, 2, 5, 5], 1, DType::F32)).unwrap();
    let w = Var::from_tensor(&rand(&[3, 2, 3, 3], 2, DType::F32)).unwrap();
    let y = conv2d(&x, &w, 1, 1).unwrap().sum_all().unwrap();
    let only = crate::kernels::input_gradient_only(&x, || y.backward()).unwrap();
    let all = y.backward().unwrap();
    assert!(only.get(&w).is_none() && all.get(&w).is_some());
    assert_eq!(max_rel(only.get(&x).unwrap(), all.get(&x).unwrap()), 0.0);
}

#[test]
fn conv_with_bias_equals_conv_then_bias_with_gradients() {
    for (i, &(n, ci, co, size, k, s, p, _)) in SHAPES.iter().enumerate() {
        let seed = 100 + i as u64 * 10;
        let x = Var::from_tensor(&rand(&[n, ci, size, size], seed, DType::F32)).unwrap();
        let w = Var::from_tensor(&rand(&[co, ci, k, k], seed + 1, DType::F32)).unwrap();
        let b = Var::from_tensor(&rand(&[co], seed + 2, DType::F32)).unwrap();
        let fused = conv2d_bias(&x, &w, &b, s, p).unwrap();
        let parts = super::super::add_channel_bias(&conv2d(&x, &w, s, p).unwrap(), &b).unwrap();
        assert!(max_rel(&fused, &parts) < 1e-6, "{:?}", SHAPES[i]);
        let r = rand(fused.dims(), seed + 3, DType::F32);
        let grads = |y: Tensor| (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (grads(fused), grads(parts));
        for v in [&x, &w, &b] {
            let (a, b) = (ga.get(v).unwrap(), gb.get(v).unwrap());
            assert!(max_rel(a, b) < 1e-5, "grad {:?}", SHAPES[i]);
        }
    }
}

#[test]
fn conv_bias_leaky_equals_its_parts_to_second_order() {
    crate::objectives::penalty::with_second_order(|| {
        // SHAPES, plus 17 images of 8 channels (the pixel-major path).
        let shapes = SHAPES
            .iter()
            .map(|&(n, ci, co, size, k, s, p, _)| (n, ci, co, size, k, s, p))
            .chain([(17, 8, 3, 7, 3, 1, 1)]);
        for (i, (n, ci, co, size, k, s, p)) in shapes.enumerate() {
            let seed = 200 + i as u64 * 10;
            let x = Var::from_tensor(&rand(&[n, ci, size, size], seed, DType::F64)).unwrap();
            let w = Var::from_tensor(&rand(&[co, ci, k, k], seed + 1, DType::F64)).unwrap();
            let b = Var::from_tensor(&rand(&[co], seed + 2, DType::F64)).unwrap();
            let fused = |x: &Tensor| conv2d_bias_leaky(x, &w, &b, s, p, 0.2).unwrap();
            let parts = |x: &Tensor| {
                let y = conv2d_bias(x, &w, &b, s, p).unwrap();
                crate::kernels::leaky_relu(&y, 0.2).unwrap()
            };
            let r = rand(fused(&x).dims(), seed + 3, DType::F64);
            // y, ∂⟨r, y⟩/∂(x, w, b), and ∂‖∂⟨r, y⟩/∂x‖²/∂w (WGAN-GP's second order; x and b
            // enter ∂⟨r, y⟩/∂x only through the activation's piecewise-constant slope).
            let orders = |f: &dyn Fn(&Tensor) -> Tensor| {
                let y = f(&x);
                let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let gx = g.get(&x).unwrap().clone();
                let gg = gx.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let mut out = vec![y, gx];
                for v in [&w, &b] {
                    out.push(g.get(v).unwrap().clone());
                }
                out.push(gg.get(&w).unwrap().clone());
                out
            };
            for (j, (a, e)) in orders(&fused).iter().zip(&orders(&parts)).enumerate() {
                let err = max_rel(a, e);
                assert!(err < 1e-12, "shape #{i}, quantity #{j}: {err:e}");
            }
        }
    });
}
