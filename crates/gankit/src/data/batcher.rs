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
    rx: Option<Receiver<Result<Batch>>>,
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

/// Training class by class (report 002; `data.class_schedule`): global batch index i falls
/// in phase p = ⌊i / batches_per_phase⌋, which draws only images of some classes — class
/// `order[p mod K]` (sequential), or classes `order[0..=min(p, K − 1)]` (a curriculum that
/// adds one class per phase). Each phase shuffles its own images from (seed, phase), epoch
/// after epoch, so the stream stays a pure function of the batch index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassPlan {
    pub order: Vec<u8>,
    pub batches_per_phase: u64,
    pub cumulative: bool,
}

impl ClassPlan {
    /// The classes batch `index` draws from.
    pub fn classes(&self, index: u64) -> Vec<u8> {
        let phase = index / self.batches_per_phase.max(1);
        let k = self.order.len() as u64;
        if self.cumulative {
            self.order[..=phase.min(k - 1) as usize].to_vec()
        } else {
            vec![self.order[(phase % k) as usize]]
        }
    }
}

/// Images of `set` (indices) whose label is in `classes`.
fn pool(set: &ImageSet, classes: &[u8]) -> Vec<u32> {
    let labels = set
        .labels
        .as_ref()
        .expect("checked: a class plan needs labels");
    (0..set.len as u32)
        .filter(|&i| classes.contains(&labels[i as usize]))
        .collect()
}

/// The image indices of batch `index`: with a plan, from its phase's pool.
struct Order {
    /// (phase, epoch) of `ids`.
    key: (u64, u64),
    ids: Vec<u32>,
}

fn batch_ids(
    set: &ImageSet,
    plan: Option<&ClassPlan>,
    batch: usize,
    seed: u64,
    index: u64,
    cache: &mut Option<Order>,
) -> (Vec<u32>, u64) {
    let (phase, local, members) = match plan {
        None => (0, index, None),
        Some(p) => {
            let phase = index / p.batches_per_phase.max(1);
            (
                phase,
                index % p.batches_per_phase.max(1),
                Some(pool(set, &p.classes(index))),
            )
        }
    };
    let len = members.as_ref().map_or(set.len, Vec::len);
    let per_epoch = batches_per_epoch(len, batch).max(1);
    let epoch = local / per_epoch;
    if cache.as_ref().is_none_or(|c| c.key != (phase, epoch)) {
        let phase_seed = seed ^ phase.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let perm = epoch_order(if plan.is_some() { phase_seed } else { seed }, epoch, len);
        let ids = match &members {
            Some(m) => perm.iter().map(|&k| m[k as usize]).collect(),
            None => perm,
        };
        *cache = Some(Order {
            key: (phase, epoch),
            ids,
        });
    }
    let start = (local % per_epoch) as usize * batch;
    let ids = cache.as_ref().expect("just filled").ids[start..start + batch].to_vec();
    // Without a plan the epoch is the data's; with one, the phase's own.
    (ids, epoch)
}

fn produce(
    set: Arc<ImageSet>,
    batch: usize,
    seed: u64,
    plan: Option<ClassPlan>,
    mut index: u64,
    tx: SyncSender<Result<Batch>>,
) {
    use rayon::prelude::*;
    let mut cache = None;
    let n = set.image_len();
    loop {
        let (ids, epoch) = batch_ids(&set, plan.as_ref(), batch, seed, index, &mut cache);
        let mut images = vec![0f32; batch * n];
        let slots = images.chunks_mut(n).zip(&ids);
        // A streamed set decodes its files: in parallel. Others copy bytes.
        let filled = if set.pixels.is_streamed() {
            slots
                .collect::<Vec<_>>()
                .into_par_iter()
                .try_for_each(|(out, &i)| set.write_scaled(i as usize, out))
        } else {
            slots
                .into_iter()
                .try_for_each(|(out, &i)| set.write_scaled(i as usize, out))
        };
        let labels = set
            .labels
            .as_ref()
            .map(|l| ids.iter().map(|&i| l[i as usize]).collect());
        let item = filled.map(|()| Batch {
            images,
            labels,
            epoch,
        });
        let failed = item.is_err();
        if tx.send(item).is_err() || failed {
            return; // the Batcher was dropped, or the data cannot be read
        }
        index += 1;
    }
}

impl Batcher {
    /// Start the stream at global batch index `start`.
    pub fn new(set: Arc<ImageSet>, batch: usize, seed: u64, start: u64) -> Result<Batcher> {
        Self::with_plan(set, batch, seed, start, None)
    }

