//! RMSProp, following PyTorch's `torch.optim.RMSprop` (not centred, no weight decay):
//! v ← α v + (1 − α) g²; with momentum μ > 0, b ← μ b + g / (√v + ε) and p ← p − lr b;
//! otherwise p ← p − lr g / (√v + ε). WGAN's optimiser (reports 000, 002).

use candle_core::Tensor;

use super::{Rule, Slices};
use crate::Result;
use crate::config::OptimizerConfig;

#[derive(Clone, Copy, Debug)]
pub struct RmsProp;

impl Rule for RmsProp {
    fn buffers(&self) -> &'static [&'static str] {
        &["square_avg", "momentum"]
    }

    fn update(
        &self,
        c: &OptimizerConfig,
        _t: u64,
        g: &Tensor,
        bufs: &mut [Tensor],
    ) -> Result<Tensor> {
        let v = ((&bufs[0] * c.alpha)? + (g.sqr()? * (1.0 - c.alpha))?)?;
        let mut step = (g / (v.sqrt()? + c.eps)?)?;
        if c.momentum > 0.0 {
            step = ((&bufs[1] * c.momentum)? + step)?;
            bufs[1] = step.clone();
        }
        bufs[0] = v;
        Ok((step * c.lr)?)
    }

    fn update_in_place(&self, c: &OptimizerConfig, _t: u64, mut s: Slices) {
        let (alpha, eps, lr, mu) = (c.alpha as f32, c.eps as f32, c.lr as f32, c.momentum as f32);
        let [v, b] = &mut s.bufs[..] else {
            unreachable!("RMSProp has two buffers")
        };
        for (((p, &g), v), b) in s.p.iter_mut().zip(s.g).zip(v.iter_mut()).zip(b.iter_mut()) {
            *v = *v * alpha + g * g * (1.0 - alpha);
            let mut step = g / (v.sqrt() + eps);
            if mu > 0.0 {
                step += *b * mu;
                *b = step;
            }
            *p -= step * lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check;

    #[test]
    fn matches_pytorch_rmsprop() {
        // scripts/reference_optimizers.py: RMSprop(lr=0.01, alpha=0.99), then momentum 0.9.
        for (momentum, want) in [(0.0, REF_PLAIN), (0.9, REF_MOMENTUM)] {
            let cfg = OptimizerConfig {
                lr: 0.01,
                alpha: 0.99,
                momentum,
                ..OptimizerConfig::default()
            };
            check(RmsProp, &cfg, want);
        }
    }

    const REF_PLAIN: [f32; 3] = [0.706_724_35, -1.684_535_3, 0.212_753_67];
    const REF_MOMENTUM: [f32; 3] = [0.193_214_3, -1.086_546_9, -0.275_765_8];
}
