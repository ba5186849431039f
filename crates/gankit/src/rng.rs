//! Seeded random numbers whose state can be saved and restored exactly.
//!
//! candle's CPU random ops cannot be seeded, so every random number gankit uses (weight
//! initialisation, noise, dropout masks, shuffling) comes from a [`Rng`] on the host.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A ChaCha8 generator whose position can be saved in a checkpoint.
#[derive(Clone, Debug)]
pub struct Rng(ChaCha8Rng);

/// The saved position of an [`Rng`]: seed, stream and word position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: u64,
    pub stream: u64,
    /// Word position, as a decimal string (it is a u128).
    pub word_pos: String,
}

impl Rng {
    /// A generator for `seed`, on an independent `stream` (use one stream per purpose).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        Rng(r)
    }

    /// The state to store in a checkpoint. `seed` must be the seed given to [`Rng::new`].
    pub fn state(&self, seed: u64) -> RngState {
        RngState {
            seed,
            stream: self.0.get_stream(),
            word_pos: self.0.get_word_pos().to_string(),
        }
    }

    /// Rebuild a generator exactly where [`Rng::state`] saw it.
    pub fn from_state(s: &RngState) -> crate::Result<Self> {
        let pos: u128 = s
            .word_pos
            .parse()
            .map_err(|_| crate::Error::Run(format!("bad RNG word position {:?}", s.word_pos)))?;
        let mut r = Rng::new(s.seed, s.stream);
        r.0.set_word_pos(pos);
        Ok(r)
    }

    /// `n` samples of N(mean, std²).
    pub fn normal_vec(&mut self, n: usize, mean: f32, std: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let x: f32 = StandardNormal.sample(&mut self.0);
                mean + std * x
            })
            .collect()
    }

    /// `n` samples of U[lo, hi).
    pub fn uniform_vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.0.random_range(lo..hi)).collect()
    }

    /// One sample of U[0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// One integer uniform in `lo..=hi`.
    pub fn int_in(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..=hi)
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = self.0.random_range(0..=i);
            p.swap(i, j);
        }
        p
    }
}

/// Named streams, so that adding a new consumer of randomness never shifts another.
pub mod stream {
    pub const INIT_G: u64 = 1;
    pub const INIT_D: u64 = 2;
    pub const NOISE: u64 = 3;
    pub const FIXED_NOISE: u64 = 4;
    pub const SHUFFLE: u64 = 5;
    pub const SAMPLE: u64 = 6;
    pub const LIPSCHITZ: u64 = 7;
    pub const EVAL: u64 = 8;
    /// Synthetic real batches of `gankit bench`.
    pub const BENCH: u64 = 9;
    /// Progressive pretraining: the z paired with each image, the order, D's fakes.
    pub const PRETRAIN: u64 = 10;
    /// The noise that re-estimates the weight average's batch-norm statistics.
    pub const EMA_STATISTICS: u64 = 11;
    /// Initial weights of a family's third network (an encoder, a Q head).
    pub const INIT_Q: u64 = 12;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_continues_the_same_sequence() {
        let mut a = Rng::new(7, stream::NOISE);
        let _ = a.normal_vec(13, 0.0, 1.0);
        let s = a.state(7);
        let mut b = Rng::from_state(&s).unwrap();
        assert_eq!(a.normal_vec(5, 0.0, 1.0), b.normal_vec(5, 0.0, 1.0));
    }

    #[test]
    fn streams_differ_and_permutation_is_a_permutation() {
        let mut a = Rng::new(1, 1);
        let mut b = Rng::new(1, 2);
        assert_ne!(a.normal_vec(4, 0.0, 1.0), b.normal_vec(4, 0.0, 1.0));
        let mut p = a.permutation(100);
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
