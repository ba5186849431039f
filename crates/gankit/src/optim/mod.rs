//! Optimisers whose whole state can be checkpointed, so a resumed run continues exactly.
//!
//! candle-nn has no RMSProp and no momentum SGD, and its `AdamW` keeps its moments private.
//! These follow PyTorch's update rules to the letter (`torch.optim.Adam`, `RMSprop`, `SGD`)
//! and expose their state as named tensors.

mod adam;
mod in_place;
mod rmsprop;
mod sgd;

use std::collections::HashMap;

pub use adam::Adam;
pub use in_place::Slices;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use crate::config::{OptimizerConfig, OptimizerKind};
use crate::{Error, Result};

/// An optimiser over a fixed list of named parameters.
pub trait Optimizer: Send {
    /// One update from the gradients of a backward pass. Parameters without a gradient keep
    /// their value and state.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    fn lr(&self) -> f64;
    fn set_lr(&mut self, lr: f64);
    /// Updates done so far.
    fn steps(&self) -> u64;
    /// The parameters it updates.
    fn params(&self) -> &[(String, Var)];
    /// The state as named tensors (per-parameter buffers and `step`).
    fn state(&self) -> Result<HashMap<String, Tensor>>;
    /// Restore what [`Optimizer::state`] saved; names and shapes must match.
    fn load_state(&mut self, state: &HashMap<String, Tensor>, what: &str) -> Result<()>;
}

/// The optimiser a config asks for.
pub fn build(params: Vec<(String, Var)>, cfg: &OptimizerConfig) -> Result<Box<dyn Optimizer>> {
    Ok(match cfg.kind {
        OptimizerKind::Adam => Box::new(Stateful::new(Adam, params, cfg)?),
        OptimizerKind::Rmsprop => Box::new(Stateful::new(RmsProp, params, cfg)?),
        OptimizerKind::Sgd => Box::new(Stateful::new(Sgd, params, cfg)?),
    })
}

/// One optimiser's update rule: how a gradient and the per-parameter buffers become a step.
pub trait Rule: Send + Sync {
    /// Names of the per-parameter buffers (zero at the start), as saved in checkpoints.
    fn buffers(&self) -> &'static [&'static str];
    /// The amount to subtract from a parameter at update `t` (1-based), given its gradient;
    /// updates `bufs` (in the order of [`Rule::buffers`]) in place.
    fn update(
        &self,
        cfg: &OptimizerConfig,
        t: u64,
        g: &Tensor,
        bufs: &mut [Tensor],
    ) -> Result<Tensor>;
    /// The same update done in place on a stretch of plain f32 data: the parameter, its
    /// gradient and its buffers (the CPU path; [`Rule::update`] serves other devices).
    fn update_in_place(&self, cfg: &OptimizerConfig, t: u64, s: Slices);
}

/// A [`Rule`] with its parameters, buffers and step count: the checkpointable optimiser.
pub struct Stateful<R: Rule> {
    rule: R,
    params: Vec<(String, Var)>,
    /// `bufs[i][k]`: buffer k of parameter i.
    bufs: Vec<Vec<Tensor>>,
    t: u64,
    cfg: OptimizerConfig,
}

impl<R: Rule> Stateful<R> {
    /// An optimiser over named parameters with zeroed buffers.
    pub fn new(rule: R, params: Vec<(String, Var)>, cfg: &OptimizerConfig) -> Result<Self> {
        let n = rule.buffers().len();
        let bufs = params
            .iter()
            .map(|(_, p)| {
                (0..n)
                    .map(|_| p.zeros_like())
                    .collect::<candle_core::Result<Vec<_>>>()
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Stateful {
            rule,
            params,
            bufs,
            t: 0,
            cfg: cfg.clone(),
        })
    }
}

impl<R: Rule> Optimizer for Stateful<R> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let (rule, cfg, t) = (&self.rule, &self.cfg, self.t);
            let fused = |s: Slices| rule.update_in_place(cfg, t, s);
            if in_place::update(p.as_tensor(), g, &self.bufs[i], &fused)? {
                continue;
            }
            let delta = self
                .rule
                .update(&self.cfg, self.t, &g.detach(), &mut self.bufs[i])?;
            p.set(&p.as_tensor().detach().sub(&delta)?)?;
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
            for (k, buf) in self.rule.buffers().iter().enumerate() {
                // A copy: the buffers are updated in place after this returns.
                out.insert(format!("{buf}.{name}"), self.bufs[i][k].copy()?);
            }
        }
        // The update count as two u32 halves (high, low), so that it round-trips exactly.
        let t = self.t;
        out.insert(
            "step".into(),
            Tensor::new(&[(t >> 32) as u32, t as u32], &Device::Cpu)?,
        );
        Ok(out)
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        let r = StateReader { state, what };
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (k, buf) in self.rule.buffers().iter().enumerate() {
                self.bufs[i][k] = r.like(&format!("{buf}.{name}"), p)?;
            }
        }
        self.t = r.step()?;
        Ok(())
    }
}

