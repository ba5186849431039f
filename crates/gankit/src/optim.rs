//! Optimisers whose whole state can be checkpointed, so a resumed run continues exactly.
//!
//! candle-nn's `AdamW` keeps its moments private; this Adam follows PyTorch's `torch.optim.Adam`
//! update to the letter and exposes its moments and step count as named tensors.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::config::OptimizerConfig;
use crate::{Error, Result};

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

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.cfg.lr
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// Updates done so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// One update from the gradients of a backward pass. Parameters without a gradient keep
    /// their value and moments.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
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

    /// The state as named tensors: `m.<param>`, `v.<param>`, and `step`, the update count as
    /// two u32 halves (high, low) so that it round-trips exactly.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        let dev = self
            .m
            .first()
            .map(|t| t.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        let halves = [(self.t >> 32) as u32, self.t as u32];
        out.insert("step".into(), Tensor::new(&halves, &dev)?);
        Ok(out)
    }

    /// Restore what [`Adam::state`] saved; names and shapes must match.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        let get = |k: &str, like: &Var| -> Result<Tensor> {
            let t = state.get(k).ok_or_else(|| {
                Error::Run(format!("{what} has no `{k}`: it belongs to another model"))
            })?;
            if t.dims() != like.dims() {
                return Err(Error::Run(format!(
                    "{what}: `{k}` has shape {:?}, expected {:?}",
                    t.dims(),
                    like.dims()
                )));
            }
            Ok(t.to_dtype(DType::F32)?.to_device(like.device())?)
        };
        for (i, (name, p)) in self.params.iter().enumerate() {
            self.m[i] = get(&format!("m.{name}"), p)?;
            self.v[i] = get(&format!("v.{name}"), p)?;
        }
        let step = state
            .get("step")
            .ok_or_else(|| Error::Run(format!("{what} has no `step`")))?
            .to_dtype(DType::U32)?
            .to_vec1::<u32>()?;
        if step.len() != 2 {
            return Err(Error::Run(format!("{what}: malformed `step`")));
        }
        self.t = ((step[0] as u64) << 32) | step[1] as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Reference trajectory from PyTorch: scripts/reference_adam.py.
    use super::*;
    use candle_core::Device;

    fn quadratic_run(steps: usize) -> (Var, Adam) {
        let p = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let cfg = OptimizerConfig {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.999,
            ..Default::default()
        };
        let mut opt = Adam::new(vec![("p".into(), p.clone())], &cfg).unwrap();
        let target = Tensor::new(&[0.3f32, 0.2, -0.1], &Device::Cpu).unwrap();
        for _ in 0..steps {
            // loss = sum((p − target)² · [1, 2, 3])
            let w = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
            let loss = (p.as_tensor().sub(&target).unwrap().sqr().unwrap() * w)
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        (p, opt)
    }

    #[test]
    fn matches_pytorch_adam_trajectory() {
        // torch.optim.Adam([p], lr=0.1, betas=(0.5, 0.999)) on the same loss, 5 steps.
        let want = [0.549_293_16f32, -1.512_640_4, 0.060_549_699];
        let (p, opt) = quadratic_run(5);
        let got = p.to_vec1::<f32>().unwrap();
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert_eq!(opt.steps(), 5);
    }

    #[test]
    fn state_round_trip_continues_exactly() {
        let (p, opt) = quadratic_run(3);
        let state = opt.state().unwrap();
        let (p5, _) = quadratic_run(5);
        // Restore into a fresh optimiser at the 3-step point and do 2 more steps.
        let q = Var::new(&p.to_vec1::<f32>().unwrap()[..], &Device::Cpu).unwrap();
        let mut opt2 = Adam::new(vec![("p".into(), q.clone())], &opt.cfg).unwrap();
        opt2.load_state(&state, "s").unwrap();
        let target = Tensor::new(&[0.3f32, 0.2, -0.1], &Device::Cpu).unwrap();
        for _ in 0..2 {
            let w = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
            let loss = (q.as_tensor().sub(&target).unwrap().sqr().unwrap() * w)
                .unwrap()
                .sum_all()
                .unwrap();
            opt2.step(&loss.backward().unwrap()).unwrap();
        }
        assert_eq!(q.to_vec1::<f32>().unwrap(), p5.to_vec1::<f32>().unwrap());
    }
}
