use candle_core::{DType, Device, Tensor, Var};

use super::*;

/// (b, c, h, w) with distinct non-zero values 1, 2, 3, … (f64).
fn ramp(b: usize, c: usize, h: usize, w: usize) -> Tensor {
    let n = b * c * h * w;
    Tensor::arange(1f64, n as f64 + 1.0, &Device::Cpu)
        .unwrap()
        .reshape((b, c, h, w))
        .unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn inputs(policy: &str, noise: f64) -> DInputs {
    let sets = vec![
        format!("augment.policy={policy:?}"),
        format!("instance_noise.std={noise}"),
        "instance_noise.anneal_steps=100".to_string(),
    ];
    DInputs::new(&Config::from_toml_str("", "t", &sets).unwrap()).unwrap()
}

#[test]
fn policies_parse_in_order_and_unknown_names_are_refused() {
    use crate::config::{AugmentOp, AugmentPolicy};
    let parse = |t: &str| AugmentPolicy::try_from(t.to_string());
    let p = parse("cutout, color").unwrap();
    assert_eq!(p.ops, [AugmentOp::Cutout, AugmentOp::Color]);
    assert_eq!(String::from(p), "cutout,color");
    assert!(parse("").unwrap().is_empty());
    let e = parse("color,flip").unwrap_err();
    assert!(e.contains("flip") && e.contains("translation"), "{e}");
    assert!(parse("color,color").unwrap_err().contains("twice"));
    let e = Config::from_toml_str("[augment]\npolicy = \"rotate\"", "t", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("rotate"), "{e}");
}

#[test]
fn translation_shifts_each_image_within_range_filling_zeros() {
    let (b, h, w) = (6, 8, 8);
    let x = ramp(b, 2, h, w);
    let y = translation(&x, 0.25, &mut Rng::new(1, 0)).unwrap();
    let (xv, yv) = (values(&x), values(&y));
    let s = 2i64; // ⌊8 · 0.25 + ½⌋
    let mut moved = 0;
    for bi in 0..b {
        let plane = |v: &[f64], c: usize, i: i64, j: i64| -> f64 {
            if (0..h as i64).contains(&i) && (0..w as i64).contains(&j) {
                v[((bi * 2 + c) * h + i as usize) * w + j as usize]
            } else {
                0.0
            }
        };
        let found = (-s..=s)
            .flat_map(|dy| (-s..=s).map(move |dx| (dy, dx)))
            .find(|&(dy, dx)| {
                (0..2).all(|c| {
                    (0..h as i64).all(|i| {
                        (0..w as i64).all(|j| plane(&yv, c, i, j) == plane(&xv, c, i + dy, j + dx))
                    })
                })
            });
        let (dy, dx) = found.unwrap_or_else(|| panic!("image {bi} is not a shift within ±{s}"));
        moved += usize::from(dy != 0 || dx != 0);
    }
    assert!(moved > 0, "some image moved");
}

#[test]
fn cutout_erases_one_square_per_image() {
    let (b, h) = (8, 10);
    let x = ramp(b, 1, h, h);
    let y = cutout(&x, 0.3, &mut Rng::new(2, 0)).unwrap();
    let yv = values(&y);
    for bi in 0..b {
        let zeros: Vec<(usize, usize)> = (0..h * h)
            .filter(|&k| yv[bi * h * h + k] == 0.0)
            .map(|k| (k / h, k % h))
            .collect();
        assert!(!zeros.is_empty(), "image {bi} has a cut");
        let (r0, r1) = (
            zeros.iter().map(|z| z.0).min().unwrap(),
            zeros.iter().map(|z| z.0).max().unwrap(),
        );
        let (c0, c1) = (
            zeros.iter().map(|z| z.1).min().unwrap(),
            zeros.iter().map(|z| z.1).max().unwrap(),
        );
        // A full rectangle, at most 3 × 3 (⌊10 · 0.3 + ½⌋), smaller only at the border.
        assert_eq!(zeros.len(), (r1 - r0 + 1) * (c1 - c0 + 1), "image {bi}");
        assert!(r1 - r0 < 3 && c1 - c0 < 3, "image {bi}");
        if r0 > 0 && r1 < h - 1 {
            assert_eq!(r1 - r0 + 1, 3, "image {bi}: an inner cut is 3 rows");
        }
    }
}

#[test]
fn gradients_pass_through_translation_and_cutout() {
    // Both are linear maps T: the gradient of Σ T(x)·r is Tᵀr, so ⟨∇, x⟩ = ⟨r, T(x)⟩, and an
    // erased or shifted-out pixel gets no gradient.
    let x = Var::from_tensor(&ramp(4, 1, 6, 6)).unwrap();
    let r = ramp(4, 1, 6, 6).sin().unwrap();
    for which in ["translation", "cutout"] {
        let mut rng = Rng::new(3, 0);
        let y = match which {
            "translation" => translation(x.as_tensor(), 0.3, &mut rng).unwrap(),
            _ => cutout(x.as_tensor(), 0.5, &mut rng).unwrap(),
        };
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g = values(grads.get(&x).expect("x gets a gradient"));
        let lhs: f64 = g.iter().zip(values(&x)).map(|(a, b)| a * b).sum();
        let rhs: f64 = values(&y).iter().zip(values(&r)).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-9 * rhs.abs(),
            "{which}: {lhs} vs {rhs}"
        );
        assert!(
            g.iter().any(|&v| v == 0.0),
            "{which}: some pixel gets no gradient"
        );
        assert!(g.iter().any(|&v| v != 0.0), "{which}");
    }
}

