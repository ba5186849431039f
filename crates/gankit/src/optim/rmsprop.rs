//! RMSProp, following PyTorch's `torch.optim.RMSprop` (not centred, no weight decay):
//! v ← α v + (1 − α) g²; with momentum μ > 0, b ← μ b + g / (√v + ε) and p ← p − lr b;
//! otherwise p ← p − lr g / (√v + ε). WGAN's optimiser (seeds 000, 002).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::{Optimizer, StateReader, step_tensor};
use crate::Result;
use crate::config::OptimizerConfig;

pub struct RmsProp {
    params: Vec<(String, Var)>,
    square_avg: Vec<Tensor>,
    momentum_buf: Vec<Tensor>,
    t: u64,
    cfg: OptimizerConfig,
}

impl RmsProp {
    pub fn new(params: Vec<(String, Var)>, cfg: &OptimizerConfig) -> Result<RmsProp> {
        let zeros = || {
            params
                .iter()
                .map(|(_, p)| p.zeros_like())
                .collect::<candle_core::Result<Vec<_>>>()
        };
        Ok(RmsProp {
            square_avg: zeros()?,
            momentum_buf: zeros()?,
            params,
            t: 0,
            cfg: cfg.clone(),
        })
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let c = &self.cfg;
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let g = g.detach();
            let v = ((&self.square_avg[i] * c.alpha)? + (g.sqr()? * (1.0 - c.alpha))?)?;
            let scaled = (&g / (v.sqrt()? + c.eps)?)?;
            let update = if c.momentum > 0.0 {
                let b = ((&self.momentum_buf[i] * c.momentum)? + scaled)?;
                self.momentum_buf[i] = b.clone();
                b
            } else {
                scaled
            };
            p.set(&p.as_tensor().detach().sub(&(update * c.lr)?)?)?;
            self.square_avg[i] = v;
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("square_avg.{name}"), self.square_avg[i].clone());
            out.insert(format!("momentum.{name}"), self.momentum_buf[i].clone());
        }
        out.insert("step".into(), step_tensor(self.t)?);
        Ok(out)
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        let r = StateReader { state, what };
        for (i, (name, p)) in self.params.iter().enumerate() {
            self.square_avg[i] = r.like(&format!("square_avg.{name}"), p)?;
            self.momentum_buf[i] = r.like(&format!("momentum.{name}"), p)?;
        }
        self.t = r.step()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check;

    #[test]
    fn matches_pytorch_rmsprop() {
        // scripts/reference_optimizers.py: RMSprop(lr=0.01, alpha=0.99) and with momentum 0.9.
        for (momentum, want) in [(0.0, REF_PLAIN), (0.9, REF_MOMENTUM)] {
            let cfg = OptimizerConfig {
                lr: 0.01,
                alpha: 0.99,
                momentum,
                ..OptimizerConfig::default()
            };
            check(&|p| Box::new(RmsProp::new(p, &cfg).unwrap()), want);
        }
    }

    const REF_PLAIN: [f32; 3] = [0.706_724_35, -1.684_535_3, 0.212_753_67];
    const REF_MOMENTUM: [f32; 3] = [0.193_214_3, -1.086_546_9, -0.275_765_8];
}
