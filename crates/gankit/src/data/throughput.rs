//! How fast the data pipeline serves batches: measured on its own, through the same
//! [`Batcher`] the trainer reads, so a streamed set's figure includes its parallel decoding.
//!
//! A run measures it briefly at start (a few batches, a fraction of a second) and prints it
//! beside the step's own consumption; `gankit bench --data` measures it for longer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Batcher, ImageSet};
use crate::Result;

/// Images served in a time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throughput {
    pub images: usize,
    pub seconds: f64,
}

impl Throughput {
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// Where a set's pixels come from, in words ("from the cache", ...).
pub fn mode(set: &ImageSet) -> &'static str {
    match &set.pixels {
        super::Pixels::Owned(_) => "in memory",
        super::Pixels::Mapped { .. } => "memory-mapped from the cache",
        super::Pixels::Streamed(_) => "decoded from the files as batches are drawn",
    }
}

/// Serve batches of `batch` images from `set` (in a shuffled order of its own, which does
/// not touch any run's) for about `budget`, at least one and at most `max_batches`.
pub fn measure(
    set: &Arc<ImageSet>,
    batch: usize,
    budget: Duration,
    max_batches: usize,
) -> Result<Throughput> {
    let batch = batch.min(set.len).max(1);
    let t0 = Instant::now();
    let mut batcher = Batcher::new(set.clone(), batch, 0x7470_7574, 0)?;
    let mut served = 0usize;
    let mut batches = 0usize;
    while batches < max_batches.max(1) && (batches == 0 || t0.elapsed() < budget) {
        served += batcher.next_batch()?.images.len() / set.image_len();
        batches += 1;
    }
    let seconds = t0.elapsed().as_secs_f64();
    drop(batcher);
    Ok(Throughput {
        images: served,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(len: usize) -> Arc<ImageSet> {
        Arc::new(ImageSet {
            pixels: (0..len * 4).map(|i| i as u8).collect(),
            len,
            channels: 1,
            size: 2,
            labels: None,
            source: "test".into(),
        })
    }

    #[test]
    fn counts_the_images_of_the_batches_it_served() {
        let t = measure(&set(50), 8, Duration::from_secs(60), 5).unwrap();
        assert_eq!(t.images, 40);
        assert!(t.seconds > 0.0 && t.images_per_s() > 0.0);
        assert_eq!(mode(&set(1)), "in memory");
    }

    #[test]
    fn serves_at_least_one_batch_whatever_the_budget() {
        let t = measure(&set(50), 8, Duration::ZERO, 5).unwrap();
        assert_eq!(t.images, 8);
        // A batch larger than the set is cut to the set.
        assert_eq!(measure(&set(3), 8, Duration::ZERO, 1).unwrap().images, 3);
    }
}
