//! A linear probe: multinomial logistic regression from features to labels, fitted on one
//! set and scored on another, the standard test of a learned representation (Donahue et al.
//! 2017 §4 evaluate BiGAN's encoder this way).
//!
//! Features are standardised with the training set's mean and deviation; weights start at
//! 0 and are fitted by Adam (lr 0.01) on the mean cross-entropy plus an L2 penalty 1e-4 ·
//! ‖W‖², for `epochs` passes over shuffled mini-batches of 256 (seeded: the same inputs
//! give the same accuracy).

use candle_core::{Device, Tensor, Var};

use crate::Result;
use crate::config::OptimizerConfig;
use crate::losses::cross_entropy;
use crate::optim;
use crate::rng::Rng;

/// Settings of one probe.
#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    pub epochs: usize,
    pub seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            epochs: 20,
            seed: 0,
        }
    }
}

/// Mean and (population) standard deviation of each column, deviation floored at 1e-6.
fn column_stats(x: &[f32], n: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for row in x.chunks(d).take(n) {
        for (j, &v) in row.iter().enumerate() {
            mean[j] += v as f64;
            sq[j] += (v as f64) * (v as f64);
        }
    }
    let mean: Vec<f64> = mean.iter().map(|m| m / n.max(1) as f64).collect();
    let std: Vec<f32> = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n.max(1) as f64 - m * m).max(0.0).sqrt().max(1e-6)) as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

fn standardised(x: &[f32], d: usize, mean: &[f32], std: &[f32]) -> Vec<f32> {
    x.chunks(d)
        .flat_map(|row| row.iter().enumerate().map(|(j, &v)| (v - mean[j]) / std[j]))
        .collect()
}

/// Accuracy on (`test`, `test_labels`) of a logistic regression fitted on (`train`,
/// `train_labels`); rows of `d` features, `classes` classes.
pub fn linear_probe(
    train: &[f32],
    train_labels: &[u8],
    test: &[f32],
    test_labels: &[u8],
    d: usize,
    classes: usize,
    opts: ProbeOptions,
) -> Result<f64> {
    let (n, m) = (train_labels.len(), test_labels.len());
    let (mean, std) = column_stats(train, n, d);
    let xs = standardised(train, d, &mean, &std);
    let dev = Device::Cpu;
    let w = Var::zeros((d, classes), candle_core::DType::F32, &dev)?;
    let b = Var::zeros(classes, candle_core::DType::F32, &dev)?;
    let cfg = OptimizerConfig {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        ..Default::default()
    };
    let mut opt = optim::build(vec![("w".into(), w.clone()), ("b".into(), b.clone())], &cfg)?;
    let mut rng = Rng::new(opts.seed, 41);
    let batch = 256;
    for _ in 0..opts.epochs {
        let order = rng.permutation(n);
        for chunk in order.chunks(batch) {
            let mut xb = Vec::with_capacity(chunk.len() * d);
            let mut yb = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let i = i as usize;
                xb.extend_from_slice(&xs[i * d..(i + 1) * d]);
                yb.push(train_labels[i] as u32);
            }
            let x = Tensor::from_vec(xb, (chunk.len(), d), &dev)?;
            let y = Tensor::from_vec(yb, chunk.len(), &dev)?;
            let logits = crate::kernels::matmul(&x, w.as_tensor(), false, false)?
                .broadcast_add(b.as_tensor())?;
            let loss = (cross_entropy(&logits, &y)? + (w.as_tensor().sqr()?.sum_all()? * 1e-4)?)?;
            opt.step(&loss.backward()?)?;
        }
    }
    let xt = Tensor::from_vec(standardised(test, d, &mean, &std), (m, d), &dev)?;
    let logits = crate::kernels::matmul(&xt, w.as_tensor(), false, false)?
        .broadcast_add(b.as_tensor())?
        .argmax(1)?
        .to_vec1::<u32>()?;
    let hits = logits
        .iter()
        .zip(test_labels)
        .filter(|(p, l)| **p == **l as u32)
        .count();
    Ok(hits as f64 / m.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian blobs per class in 5 dimensions, the class in the first coordinate's
    /// sign: a linear probe separates them; shuffled labels give chance.
    #[test]
    fn separable_classes_are_found_and_noise_is_chance() {
        let mut rng = Rng::new(1, 0);
        let (n, d) = (600, 5);
        let make = |rng: &mut Rng| {
            let mut x = rng.normal_vec(n * d, 0.0, 1.0);
            let y: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
            for i in 0..n {
                x[i * d] += if y[i] == 1 { 3.0 } else { -3.0 };
            }
            (x, y)
        };
        let (xtr, ytr) = make(&mut rng);
        let (xte, yte) = make(&mut rng);
        let acc = linear_probe(&xtr, &ytr, &xte, &yte, d, 2, ProbeOptions::default()).unwrap();
        assert!(acc > 0.97, "{acc}");
        let shuffled: Vec<u8> = (0..n).map(|_| (rng.uniform() < 0.5) as u8).collect();
        let acc = linear_probe(&xtr, &shuffled, &xte, &yte, d, 2, ProbeOptions::default()).unwrap();
        assert!((0.3..0.7).contains(&acc), "{acc}");
    }
}
