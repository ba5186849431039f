//! Adam, following PyTorch's `torch.optim.Adam` update to the letter (no weight decay):
//! m ← β₁ m + (1 − β₁) g; v ← β₂ v + (1 − β₂) g²;
//! p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).

use candle_core::Tensor;
use multiversion::multiversion;

use super::{Rule, Slices};
use crate::Result;
use crate::config::OptimizerConfig;

#[derive(Clone, Copy, Debug)]
pub struct Adam;

impl Rule for Adam {
    fn buffers(&self) -> &'static [&'static str] {
        &["m", "v"]
    }

    fn update(
        &self,
        c: &OptimizerConfig,
        t: u64,
        g: &Tensor,
        bufs: &mut [Tensor],
    ) -> Result<Tensor> {
        let t = t as i32;
        let step_size = c.lr / (1.0 - c.beta1.powi(t));
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let m = ((&bufs[0] * c.beta1)? + (g * (1.0 - c.beta1))?)?;
        let v = ((&bufs[1] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
        let denom = ((v.sqrt()? / bias2_sqrt)? + c.eps)?;
        let delta = ((&m / denom)? * step_size)?;
        bufs[0] = m;
        bufs[1] = v;
        Ok(delta)
    }

    fn update_in_place(&self, c: &OptimizerConfig, t: u64, mut s: Slices) {
        let t = t as i32;
        let step_size = (c.lr / (1.0 - c.beta1.powi(t))) as f32;
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt() as f32;
        let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
        let [m, v] = &mut s.bufs[..] else {
            unreachable!("Adam has two buffers")
        };
        step(s.p, s.g, m, v, [b1, b2, eps, bias2_sqrt, step_size]);
    }
}

/// The update over slices (a free function, compiled for several instruction sets).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], coefs: [f32; 5]) {
    let [b1, b2, eps, bias2_sqrt, step_size] = coefs;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = *m * b1 + g * (1.0 - b1);
        *v = *v * b2 + g * g * (1.0 - b2);
        *p -= *m / (v.sqrt() / bias2_sqrt + eps) * step_size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check;

    #[test]
    fn matches_pytorch_adam() {
        // scripts/reference_optimizers.py: Adam(lr=0.1, betas=(0.5, 0.999)).
        let cfg = OptimizerConfig {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.999,
            ..Default::default()
        };
        check(Adam, &cfg, [0.549_293_16, -1.512_640_4, 0.060_549_699]);
    }
}