#[test]
fn color_transforms_keep_their_invariants() {
    let x = ramp(3, 3, 4, 4).affine(0.01, -0.5).unwrap();
    let mut rng = Rng::new(4, 0);
    // Brightness: a constant offset per image, within ±0.5.
    let d = values(&(brightness(&x, &mut rng).unwrap() - &x).unwrap());
    for img in d.chunks(48) {
        assert!(
            img.iter()
                .all(|v| (v - img[0]).abs() < 1e-12 && v.abs() <= 0.5)
        );
    }
    // Contrast keeps each image's mean.
    let y = contrast(&x, &mut rng).unwrap();
    for (a, b) in values(&x).chunks(48).zip(values(&y).chunks(48)) {
        let (ma, mb) = (a.iter().sum::<f64>() / 48.0, b.iter().sum::<f64>() / 48.0);
        assert!((ma - mb).abs() < 1e-12);
    }
    // Saturation keeps each pixel's channel mean, and is the identity on one channel.
    let y = saturation(&x, &mut rng).unwrap();
    let (mx, my) = (values(&x.mean(1).unwrap()), values(&y.mean(1).unwrap()));
    assert!(mx.iter().zip(&my).all(|(a, b)| (a - b).abs() < 1e-12));
    let g = ramp(2, 1, 3, 3);
    assert_eq!(values(&saturation(&g, &mut rng).unwrap()), values(&g));
}

#[test]
fn the_whole_transform_is_deterministic_under_a_seed() {
    let t = inputs("color,translation,cutout", 0.1);
    let x = ramp(4, 1, 8, 8).affine(0.01, -1.0).unwrap();
    let run = |seed| values(&t.apply(&x, &mut Rng::new(seed, 3)).unwrap());
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    // Off, it is the identity and draws nothing.
    let off = inputs("", 0.0);
    let mut rng = Rng::new(5, 3);
    assert_eq!(values(&off.apply(&x, &mut rng).unwrap()), values(&x));
    assert_eq!(rng.uniform(), Rng::new(5, 3).uniform());
}

#[test]
fn instance_noise_anneals_linearly_to_zero() {
    let mut t = inputs("", 0.2);
    for (it, want) in [(1, 0.2), (51, 0.1), (101, 0.0), (500, 0.0)] {
        t.set_iteration(it);
        assert!((t.noise_std() - want).abs() < 1e-12, "iteration {it}");
    }
    t.set_iteration(1);
    let x = Tensor::zeros((64, 1, 8, 8), DType::F64, &Device::Cpu).unwrap();
    let v = values(&t.apply(&x, &mut Rng::new(0, 0)).unwrap());
    let std = (v.iter().map(|a| a * a).sum::<f64>() / v.len() as f64).sqrt();
    assert!((std - 0.2).abs() < 0.01, "sample std {std}");
}