/// Checked access to a saved optimiser state.
struct StateReader<'a> {
    state: &'a HashMap<String, Tensor>,
    what: &'a str,
}

impl StateReader<'_> {
    /// The tensor `key`, which must have the shape of `like`, on its device.
    fn like(&self, key: &str, like: &Var) -> Result<Tensor> {
        let t = self.state.get(key).ok_or_else(|| {
            Error::Run(format!(
                "{} has no `{key}`: it belongs to another model or optimiser",
                self.what
            ))
        })?;
        if t.dims() != like.dims() {
            return Err(Error::Run(format!(
                "{}: `{key}` has shape {:?}, expected {:?}",
                self.what,
                t.dims(),
                like.dims()
            )));
        }
        // A copy of its own: the optimiser updates its buffers in place.
        Ok(t.to_dtype(DType::F32)?.to_device(like.device())?.copy()?)
    }

    fn step(&self) -> Result<u64> {
        let step = self
            .state
            .get("step")
            .ok_or_else(|| Error::Run(format!("{} has no `step`", self.what)))?
            .to_dtype(DType::U32)?
            .to_vec1::<u32>()?;
        match step[..] {
            [hi, lo] => Ok(((hi as u64) << 32) | lo as u64),
            _ => Err(Error::Run(format!("{}: malformed `step`", self.what))),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A quadratic problem shared by the optimisers' tests (scripts/reference_optimizers.py
    //! runs the same one in PyTorch).
    use super::*;

    /// Run `steps` updates of loss = Σ (p − [0.3, 0.2, −0.1])² · [1, 2, 3] from p = [1, −2, 0.5].
    pub fn quadratic(opt: &mut dyn Optimizer, p: &Var, steps: usize) {
        let target = Tensor::new(&[0.3f32, 0.2, -0.1], &Device::Cpu).unwrap();
        let w = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
        for _ in 0..steps {
            let loss = (p.as_tensor().sub(&target).unwrap().sqr().unwrap() * &w)
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
    }

    pub fn start() -> Var {
        Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap()
    }

    /// Check a trajectory against reference values, and that saving after 3 steps and
    /// restoring into a fresh optimiser gives the same 5-step result bit for bit.
    pub fn check<R: Rule + Clone + 'static>(rule: R, cfg: &OptimizerConfig, want: [f32; 3]) {
        let make = |p: Vec<(String, Var)>| -> Box<dyn Optimizer> {
            Box::new(Stateful::new(rule.clone(), p, cfg).unwrap())
        };
        let p = start();
        let mut opt = make(vec![("p".into(), p.clone())]);
        quadratic(opt.as_mut(), &p, 5);
        let got = p.to_vec1::<f32>().unwrap();
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert_eq!(opt.steps(), 5);

        let p3 = start();
        let mut o3 = make(vec![("p".into(), p3.clone())]);
        quadratic(o3.as_mut(), &p3, 3);
        let q = Var::new(&p3.to_vec1::<f32>().unwrap()[..], &Device::Cpu).unwrap();
        let mut resumed = make(vec![("p".into(), q.clone())]);
        resumed.load_state(&o3.state().unwrap(), "state").unwrap();
        quadratic(resumed.as_mut(), &q, 2);
        assert_eq!(
            q.to_vec1::<f32>().unwrap(),
            got,
            "resumed trajectory differs"
        );
    }
}
