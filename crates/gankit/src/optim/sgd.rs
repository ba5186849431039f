//! SGD with momentum, following PyTorch's `torch.optim.SGD` (no dampening, not Nesterov):
//! b ← g on the first step, then b ← μ b + g; p ← p − lr b.

use candle_core::Tensor;

use super::{Rule, Slices};
use crate::Result;
use crate::config::OptimizerConfig;

#[derive(Clone, Copy, Debug)]
pub struct Sgd;

impl Rule for Sgd {
    fn buffers(&self) -> &'static [&'static str] {
        &["momentum"]
    }

    fn update(
        &self,
        c: &OptimizerConfig,
        _t: u64,
        g: &Tensor,
        bufs: &mut [Tensor],
    ) -> Result<Tensor> {
        let step = if c.momentum > 0.0 {
            // PyTorch starts the buffer at the first gradient; a zero buffer gives the same.
            let b = ((&bufs[0] * c.momentum)? + g)?;
            bufs[0] = b.clone();
            b
        } else {
            g.clone()
        };
        Ok((step * c.lr)?)
    }

    fn update_in_place(&self, c: &OptimizerConfig, _t: u64, mut s: Slices) {
        let (lr, mu) = (c.lr as f32, c.momentum as f32);
        let [b] = &mut s.bufs[..] else {
            unreachable!("SGD has one buffer")
        };
        for ((p, &g), b) in s.p.iter_mut().zip(s.g).zip(b.iter_mut()) {
            let step = if mu > 0.0 {
                *b = *b * mu + g;
                *b
            } else {
                g
            };
            *p -= step * lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check;

    #[test]
    fn matches_pytorch_sgd_with_momentum() {
        // scripts/reference_optimizers.py: SGD(lr=0.05, momentum=0.9).
        let cfg = OptimizerConfig {
            lr: 0.05,
            momentum: 0.9,
            ..OptimizerConfig::default()
        };
        check(Sgd, &cfg, [0.279_588_04, 1.476_923_8, -0.566_967_96]);
    }
}
