//! SGD with momentum, following PyTorch's `torch.optim.SGD` (no dampening, not Nesterov):
//! b ← g on the first step, then b ← μ b + g; p ← p − lr b.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::{Optimizer, StateReader, step_tensor};
use crate::Result;
use crate::config::OptimizerConfig;

pub struct Sgd {
    params: Vec<(String, Var)>,
    momentum_buf: Vec<Tensor>,
    t: u64,
    cfg: OptimizerConfig,
}

impl Sgd {
    pub fn new(params: Vec<(String, Var)>, cfg: &OptimizerConfig) -> Result<Sgd> {
        let bufs = params
            .iter()
            .map(|(_, p)| p.zeros_like())
            .collect::<candle_core::Result<_>>()?;
        Ok(Sgd {
            params,
            momentum_buf: bufs,
            t: 0,
            cfg: cfg.clone(),
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let c = &self.cfg;
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let g = g.detach();
            let update = if c.momentum > 0.0 {
                // PyTorch starts the buffer at the first gradient; a zero buffer gives the same.
                let b = ((&self.momentum_buf[i] * c.momentum)? + g)?;
                self.momentum_buf[i] = b.clone();
                b
            } else {
                g
            };
            p.set(&p.as_tensor().detach().sub(&(update * c.lr)?)?)?;
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
            out.insert(format!("momentum.{name}"), self.momentum_buf[i].clone());
        }
        out.insert("step".into(), step_tensor(self.t)?);
        Ok(out)
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        let r = StateReader { state, what };
        for (i, (name, p)) in self.params.iter().enumerate() {
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
    fn matches_pytorch_sgd_with_momentum() {
        // scripts/reference_optimizers.py: SGD(lr=0.05, momentum=0.9).
        let cfg = OptimizerConfig {
            lr: 0.05,
            momentum: 0.9,
            ..OptimizerConfig::default()
        };
        check(&|p| Box::new(Sgd::new(p, &cfg).unwrap()), REF);
    }

    const REF: [f32; 3] = [0.279_588_04, 1.476_923_8, -0.566_967_96];
}
