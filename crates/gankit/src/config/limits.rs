//! Upper bounds on the config's sizes and counts, and a memory estimate, so that no value
//! a config or `--set` can hold makes gankit allocate without bound, overflow a size or
//! start a thread pool it cannot create. Each bound is far above any real experiment.

use super::{Arch, AttentionVariant, Config};
use crate::{Error, Result};

/// Most worker threads (`train.threads`, `--threads`).
pub const MAX_THREADS: usize = 1024;
/// Most images in a batch.
pub const MAX_BATCH: usize = 65_536;
/// Widest layer setting (`model.z_dim`, `g_width`, `d_width`).
pub const MAX_WIDTH: usize = 4096;
/// Widest MLP layer setting (`model.mlp_hidden`; the MLP's widest layer is 4× this).
pub const MAX_MLP_HIDDEN: usize = 16_384;
/// Most D or G updates per iteration.
pub const MAX_STEPS_PER_ITERATION: usize = 1000;
/// Most images scored by one evaluation (`eval.n`; `gankit eval --n` has the same bound).
pub const MAX_EVAL_IMAGES: usize = 1_000_000;
/// Most images in a sample grid (`log.grid`).
pub const MAX_GRID: usize = 10_000;

/// Check every bound; the error names the key, its value and the bound.
pub fn check(cfg: &Config) -> Result<()> {
    let (m, t) = (&cfg.model, &cfg.train);
    let bounds: [(&str, usize, usize); 10] = [
        ("train.threads", t.threads, MAX_THREADS),
        ("train.batch_size", t.batch_size, MAX_BATCH),
        ("train.d_steps", t.d_steps, MAX_STEPS_PER_ITERATION),
        ("train.g_steps", t.g_steps, MAX_STEPS_PER_ITERATION),
        ("model.z_dim", m.z_dim, MAX_WIDTH),
        ("model.g_width", m.g_width, MAX_WIDTH),
        ("model.d_width", m.d_width, MAX_WIDTH),
        ("model.mlp_hidden", m.mlp_hidden, MAX_MLP_HIDDEN),
        ("eval.n", cfg.eval.n, MAX_EVAL_IMAGES),
        ("log.grid", cfg.log.grid, MAX_GRID),
    ];
    for (key, value, max) in bounds {
        if value > max {
            return Err(Error::Config(format!(
                "{key} = {value} must be at most {max}"
            )));
        }
    }
    let need = estimated_bytes(cfg);
    if let Some(have) = total_memory() {
        if need > have {
            return Err(Error::Config(format!(
                "this config needs about {:.1} GiB for one training step (batch {}, widths G {} / D {}), and this machine has {:.1} GiB: lower train.batch_size or the model widths",
                gib(need),
                t.batch_size,
                m.g_width,
                m.d_width,
                gib(have)
            )));
        }
    }
    Ok(())
}

fn gib(b: f64) -> f64 {
    b / (1u64 << 30) as f64
}

/// A lower estimate of one training step's memory, in bytes: the activations of G and D
/// for one batch, stored for the backward pass with their gradients. It errs low (real
/// use is two to three times this), so only configs that cannot fit are refused.
pub fn estimated_bytes(cfg: &Config) -> f64 {
    let (m, d) = (&cfg.model, &cfg.data);
    let b = cfg.train.batch_size as f64;
    let pixels = (d.image_size * d.image_size) as f64;
    // Per image: the widest feature maps of each network hold about `width` channels at
    // the image's resolution (halving channels as maps double keeps each stage's size
    // near that); the MLP's layers are 1–8 × mlp_hidden wide.
    let per_image = match m.arch {
        Arch::Mlp => (8 * m.mlp_hidden) as f64 + pixels * d.channels as f64,
        _ => pixels * (m.g_width + m.d_width + d.channels) as f64,
    };
    // Self-attention maps: N × N_keys per image and layer, in G and in D.
    let maps: usize = m
        .attention
        .iter()
        .map(|&side| 2 * attention_map_bytes(1, side, m.attention_variant))
        .sum();
    // f32 values, kept for backward and matched by a gradient.
    b * (per_image * 4.0 * 2.0 + maps as f64)
}

/// Bytes of the self-attention maps (`nn::attention`) one training step holds for a batch
/// of `batch` images at a `side` × `side` map in one network: the scores, their
/// exponentials and β, each kept for the backward pass, and β's gradient (4 maps of
/// N × N_keys f32 per image; N_keys = N / 4 with the official variant's pooling).
pub fn attention_map_bytes(batch: usize, side: usize, variant: AttentionVariant) -> usize {
    let n = side * side;
    let keys = match variant {
        AttentionVariant::Paper => n,
        AttentionVariant::Official => n / 4,
    };
    4 * batch * n * keys * 4
}

/// Physical memory of this machine, where the OS says (Linux: /proc/meminfo).
fn total_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::from_toml_str("", "t", &sets)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn absurd_sizes_are_refused_naming_the_key() {
        assert!(err(&["train.threads=100000000"]).contains("train.threads = 100000000"));
        assert!(err(&["train.batch_size=1000000"]).contains("at most 65536"));
        assert!(err(&["model.z_dim=99999"]).contains("model.z_dim"));
        assert!(err(&["log.grid=20000"]).contains("log.grid"));
        assert!(err(&["train.g_steps=5000"]).contains("train.g_steps"));
    }

    #[test]
    fn a_step_larger_than_memory_is_refused_and_the_defaults_fit_easily() {
        let cfg = Config::default();
        assert!(estimated_bytes(&cfg) < 1e9, "{}", estimated_bytes(&cfg));
        if total_memory().is_some() {
            let e = err(&[
                "model.arch=dcgan64",
                "data.image_size=1024",
                "train.batch_size=65536",
                "model.g_width=4096",
            ]);
            assert!(e.contains("GiB") && e.contains("train.batch_size"), "{e}");
        }
    }
}
