//! Stand-in weights for Inception-v3 from a generator `scripts/reference_inception.py`
//! implements identically (the real weights are never shipped): for a stream named NAME,
//! value k is u(k) = splitmix64(fnv1a64(NAME) + k) >> 11, scaled by 2⁻⁵³ to [0, 1), and
//! r(k) = 2u(k) − 1. Convolutions get He's uniform scale √(6 / fan_in)·r, batch norms
//! weight 1 + 0.1r, bias and mean 0.1r, variance 1 + 0.5u; the classifier √(3/2048)·r and
//! 0.01r. Random-looking values matter: a smooth formula would make every weight matrix
//! of low rank and every image's features the same.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::layout;
use crate::Result;

fn fnv1a64(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// u(0..n) of the stream `name`, in [0, 1).
pub fn uniform(name: &str, n: usize) -> Vec<f64> {
    let seed = fnv1a64(name);
    (0..n as u64)
        .map(|k| (splitmix64(seed.wrapping_add(k)) >> 11) as f64 * 2f64.powi(-53))
        .collect()
}

/// The value of tensor `name` of `shape` (see the module's formulas), in f32.
fn tensor(name: &str, shape: &[usize]) -> Vec<f32> {
    let n = shape.iter().product();
    let u = uniform(name, n);
    let r = |v: f64| 2.0 * v - 1.0;
    let f: Box<dyn Fn(f64) -> f64> = if name == "fc.weight" {
        let a = (3.0 / layout::FEATURES as f64).sqrt();
        Box::new(move |v| a * r(v))
    } else if name == "fc.bias" {
        Box::new(move |v| 0.01 * r(v))
    } else if name.ends_with("conv.weight") {
        let a = (6.0 / (shape[1] * shape[2] * shape[3]) as f64).sqrt();
        Box::new(move |v| a * r(v))
    } else if name.ends_with("bn.weight") {
        Box::new(move |v| 1.0 + 0.1 * r(v))
    } else if name.ends_with("bn.running_var") {
        Box::new(|v| 1.0 + 0.5 * v)
    } else {
        // bn.bias, bn.running_mean
        Box::new(move |v| 0.1 * r(v))
    };
    u.into_iter().map(|v| f(v) as f32).collect()
}

/// Every tensor the network reads, filled from the generator.
pub fn weights() -> Result<HashMap<String, Tensor>> {
    layout::tensors()
        .into_iter()
        .map(|(name, shape)| {
            let t = Tensor::from_vec(tensor(&name, &shape), shape, &Device::Cpu)?;
            Ok((name, t))
        })
        .collect()
}
