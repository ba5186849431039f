//! Adam, following PyTorch's `torch.optim.Adam` update to the letter (no weight decay).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::{Optimizer, StateReader, step_tensor};
use crate::Result;
use crate::config::OptimizerConfig;

/// Adam (Kingma & Ba), PyTorch's formulation, no weight decay.
pub struct Adam {
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates done so far.
    t: u64,
    cfg: OptimizerConfig,
}

impl Adam {
    /// An optimiser over named parameters with zeroed moments.
    pub fn new(params: Vec<(String, Var)>, cfg: &OptimizerConfig) -> Result<Adam> {
        let zeros = |p: &Var| p.zeros_like();
        let m = params
            .iter()
            .map(|(_, p)| zeros(p))
            .collect::<candle_core::Result<_>>()?;
        let v = params
            .iter()
            .map(|(_, p)| zeros(p))
            .collect::<candle_core::Result<_>>()?;
        Ok(Adam {
            params,
            m,
            v,
            t: 0,
            cfg: cfg.clone(),
        })
    }
}

impl Optimizer for Adam {
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

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let c = &self.cfg;
        let t = self.t as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = c.lr / bias1;
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let g = g.detach();
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((v.sqrt()? / bias2_sqrt)? + c.eps)?;
            let update = ((&m / denom)? * step_size)?;
            p.set(&p.as_tensor().detach().sub(&update)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out.insert("step".into(), step_tensor(self.t)?);
        Ok(out)
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        let r = StateReader { state, what };
        for (i, (name, p)) in self.params.iter().enumerate() {
            self.m[i] = r.like(&format!("m.{name}"), p)?;
            self.v[i] = r.like(&format!("v.{name}"), p)?;
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
    fn matches_pytorch_adam() {
        // scripts/reference_optimizers.py: Adam(lr=0.1, betas=(0.5, 0.999)).
        let cfg = OptimizerConfig {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.999,
            ..Default::default()
        };
        check(
            &|p| Box::new(Adam::new(p, &cfg).unwrap()),
            [0.549_293_16, -1.512_640_4, 0.060_549_699],
        );
    }
}
