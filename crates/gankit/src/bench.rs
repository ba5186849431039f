//! Training-step benchmark: the time of one iteration of any config, without data on disk.
//!
//! One iteration is exactly what the trainer runs ([`crate::train::iteration_steps`]):
//! `d_steps` discriminator steps and `g_steps` generator steps, with the config's objective,
//! models and optimisers. Real batches are uniform noise in [-1, 1] of the data's shape, so
//! the arithmetic is the training run's. After `warmup` untimed iterations, each of `steps`
//! iterations is timed on its own; the report gives their median (the figure to compare with
//! `bench/pytorch_reference.py`), the minimum and the maximum.

use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::Result;
use crate::config::Config;
use crate::family::{self, latent};
use crate::objectives::RealBatch;
use crate::rng::{Rng, stream};
use crate::train::iteration_steps;

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Untimed iterations first (allocator and thread-pool warm-up).
    pub warmup: usize,
    /// Timed iterations.
    pub steps: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            warmup: 3,
            steps: 20,
        }
    }
}

/// What one benchmark measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Median time of one iteration, in milliseconds.
    pub ms_median: f64,
    pub ms_min: f64,
    pub ms_max: f64,
    /// Real images D sees per second at the median (batch_size × d_steps per iteration).
    pub images_per_s: f64,
    /// Peak resident memory of the process so far (VmHWM), in MiB, where the OS reports it.
    pub peak_rss_mib: Option<f64>,
    /// The timed iterations, in milliseconds, in order.
    pub samples_ms: Vec<f64>,
    /// Trainable parameters of each network, by name.
    pub params: Vec<(&'static str, usize)>,
    /// Floating-point operations of one iteration's convolutions and matrix products
    /// ([`crate::kernels::flops`]; 0 on devices whose products are not gankit's), in GFLOP.
    pub gflop_per_iter: f64,
}

impl BenchReport {
    /// The rate of the counted operations at the median time, in GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.gflop_per_iter / (self.ms_median / 1e3)
    }
}

/// Time `opts.steps` training iterations of `cfg` on `device`.
pub fn run(cfg: &Config, device: &Device, opts: BenchOptions) -> Result<BenchReport> {
    family::check(cfg)?;
    if opts.steps == 0 || opts.steps > 100_000 || opts.warmup > 100_000 {
        return Err(crate::Error::Config(
            "bench: --steps must be 1 to 100000 and --warmup at most 100000".into(),
        ));
    }
    let mut family = family::build(cfg, device)?;
    let (b, c, s) = (cfg.train.batch_size, cfg.data.channels, cfg.data.image_size);
    let mut data_rng = Rng::new(cfg.train.seed, stream::BENCH);
    let labels = latent::cycle_classes(b, family.classes(), None);
    let labels = labels
        .map(|l| Tensor::new(l.as_slice(), device))
        .transpose()?;
    let mut next_real = || -> Result<RealBatch> {
        // On a GPU drawn there, as PyTorch's reference draws them (bench/pytorch_reference.py):
        // a host-side batch would time the copy.
        let images = if device.is_cpu() {
            let px = data_rng.uniform_vec(b * c * s * s, -1.0, 1.0);
            Tensor::from_vec(px, (b, c, s, s), device)?
        } else {
            Tensor::rand(-1f32, 1f32, (b, c, s, s), device)?
        };
        Ok(RealBatch {
            images,
            labels: labels.clone(),
            epoch: 0,
        })
    };
    let mut rng = Rng::new(cfg.train.seed, stream::NOISE);
    let mut samples_ms = Vec::with_capacity(opts.steps);
    let mut flops_before = 0;
    for i in 0..opts.warmup + opts.steps {
        if i == opts.warmup {
            flops_before = crate::kernels::flops::total();
        }
        // Every iteration trains G, whatever train.g_every says: one bench iteration is a
        // full D + G round (epoch 0 of the synthetic stream is a G epoch).
        let iteration = (i as u64 + 1) * cfg.train.g_every;
        let t0 = Instant::now();
        iteration_steps(
            family.as_mut(),
            &mut next_real,
            &mut rng,
            &cfg.train,
            iteration,
        )?;
        device.synchronize()?;
        if i >= opts.warmup {
            samples_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let flops = crate::kernels::flops::total() - flops_before;
    let mut sorted = samples_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let ms_median = median(&sorted);
    Ok(BenchReport {
        ms_median,
        ms_min: sorted[0],
        ms_max: sorted[sorted.len() - 1],
        images_per_s: (b * cfg.train.d_steps) as f64 / (ms_median / 1e3),
        peak_rss_mib: peak_rss_mib(),
        samples_ms,
        params: family.model().param_counts(),
        gflop_per_iter: flops as f64 / opts.steps as f64 / 1e9,
    })
}

/// The matrix-product rate this machine reaches through gankit's products on the current
/// threads, in GFLOP/s: the best of a few 2048×2048×2048 products in f32 (wide enough for
/// every thread, packed once per block, as a step's largest products are). The ceiling a
/// step's products can approach.
pub fn gemm_peak_gflops() -> Result<f64> {
    let n = 2048;
    let dev = Device::Cpu;
    let mut rng = Rng::new(0, stream::BENCH);
    let a = Tensor::from_vec(rng.uniform_vec(n * n, -1.0, 1.0), (n, n), &dev)?;
    let b = Tensor::from_vec(rng.uniform_vec(n * n, -1.0, 1.0), (n, n), &dev)?;
    crate::kernels::matmul(&a, &b, false, false)?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t0 = Instant::now();
        crate::kernels::matmul(&a, &b, false, false)?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// Median of sorted values (mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The process's peak resident set size (Linux's VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn benchmarks_a_tiny_config() {
        let cfg = Config::from_toml_str(
            "[model]\ng_width = 4\nd_width = 4\nd_norm = \"layer\"\n[train]\nbatch_size = 8\nloss = \"wgan-gp\"\nd_steps = 2",
            "t",
            &[],
        )
        .unwrap();
        let r = crate::objectives::penalty::with_second_order(move || {
            run(
                &cfg,
                &Device::Cpu,
                BenchOptions {
                    warmup: 1,
                    steps: 3,
                },
            )
        })
        .unwrap();
        assert_eq!(r.samples_ms.len(), 3);
        assert!(r.ms_min > 0.0 && r.ms_min <= r.ms_median && r.ms_median <= r.ms_max);
        let want = 16.0 / (r.ms_median / 1e3);
        assert!((r.images_per_s - want).abs() < 1e-6 * want);
        assert!(r.peak_rss_mib.is_none_or(|m| m > 1.0));
    }
}
