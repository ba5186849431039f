//! Each of gankit's CPU kernels against candle's own op on the shapes of the default
//! DCGAN's step (batch 64, 28×28 Fashion-MNIST), forward alone and forward + backward.
//!
//! `cargo bench -p gankit --bench kernels` (criterion prints both times of each pair; the
//! ratio is gankit / candle in the same run). RAYON_NUM_THREADS sets the thread count.

use candle_core::{D, DType, Device, Tensor, Var};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gankit::kernels;
use gankit::nn::{BatchNorm, Mode, ParamStore, batch_norm};
use gankit::rng::Rng;

fn rand(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = Rng::new(seed, 0).normal_vec(n, 0.0, 1.0);
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Time `f` (forward) and `f` then the backward pass of Σ f(x, w) (which includes
/// candle's own sum and its backward, the same for both).
fn pair(
    c: &mut Criterion,
    group: &str,
    xs: &[usize],
    ws: &[usize],
    ours: &dyn Fn(&Tensor, &Tensor) -> Tensor,
    candle: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) {
    let x = Var::from_tensor(&rand(xs, 1)).unwrap();
    let w = Var::from_tensor(&rand(ws, 2)).unwrap();
    let mut g = c.benchmark_group(group);
    for (name, f) in [("gankit", ours), ("candle", candle)] {
        g.bench_function(BenchmarkId::new("forward", name), |b| {
            b.iter(|| f(x.as_tensor(), w.as_tensor()))
        });
        g.bench_function(BenchmarkId::new("forward+backward", name), |b| {
            b.iter(|| {
                f(x.as_tensor(), w.as_tensor())
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// Batch norm in training mode from candle's tensor ops (the computation the fused
/// kernels replace).
fn composed_batch_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let c = x.dim(1).unwrap();
    let xc = x
        .transpose(0, 1)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((c, ()))
        .unwrap();
    let mean = xc.mean(D::Minus1).unwrap();
    let var = xc
        .broadcast_sub(&mean.unsqueeze(1).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .mean(D::Minus1)
        .unwrap();
    let shape = (1, c, 1, 1);
    let scale = ((var + 1e-5).unwrap().sqrt().unwrap().recip().unwrap() * gamma)
        .unwrap()
        .reshape(shape)
        .unwrap();
    x.broadcast_sub(&mean.reshape(shape).unwrap())
        .unwrap()
        .broadcast_mul(&scale)
        .unwrap()
        .broadcast_add(&beta.reshape(shape).unwrap())
        .unwrap()
}

/// Layer norm over each sample, per-channel affine and LeakyReLU from candle's tensor ops.
fn composed_layer_norm_act(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let flat = x.flatten_from(1).unwrap();
    let centred = flat.broadcast_sub(&flat.mean_keepdim(1).unwrap()).unwrap();
    let var = centred.sqr().unwrap().mean_keepdim(1).unwrap();
    let n = centred
        .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
        .unwrap()
        .reshape(x.shape())
        .unwrap();
    let shape = (1, x.dim(1).unwrap(), 1, 1);
    let a = n
        .broadcast_mul(&gamma.reshape(shape).unwrap())
        .unwrap()
        .broadcast_add(&beta.reshape(shape).unwrap())
        .unwrap();
    (a.relu().unwrap() - (a.neg().unwrap().relu().unwrap() * 0.2).unwrap()).unwrap()
}

fn benches(c: &mut Criterion) {
    // As the gankit binary does: keep freed multi-MiB tensors in the heap. Otherwise glibc
    // unmaps each one when it is freed, and the backward timings are mostly page faults,
    // which vary from run to run.
    kernels::keep_freed_memory();
    // D's second convolution and G's first transposed convolution in dcgan28.
    pair(
        c,
        "conv2d 64×64×14×14 * 128×64×4×4 s2 p1",
        &[64, 64, 14, 14],
        &[128, 64, 4, 4],
        &|x, w| kernels::conv2d(x, w, 2, 1).unwrap(),
        &|x, w| x.conv2d(w, 1, 2, 1, 1).unwrap(),
    );
    pair(
        c,
        "conv_transpose2d 64×128×7×7 * 128×64×4×4 s2 p1",
        &[64, 128, 7, 7],
        &[128, 64, 4, 4],
        &|x, w| kernels::conv_transpose2d(x, w, 2, 1, 0).unwrap(),
        &|x, w| x.conv_transpose2d(w, 1, 0, 2, 1).unwrap(),
    );
    pair(
        c,
        "leaky_relu 64×64×14×14",
        &[64, 64, 14, 14],
        &[1],
        &|x, _| kernels::leaky_relu(x, 0.2).unwrap(),
        &|x, _| (x.relu().unwrap() - (x.neg().unwrap().relu().unwrap() * 0.2).unwrap()).unwrap(),
    );
    pair(
        c,
        "channel bias 64×128×7×7",
        &[64, 128, 7, 7],
        &[128],
        &|x, b| kernels::add_channel_bias(x, b).unwrap(),
        &|x, b| {
            x.broadcast_add(&b.reshape((1, 128, 1, 1)).unwrap())
                .unwrap()
        },
    );
    // The WGAN-GP critic's layer norm, its affine and LeakyReLU (γ = w, β = 0.1).
    let beta = Tensor::full(0.1f32, 128, &Device::Cpu).unwrap();
    pair(
        c,
        "layer norm + LeakyReLU 64×128×7×7",
        &[64, 128, 7, 7],
        &[128],
        &|x, g| kernels::layer_norm_act(x, g, &beta, 1e-5, 0.2).unwrap(),
        &|x, g| composed_layer_norm_act(x, g, &beta),
    );
    pair(
        c,
        "tanh 64×1×28×28",
        &[64, 1, 28, 28],
        &[1],
        &|x, _| kernels::tanh(x).unwrap(),
        &|x, _| x.tanh().unwrap(),
    );
    let store = ParamStore::new(Rng::new(0, 1), &Device::Cpu);
    let bn: BatchNorm = batch_norm(64, Default::default(), store.var_builder()).unwrap();
    let (gamma, beta) = {
        let t = store.tensors();
        (t["weight"].clone(), t["bias"].clone())
    };
    assert_eq!(gamma.dtype(), DType::F32);
    pair(
        c,
        "batch norm (training) 64×64×14×14",
        &[64, 64, 14, 14],
        &[1],
        &|x, _| bn.forward(x, &Mode::Train(&mut Rng::new(0, 0))).unwrap(),
        &|x, _| composed_batch_norm(x, &gamma, &beta),
    );
}

criterion_group! {
    name = kernels_vs_candle;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(kernels_vs_candle);
