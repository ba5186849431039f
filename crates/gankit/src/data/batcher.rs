//! Shuffled mini-batches, prepared on a background thread while the step runs.
//!
//! The order is a pure function of (seed, global batch index): epoch `e` visits the images in
//! a permutation drawn from a generator seeded by (seed, e), and the last incomplete batch of
//! an epoch is dropped. A resumed run therefore restarts the stream at its batch index and
//! sees exactly the batches an uninterrupted run would.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::ImageSet;
use crate::rng::{Rng, stream};
use crate::{Error, Result};

/// One batch of images scaled to [-1, 1], (batch, C, H, W) row-major.
#[derive(Clone, Debug)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Option<Vec<u8>>,
    /// Epoch this batch belongs to (0-based).
    pub epoch: u64,
}

/// The batch stream of one run.
pub struct Batcher {
    rx: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    /// Global index of the next batch [`Batcher::next`] returns.
    next_index: u64,
}

/// Batches per epoch for `len` images.
pub fn batches_per_epoch(len: usize, batch: usize) -> u64 {
    (len / batch) as u64
}

fn epoch_order(seed: u64, epoch: u64, len: usize) -> Vec<u32> {
    let mixed = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Rng::new(mixed, stream::SHUFFLE).permutation(len)
}

fn produce(set: Arc<ImageSet>, batch: usize, seed: u64, mut index: u64, tx: SyncSender<Batch>) {
    let per_epoch = batches_per_epoch(set.len, batch);
    let mut order_epoch = u64::MAX;
    let mut order = Vec::new();
    let n = set.image_len();
    loop {
        let epoch = index / per_epoch;
        if epoch != order_epoch {
            order = epoch_order(seed, epoch, set.len);
            order_epoch = epoch;
        }
        let start = (index % per_epoch) as usize * batch;
        let ids = &order[start..start + batch];
        let mut images = vec![0f32; batch * n];
        for (k, &i) in ids.iter().enumerate() {
            set.write_scaled(i as usize, &mut images[k * n..(k + 1) * n]);
        }
        let labels = set
            .labels
            .as_ref()
            .map(|l| ids.iter().map(|&i| l[i as usize]).collect());
        if tx
            .send(Batch {
                images,
                labels,
                epoch,
            })
            .is_err()
        {
            return; // the Batcher was dropped
        }
        index += 1;
    }
}

impl Batcher {
    /// Start the stream at global batch index `start`.
    pub fn new(set: Arc<ImageSet>, batch: usize, seed: u64, start: u64) -> Result<Batcher> {
        if set.len < batch {
            return Err(Error::Data(format!(
                "{} has {} images, fewer than train.batch_size = {batch}; lower the batch size",
                set.source, set.len
            )));
        }
        let (tx, rx) = sync_channel(2);
        let worker = std::thread::Builder::new()
            .name("gankit-batcher".into())
            .spawn(move || produce(set, batch, seed, start, tx))
            .map_err(|e| Error::io("batcher thread", e))?;
        Ok(Batcher {
            rx: Some(rx),
            worker: Some(worker),
            next_index: start,
        })
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> Batch {
        self.next_index += 1;
        self.rx
            .as_ref()
            .expect("receiver lives until drop")
            .recv()
            .expect("the batcher thread only stops when the Batcher is dropped")
    }

    /// Global index of the next batch.
    pub fn position(&self) -> u64 {
        self.next_index
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(len: usize) -> Arc<ImageSet> {
        Arc::new(ImageSet {
            pixels: (0..len).map(|i| i as u8).collect(),
            len,
            channels: 1,
            size: 1,
            labels: Some((0..len).map(|i| i as u8).collect()),
            source: "t".into(),
        })
    }

    fn ids(b: &Batch) -> Vec<u8> {
        b.labels.clone().unwrap()
    }

    #[test]
    fn each_epoch_is_a_permutation_and_epochs_differ() {
        let mut b = Batcher::new(set(10), 3, 7, 0).unwrap();
        let e0: Vec<u8> = (0..3).flat_map(|_| ids(&b.next_batch())).collect();
        let first = b.next_batch();
        assert_eq!(first.epoch, 1, "the last incomplete batch is dropped");
        let mut sorted = e0.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        let again = Batcher::new(set(10), 3, 7, 0).unwrap().next_batch();
        assert_eq!(ids(&again), e0[..3].to_vec(), "same seed, same order");
    }

    #[test]
    fn restarting_at_an_index_gives_the_same_stream() {
        let mut a = Batcher::new(set(50), 4, 1, 0).unwrap();
        let all: Vec<Vec<u8>> = (0..30).map(|_| ids(&a.next_batch())).collect();
        let mut b = Batcher::new(set(50), 4, 1, 17).unwrap();
        for want in &all[17..] {
            assert_eq!(&ids(&b.next_batch()), want);
        }
        assert_eq!(b.position(), 30);
    }

    #[test]
    fn too_small_a_dataset_is_a_clear_error() {
        let e = Batcher::new(set(2), 3, 0, 0).err().unwrap().to_string();
        assert!(e.contains("fewer than train.batch_size"), "{e}");
    }
}