    /// Start the stream at `start`, class by class when `plan` is given.
    pub fn with_plan(
        set: Arc<ImageSet>,
        batch: usize,
        seed: u64,
        start: u64,
        plan: Option<ClassPlan>,
    ) -> Result<Batcher> {
        if set.len < batch {
            return Err(Error::Data(format!(
                "{} has {} images, fewer than train.batch_size = {batch}; lower the batch size",
                set.source, set.len
            )));
        }
        if let Some(p) = &plan {
            let Some(labels) = &set.labels else {
                return Err(Error::Data(format!(
                    "data.class_schedule trains class by class, and {} has no labels",
                    set.source
                )));
            };
            for &c in &p.order {
                let count = labels.iter().filter(|&&l| l == c).count();
                if count < batch {
                    return Err(Error::Data(format!(
                        "data.class_schedule: class {c} has {count} images in {}, fewer than train.batch_size = {batch}",
                        set.source
                    )));
                }
            }
        }
        // Batches prepared ahead: more when each is decoded from files.
        let (tx, rx) = sync_channel(if set.pixels.is_streamed() { 4 } else { 2 });
        let worker = std::thread::Builder::new()
            .name("gankit-batcher".into())
            .spawn(move || produce(set, batch, seed, plan, start, tx))
            .map_err(|e| Error::io("batcher thread", e))?;
        Ok(Batcher {
            rx: Some(rx),
            worker: Some(worker),
            next_index: start,
        })
    }

    /// The next batch; an error when a streamed image cannot be decoded (then every later
    /// call returns that error).
    pub fn next_batch(&mut self) -> Result<Batch> {
        let rx = self.rx.as_ref().expect("receiver lives until drop");
        match rx.recv() {
            Ok(b) => {
                self.next_index += 1;
                b
            }
            // The thread stopped after sending an error, which was taken already.
            Err(_) => Err(Error::Data(
                "the batch stream stopped after a data error".into(),
            )),
        }
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
        let e0: Vec<u8> = (0..3).flat_map(|_| ids(&b.next_batch().unwrap())).collect();
        let first = b.next_batch().unwrap();
        assert_eq!(first.epoch, 1, "the last incomplete batch is dropped");
        let mut sorted = e0.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        let again = Batcher::new(set(10), 3, 7, 0)
            .unwrap()
            .next_batch()
            .unwrap();
        assert_eq!(ids(&again), e0[..3].to_vec(), "same seed, same order");
    }

    #[test]
    fn restarting_at_an_index_gives_the_same_stream() {
        let mut a = Batcher::new(set(50), 4, 1, 0).unwrap();
        let all: Vec<Vec<u8>> = (0..30).map(|_| ids(&a.next_batch().unwrap())).collect();
        let mut b = Batcher::new(set(50), 4, 1, 17).unwrap();
        for want in &all[17..] {
            assert_eq!(&ids(&b.next_batch().unwrap()), want);
        }
        assert_eq!(b.position(), 30);
    }

    #[test]
    fn class_by_class_batches_follow_the_schedule_and_restart_exactly() {
        // Labels 0..4 repeating: 20 images of each class.
        let set = Arc::new(ImageSet {
            pixels: (0..100).map(|i| i as u8).collect(),
            len: 100,
            channels: 1,
            size: 1,
            labels: Some((0..100).map(|i| (i % 5) as u8).collect()),
            source: "t".into(),
        });
        let plan = |cumulative| ClassPlan {
            order: vec![3, 1, 4],
            batches_per_phase: 4,
            cumulative,
        };
        let mut b = Batcher::with_plan(set.clone(), 5, 2, 0, Some(plan(false))).unwrap();
        let classes: Vec<Vec<u8>> = (0..16)
            .map(|_| b.next_batch().unwrap().labels.unwrap())
            .collect();
        for (i, c) in classes.iter().enumerate() {
            let want = [3, 1, 4][(i / 4) % 3];
            assert!(
                c.iter().all(|&l| l == want),
                "batch {i}: {c:?}, want {want}"
            );
        }
        let mut again = Batcher::with_plan(set.clone(), 5, 2, 9, Some(plan(false))).unwrap();
        for want in &classes[9..] {
            assert_eq!(
                &again.next_batch().unwrap().labels.unwrap(),
                want,
                "a restart sees the same batches"
            );
        }
        let mut c = Batcher::with_plan(set.clone(), 5, 2, 0, Some(plan(true))).unwrap();
        for i in 0..16 {
            let allowed: &[u8] = match i / 4 {
                0 => &[3],
                1 => &[3, 1],
                _ => &[3, 1, 4],
            };
            let got = c.next_batch().unwrap().labels.unwrap();
            assert!(
                got.iter().all(|l| allowed.contains(l)),
                "batch {i}: {got:?}"
            );
        }
        let e = Batcher::with_plan(set, 30, 2, 0, Some(plan(false)))
            .err()
            .unwrap();
        assert!(e.to_string().contains("class 3 has 20 images"), "{e}");
    }

    #[test]
    fn too_small_a_dataset_is_a_clear_error() {
        let e = Batcher::new(set(2), 3, 0, 0).err().unwrap().to_string();
        assert!(e.contains("fewer than train.batch_size"), "{e}");
    }
}
