//! CUDA against the CPU: the convolution ops on cuDNN, second-order gradients (WGAN-GP), a
//! short training run, and a run resumed across devices. Built only with the `cuda` feature;
//! each test passes with a note when no CUDA device answers (a GPU-less machine).
//!
//!     cargo test --release --features cuda --test cuda
#![cfg(feature = "cuda")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor, Var};
use gankit::config::Config;
use gankit::kernels::{conv_transpose2d, conv2d};
use gankit::report::metrics;
use gankit::rng::{Rng, stream};
use gankit::train::{Observer, Outcome, RunDir, Session, Silent};

/// CUDA device 0, or None (with a note) on a machine without one.
fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

fn rand(dims: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n = dims.iter().product();
    let v = Rng::new(seed, stream::BENCH).normal_vec(n, 0.0, 1.0);
    Tensor::from_vec(v, dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// max |a − b| / max |b|, both brought to the CPU in f64.
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let f = |t: &Tensor| {
        t.to_device(&Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let (a, b) = (f(a), f(b));
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    worst / scale
}

/// One layer: (n, c_in, c_out, side, k, stride, pad, output padding).
type Layer = (usize, usize, usize, usize, usize, usize, usize, usize);

/// The reports' layers (report 000's 5×5 stride-2 DCGAN, report 001's 4×4 stride-2, 3×3 and
/// 1×1 convolutions) and odd sizes.
const SHAPES: &[Layer] = &[
    (4, 3, 16, 16, 5, 2, 2, 1),
    (4, 16, 8, 8, 4, 2, 1, 0),
    (2, 8, 8, 9, 3, 1, 1, 0),
    (3, 5, 7, 7, 1, 1, 0, 0),
    (2, 64, 32, 32, 4, 2, 1, 0),
];

/// Output, input gradient and kernel gradient of `f(x, w)` weighted by r.
fn pass(
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    f: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) -> (Tensor, Tensor, Tensor) {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let y = f(xv.as_tensor(), wv.as_tensor());
    let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    (y, g.get(&xv).unwrap().clone(), g.get(&wv).unwrap().clone())
}

#[test]
fn convolutions_and_their_gradients_match_the_cpu_kernels() {
    let Some(gpu) = gpu() else { return };
    for &(n, ci, co, side, k, s, p, op) in SHAPES {
        let x = rand(&[n, ci, side, side], 1, DType::F32);
        let w = rand(&[co, ci, k, k], 2, DType::F32);
        let conv = |x: &Tensor, w: &Tensor| conv2d(x, w, s, p).unwrap();
        let r = rand(conv(&x, &w).dims(), 3, DType::F32);
        let cpu = pass(&x, &w, &r, &conv);
        let on = |t: &Tensor| t.to_device(&gpu).unwrap();
        let cuda = pass(&on(&x), &on(&w), &on(&r), &conv);
        for (what, a, b) in [
            ("y", &cuda.0, &cpu.0),
            ("dx", &cuda.1, &cpu.1),
            ("dw", &cuda.2, &cpu.2),
        ] {
            let e = rel(a, b);
            assert!(
                e < 1e-3,
                "conv2d {what} {:?}: {e}",
                (n, ci, co, side, k, s, p)
            );
        }

        // The transposed convolution (a generator layer): x has c_out channels.
        let op = op.min(s.saturating_sub(1));
        let xt = rand(&[n, co, side, side], 4, DType::F32);
        let tconv = |x: &Tensor, w: &Tensor| conv_transpose2d(x, w, s, p, op).unwrap();
        let rt = rand(tconv(&xt, &w).dims(), 5, DType::F32);
        let cpu = pass(&xt, &w, &rt, &tconv);
        let cuda = pass(&on(&xt), &on(&w), &on(&rt), &tconv);
        for (what, a, b) in [
            ("y", &cuda.0, &cpu.0),
            ("dx", &cuda.1, &cpu.1),
            ("dw", &cuda.2, &cpu.2),
        ] {
            let e = rel(a, b);
            assert!(
                e < 1e-3,
                "conv_transpose2d {what} {:?}: {e}",
                (n, ci, co, side, k, s, p, op)
            );
        }
    }
}

#[test]
fn penalty_gradients_of_gradients_match_the_cpu_in_f64() {
    let Some(gpu) = gpu() else { return };
    // SAFETY: tests only read this variable; any value keeps results the same.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    std::thread::spawn(move || {
        for &(n, ci, co, side, k, s, p, _) in &SHAPES[..4] {
            // pen(x, w) = Σ (∂/∂x Σ LeakyReLU(conv(x, w))·r)², a critic's gradient penalty; its
            // gradient with respect to w is the backward pass of a backward pass.
            let grads = |dev: &Device| {
                let x = Var::from_tensor(
                    &rand(&[n, ci, side, side], 6, DType::F64)
                        .to_device(dev)
                        .unwrap(),
                )
                .unwrap();
                let w =
                    Var::from_tensor(&rand(&[co, ci, k, k], 7, DType::F64).to_device(dev).unwrap())
                        .unwrap();
                let y = gankit::kernels::leaky_relu(&conv2d(&x, &w, s, p).unwrap(), 0.2).unwrap();
                let r = rand(y.dims(), 8, DType::F64).to_device(dev).unwrap();
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
                pen.backward().unwrap().get(&w).unwrap().clone()
            };
            let e = rel(&grads(&gpu), &grads(&Device::Cpu));
            assert!(
                e < 1e-9,
                "penalty gradient {:?}: {e}",
                (n, ci, co, side, k, s, p)
            );
        }
    })
    .join()
    .unwrap();
}

fn tiny(steps: u64, extra: &[&str]) -> Config {
    let mut sets: Vec<String> = vec![
        format!("train.steps={steps}"),
        "train.batch_size=16".into(),
        "data.split=test".into(),
        "model.g_width=8".into(),
        "model.d_width=8".into(),
        "checkpoint.every=2".into(),
        "log.sample_every=4".into(),
        "log.grid=16".into(),
        "train.seed=5".into(),
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

fn rows(dir: &RunDir) -> (Vec<String>, Vec<Vec<f64>>) {
    metrics::read(&dir.metrics()).unwrap()
}

#[test]
fn a_run_trains_on_cuda_like_on_the_cpu_and_resumes_across_devices() {
    let Some(gpu) = gpu() else { return };
    // WGAN-GP's exact penalty needs second-order gradients (as the binary sets it).
    // SAFETY: tests only read this variable; any value keeps results the same.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    std::thread::spawn(move || runs_across_devices(&gpu))
        .join()
        .unwrap();
}

fn runs_across_devices(gpu: &Device) {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, name) in [
        (&[][..], "dcgan"),
        (
            &["train.loss=\"wgan-gp\"", "model.d_norm=\"layer\""][..],
            "wgan-gp",
        ),
    ] {
        // The first iteration on each device, from the same seeded weights and batch.
        let first_row = |dev: &Device, tag: &str| {
            let dir = RunDir::new(tmp.path().join(format!("{name}-{tag}")));
            Session::start(tiny(1, extra), dir.clone(), dev)
                .unwrap()
                .run(&mut Silent, &Default::default())
                .unwrap();
            rows(&dir)
        };
        let (h, on_cpu) = first_row(&Device::Cpu, "cpu");
        let (_, on_gpu) = first_row(gpu, "gpu");
        for (i, col) in h.iter().enumerate() {
            if col.ends_with("loss") {
                let (a, b) = (on_gpu[0][i], on_cpu[0][i]);
                assert!(
                    (a - b).abs() <= 1e-2 * b.abs().max(1.0),
                    "{name} {col}: cuda {a}, cpu {b}"
                );
            }
        }

        // CUDA → CPU → CUDA: stopped at 3, resumed on the CPU and stopped at 5, finished on CUDA.
        let dir = RunDir::new(tmp.path().join(format!("{name}-across")));
        let stop = Arc::new(AtomicBool::new(false));
        let mut s = Session::start(tiny(6, extra), dir.clone(), gpu).unwrap();
        assert_eq!(
            s.run(&mut StopAt(3, stop.clone()), &stop).unwrap(),
            Outcome::Stopped(3)
        );
        drop(s);
        stop.store(false, Ordering::SeqCst);
        let mut s = Session::resume(dir.clone(), &Device::Cpu).unwrap();
        assert_eq!(s.step(), 3);
        assert_eq!(
            s.run(&mut StopAt(5, stop.clone()), &stop).unwrap(),
            Outcome::Stopped(5)
        );
        drop(s);
        let mut s = Session::resume(dir.clone(), gpu).unwrap();
        assert_eq!(s.step(), 5);
        assert_eq!(
            s.run(&mut Silent, &Default::default()).unwrap(),
            Outcome::Finished
        );
        let (_, r) = rows(&dir);
        assert_eq!(r.len(), 6, "{name}");
        assert!(
            r.iter().all(|row| row.iter().all(|v| v.is_finite())),
            "{name}"
        );
    }
}
