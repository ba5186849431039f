//! The convolutions of the 64×64 networks, one by one, on gankit's CPU kernels at batch
//! 64: report 000's DCGAN (5×5 kernels, stride 2, `configs/dcgan64-folder.toml`) and report
//! 001's all-convolutional DCGAN (4×4 kernels, stride 2, padding 1,
//! `configs/reports/001-lsgan-alpha.toml`). Each layer in its convolution geometry (the
//! larger map is the image side; G's transposed convolutions run `backward_data` forward),
//! and each of the three passes a training step takes: features, input gradient, filter
//! gradient.
//!
//! `cargo bench -p gankit --bench conv64` (RAYON_NUM_THREADS sets the thread count).
//! Filter with a name, e.g. `cargo bench -p gankit --bench conv64 -- "k5 128→256"`.

use criterion::{Criterion, criterion_group, criterion_main};
use gankit::kernels::cpu::{self, Geometry};
use gankit::rng::Rng;

/// (c_in, c_out, side of the image map, kernel, padding): stride 2 throughout, the features
/// half the side.
const LAYERS: [(usize, usize, usize, usize, usize); 8] = [
    (3, 64, 64, 5, 2),
    (64, 128, 32, 5, 2),
    (128, 256, 16, 5, 2),
    (256, 512, 8, 5, 2),
    (3, 64, 64, 4, 1),
    (64, 128, 32, 4, 1),
    (128, 256, 16, 4, 1),
    (256, 512, 8, 4, 1),
];

fn benches(c: &mut Criterion) {
    // As the gankit binary does: keep freed multi-MiB buffers in the heap.
    gankit::kernels::keep_freed_memory();
    let n = 64;
    let mut rng = Rng::new(0, 0);
    let mut g = c.benchmark_group("conv64");
    g.sample_size(10);
    for (c_in, c_out, side, k, pad) in LAYERS {
        let o = (side + 2 * pad - k) / 2 + 1;
        let geo = Geometry {
            n,
            c_in,
            c_out,
            h: side,
            w: side,
            oh: o,
            ow: o,
            k,
            stride: 2,
            pad,
        };
        let x = rng.normal_vec(n * c_in * side * side, 0.0, 1.0);
        let w = rng.normal_vec(c_out * c_in * k * k, 0.0, 1.0);
        let dy = rng.normal_vec(n * c_out * o * o, 0.0, 1.0);
        let name = format!("k{k} {c_in}→{c_out} {side}→{o}");
        g.bench_function(format!("{name} forward"), |b| {
            b.iter(|| cpu::forward(&geo, &x, &w))
        });
        g.bench_function(format!("{name} input gradient"), |b| {
            b.iter(|| cpu::backward_data(&geo, &dy, &w))
        });
        g.bench_function(format!("{name} filter gradient"), |b| {
            b.iter(|| cpu::backward_filter(&geo, &x, &dy))
        });
    }
    g.finish();
}

criterion_group!(conv64, benches);
criterion_main!(conv64);
