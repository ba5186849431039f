//! Training the evaluator classifier: Adam, cross-entropy, seeded shuffling and dropout, so a
//! run on the CPU is deterministic. The learning rate drops tenfold for the last epoch.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::Evaluator;
use crate::config::OptimizerConfig;
use crate::data::{Batcher, ImageSet, batches_per_epoch};
use crate::losses::cross_entropy;
use crate::nn::Mode;
use crate::optim;
use crate::rng::{Rng, stream};
use crate::{Error, Result};

/// How to train an evaluator.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 4,
            batch_size: 128,
            lr: 1e-3,
            seed: 0,
        }
    }
}

fn labels_of(set: &ImageSet, what: &str) -> Result<Vec<u8>> {
    set.labels.clone().ok_or_else(|| {
        Error::Data(format!(
            "{what} ({}) has no labels: the evaluator is a classifier",
            set.source
        ))
    })
}

/// Accuracy of `ev` on `set` (evaluation mode).
pub fn accuracy(ev: &Evaluator, set: &ImageSet) -> Result<f64> {
    let labels = labels_of(set, "the test set")?;
    let per = set.image_len();
    let mut images = vec![0f32; set.len * per];
    for i in 0..set.len {
        set.write_scaled(i, &mut images[i * per..(i + 1) * per])?;
    }
    let (_, probs) = ev.features(&images, set.len)?;
    let hits = crate::metrics::argmax_rows(&probs)
        .into_iter()
        .zip(&labels)
        .filter(|(p, l)| *p == **l as usize)
        .count();
    Ok(hits as f64 / set.len as f64)
}

/// Train a classifier on `train` and measure it on `test`. `progress(epoch, mean loss)` is
/// called after each epoch.
pub fn train(
    dataset: &str,
    train: ImageSet,
    test: &ImageSet,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Evaluator> {
    let labels_train = labels_of(&train, "the training set")?;
    let classes = labels_train
        .iter()
        .chain(test.labels.iter().flatten())
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(1);
    let mut ev = Evaluator::new(dataset, classes, train.channels, train.size, opts.seed)?;
    let cfg = OptimizerConfig {
        lr: opts.lr,
        beta1: 0.9,
        beta2: 0.999,
        ..OptimizerConfig::default()
    };
    let mut opt = optim::build(ev.params.trainable(), &cfg)?;
    let (c, s, b) = (train.channels, train.size, opts.batch_size);
    let per_epoch = batches_per_epoch(train.len, b);
    let mut batches = Batcher::new(Arc::new(train), b, opts.seed, 0)?;
    let mut rng = Rng::new(opts.seed, stream::NOISE);
    for epoch in 0..opts.epochs {
        if epoch + 1 == opts.epochs && opts.epochs > 1 {
            opt.set_lr(opts.lr * 0.1);
        }
        let mut total = 0.0;
        for _ in 0..per_epoch {
            let batch = batches.next_batch()?;
            let x = Tensor::from_vec(batch.images, (b, c, s, s), &Device::Cpu)?;
            let y: Vec<u32> = batch
                .labels
                .expect("labelled set")
                .iter()
                .map(|&l| l as u32)
                .collect();
            let y = Tensor::from_vec(y, b, &Device::Cpu)?;
            let (_, logits) = ev.net.forward(&x, &mut Mode::Train(&mut rng))?;
            let loss = cross_entropy(&logits, &y)?;
            opt.step(&loss.backward()?)?;
            total += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        }
        progress(epoch + 1, total / per_epoch as f64);
    }
    ev.info.epochs = opts.epochs;
    ev.info.test_accuracy = accuracy(&ev, test)?;
    Ok(ev)
}
