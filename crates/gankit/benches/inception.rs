//! pytorch-fid's Inception-v3 on gankit's CPU kernels: one batch of 16 Fashion-MNIST-sized
//! images (the batch `gankit eval --evaluator inception` runs), from 28×28 grayscale in
//! [0, 1] to pool3 features and logits, with the synthetic weights of the equivalence test
//! (the cost of the network does not depend on its values).
//!
//! `cargo bench -p gankit --bench inception` (RAYON_NUM_THREADS sets the thread count).
//! `bench/fid_speed.py` times the whole `gankit eval` beside pytorch-fid.

use criterion::{Criterion, criterion_group, criterion_main};
use gankit::evaluator::inception::{InceptionV3, synthetic};
use gankit::rng::Rng;

fn benches(c: &mut Criterion) {
    let net = InceptionV3::new(&synthetic::weights().unwrap()).unwrap();
    let n = 16;
    let images: Vec<f32> = Rng::new(0, 0)
        .normal_vec(n * 28 * 28, 0.5, 0.25)
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    let mut g = c.benchmark_group("inception");
    g.sample_size(10);
    g.bench_function("forward 16 images", |b| {
        b.iter(|| net.forward(&images, n, 1, 28).unwrap())
    });
    g.finish();
}

criterion_group!(inception, benches);
criterion_main!(inception);
