//! What a model family trains, as the generic machinery sees it: named networks (each a
//! [`ParamStore`] of weights and buffers, optionally with a weight average) and named
//! optimisers over parameter groups. Checkpoints, resume, the NaN check, learning-rate
//! rollback, weight averaging and parameter counts work on this without knowing which
//! family it is.
//!
//! Checkpoint files: `NET.safetensors` for each network, `NET_ema.safetensors` for its
//! average, `opt_GROUP.safetensors` for each optimiser (the GAN family's `g`, `d`, `opt_g`,
//! `opt_d`, `g_ema` are the names checkpoints have always had).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::config::OptimizerConfig;
use crate::nn::ParamStore;
use crate::optim::{self, Optimizer};
use crate::{Error, Result};

/// One network of a family: its variables and, when on, their moving average.
pub struct Network {
    /// Short name (`g`, `d`, `e`, `q`, ...): its checkpoint file and its key in groups.
    pub name: &'static str,
    pub params: ParamStore,
    pub ema: Option<Ema>,
}

/// An exponential moving average of a network's weights (Yazıcı et al. 2019; `[ema]`):
/// after each update of the network, every trainable weight θ̄ ← decay · θ̄ + (1 − decay) · θ,
/// and the buffers (batch norm's running statistics, spectral norm's u) are copied.
pub struct Ema {
    /// The average, a store with the network's names and shapes.
    pub params: ParamStore,
    pub decay: f64,
    /// Iterations during which the average only copies the network.
    pub start: u64,
}

impl Ema {
    /// An average over `params` (built like `source`), starting as a copy of `source`.
    pub fn new(params: ParamStore, source: &ParamStore, decay: f64, start: u64) -> Result<Ema> {
        params.assign(&source.tensors(), "the weight average")?;
        Ok(Ema {
            params,
            decay,
            start,
        })
    }

    /// Fold `source`'s current weights into the average after iteration `iteration`
    /// (1-based); up to `start` the average is a plain copy.
    pub fn update(&self, source: &ParamStore, iteration: u64) -> Result<()> {
        let current = source.tensors();
        let decay = if iteration <= self.start {
            0.0
        } else {
            self.decay
        };
        for (name, var) in self.params.vars() {
            let theta = &current[&name];
            if crate::nn::store::is_buffer(&name) || decay == 0.0 {
                var.set(theta)?;
            } else {
                let avg = ((var.as_tensor() * decay)? + (theta * (1.0 - decay))?)?;
                var.set(&avg)?;
            }
        }
        Ok(())
    }
}

/// The trainable variables an optimiser updates: whole networks, or the variables of a
/// network whose names start with a prefix (a shared body, a head).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Select {
    pub net: &'static str,
    /// Variable-name prefix; "" selects the whole network.
    pub prefix: &'static str,
}

impl Select {
    /// All of network `net`.
    pub fn all(net: &'static str) -> Select {
        Select { net, prefix: "" }
    }

    /// The variables of `net` whose names start with `prefix`.
    pub fn part(net: &'static str, prefix: &'static str) -> Select {
        Select { net, prefix }
    }
}

/// A named optimiser over a parameter group, and the learning rate its config gives.
pub struct GroupOptimizer {
    pub name: &'static str,
    pub opt: Box<dyn Optimizer>,
    /// The configured learning rate (rollbacks scale from it).
    pub base_lr: f64,
}

/// The networks and optimisers of one run.
#[derive(Default)]
pub struct Model {
    pub networks: Vec<Network>,
    pub optimizers: Vec<GroupOptimizer>,
}

impl Model {
    /// Add a network (names must be unique).
    pub fn add_network(&mut self, name: &'static str, params: ParamStore) {
        assert!(
            self.networks.iter().all(|n| n.name != name),
            "network {name} added twice"
        );
        self.networks.push(Network {
            name,
            params,
            ema: None,
        });
    }

    /// Keep a moving average of network `name` (see [`Ema`]); `store` is an empty store
    /// the caller has built the network's modules over (so they read the average).
    pub fn add_ema(&mut self, name: &str, store: ParamStore, decay: f64, start: u64) -> Result<()> {
        let net = self.network_mut(name);
        net.ema = Some(Ema::new(store, &net.params, decay, start)?);
        Ok(())
    }

    pub fn network(&self, name: &str) -> &Network {
        self.networks
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no network {name}"))
    }

    fn network_mut(&mut self, name: &str) -> &mut Network {
        self.networks
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no network {name}"))
    }

    /// The trainable variables `selects` pick, in order. A group within one network keeps
    /// the variables' own names (as checkpoints always had them); a group spanning networks
    /// names them `NET.variable`.
    pub fn group(&self, selects: &[Select]) -> Vec<(String, Var)> {
        let span = selects
            .iter()
            .any(|s| s.net != selects.first().map_or("", |f| f.net));
        let mut out = Vec::new();
        for s in selects {
            for (name, var) in self.network(s.net).params.trainable() {
                if name.starts_with(s.prefix) {
                    let key = if span {
                        format!("{}.{name}", s.net)
                    } else {
                        name
                    };
                    out.push((key, var));
                }
            }
        }
        out
    }

    /// Add optimiser `name` over the group `selects` pick, configured by `cfg`.
    pub fn add_optimizer(
        &mut self,
        name: &'static str,
        selects: &[Select],
        cfg: &OptimizerConfig,
    ) -> Result<()> {
        let params = self.group(selects);
        assert!(!params.is_empty(), "optimiser {name} has no parameters");
        self.optimizers.push(GroupOptimizer {
            name,
            opt: optim::build(params, cfg)?,
            base_lr: cfg.lr,
        });
        Ok(())
    }

    pub fn optimizer(&mut self, name: &str) -> &mut dyn Optimizer {
        self.optimizers
            .iter_mut()
            .find(|o| o.name == name)
            .map(|o| o.opt.as_mut())
            .unwrap_or_else(|| panic!("no optimiser {name}"))
    }

    /// One update of optimiser `name` from the gradients of a backward pass.
    pub fn step(&mut self, name: &str, grads: &GradStore) -> Result<()> {
        self.optimizer(name).step(grads)
    }

    /// Set every optimiser's learning rate to its configured one times `scale` (NaN
    /// rollbacks lower it).
    pub fn scale_learning_rates(&mut self, scale: f64) {
        for o in &mut self.optimizers {
            o.opt.set_lr(o.base_lr * scale);
        }
    }

    /// Fold each averaged network's weights into its average (after an update at
    /// `iteration`).
    pub fn update_ema(&self, iteration: u64) -> Result<()> {
        for n in &self.networks {
            if let Some(e) = &n.ema {
                e.update(&n.params, iteration)?;
            }
        }
        Ok(())
    }

    /// "G 771969 / D 138689": the trainable scalars of each network, for people.
    pub fn describe_params(counts: &[(&str, usize)]) -> String {
        let parts: Vec<String> = counts
            .iter()
            .map(|(net, n)| format!("{} {n}", net.to_uppercase()))
            .collect();
        parts.join(" / ")
    }

    /// Divide every layer weight of networks `names` (rank-2 or rank-4 `*.weight`, the
    /// convolutions seen as (out, in·k·k)) by its largest singular value, so each layer
    /// starts 1-Lipschitz and the product bound at ≤ 1 (report 004 §3.2). A projection's
    /// class embedding is not a layer and is left alone.
    pub fn normalize_init(&self, names: &[String]) -> Result<()> {
        for name in names {
            let Some(net) = self.networks.iter().find(|n| n.name == name.as_str()) else {
                let have: Vec<&str> = self.networks.iter().map(|n| n.name).collect();
                return Err(Error::Config(format!(
                    "model.normalized_init: no network {name:?}; this family has {have:?}"
                )));
            };
            for (var_name, var) in net.params.trainable() {
                let layer = var_name.ends_with(".weight") && !var_name.starts_with("embed.");
                if !(layer && matches!(var.rank(), 2 | 4)) {
                    continue;
                }
                let sigma = spectral_norm_exact(var.as_tensor())?;
                if sigma > 0.0 {
                    var.set(&(var.as_tensor() / sigma)?)?;
                }
            }
            // A weight average starts as a copy of the network.
            if let Some(e) = &net.ema {
                e.params
                    .assign(&net.params.tensors(), "the weight average")?;
            }
        }
        Ok(())
    }

    /// Trainable scalars per network, in order.
    pub fn param_counts(&self) -> Vec<(&'static str, usize)> {
        self.networks
            .iter()
            .map(|n| (n.name, n.params.num_params()))
            .collect()
    }

    /// The name of the first trainable weight holding a NaN or an infinity, if any.
    pub fn first_non_finite_weight(&self) -> Result<Option<String>> {
        for n in &self.networks {
            for (name, v) in n.params.trainable() {
                let sum = v
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
                if !sum.is_finite() && !finite_all(v.as_tensor())? {
                    return Ok(Some(format!("{} {name}", n.name)));
                }
            }
        }
        Ok(None)
    }

    /// Everything to checkpoint, by file name: each network, each average, each optimiser.
    pub fn checkpoint_tensors(&self) -> Result<Vec<(String, HashMap<String, Tensor>)>> {
        let mut files = Vec::new();
        for n in &self.networks {
            files.push((format!("{}.safetensors", n.name), n.params.tensors()));
        }
        for o in &self.optimizers {
            files.push((format!("opt_{}.safetensors", o.name), o.opt.state()?));
        }
        for n in &self.networks {
            if let Some(e) = &n.ema {
                files.push((format!("{}_ema.safetensors", n.name), e.params.tensors()));
            }
        }
        Ok(files)
    }

    /// Restore what [`Model::checkpoint_tensors`] saved; every file this model writes must
    /// be there, with the same names and shapes.
    pub fn restore(&mut self, files: &HashMap<String, HashMap<String, Tensor>>) -> Result<()> {
        let get = |f: &str, why: &str| {
            files
                .get(f)
                .ok_or_else(|| Error::Run(format!("checkpoint lacks {f}{why}")))
        };
        for n in &self.networks {
            let f = format!("{}.safetensors", n.name);
            n.params.assign(get(&f, "")?, &f)?;
            if let Some(e) = &n.ema {
                let f = format!("{}_ema.safetensors", n.name);
                e.params
                    .assign(get(&f, ": it was written without [ema]")?, &f)?;
            }
        }
        for o in &mut self.optimizers {
            let f = format!("opt_{}.safetensors", o.name);
            o.opt.load_state(get(&f, "")?, &f)?;
        }
        Ok(())
    }
}

/// The largest singular value of a weight seen as (out, everything else), by SVD.
pub fn spectral_norm_exact(w: &Tensor) -> Result<f64> {
    let out = w.dim(0)?;
    let v = w
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let m = nalgebra::DMatrix::from_row_slice(out, v.len() / out, &v);
    Ok(m.singular_values().max())
}

/// True when every element of `t` is finite (a sum can overflow where no element does).
fn finite_all(t: &Tensor) -> Result<bool> {
    let v = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    Ok(v.iter().all(|x| x.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::{DType, Device};

    fn store(stream: u64, names: &[&str]) -> ParamStore {
        let s = ParamStore::new(Rng::new(0, stream), &Device::Cpu);
        let vb = s.var_builder();
        for n in names {
            vb.get_with_hints(3, n, candle_nn::Init::Const(1.0))
                .unwrap();
        }
        s
    }

    #[test]
    fn groups_span_networks_and_split_them() {
        let mut m = Model::default();
        m.add_network("d", store(1, &["body.w", "head.w"]));
        m.add_network("q", store(2, &["head.w"]));
        let names = |g: Vec<(String, Var)>| g.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(m.group(&[Select::all("d")])), ["body.w", "head.w"]);
        assert_eq!(
            names(m.group(&[Select::part("d", "body."), Select::all("q")])),
            ["d.body.w", "q.head.w"]
        );
        m.add_optimizer("d", &[Select::all("d")], &Default::default())
            .unwrap();
        m.add_optimizer(
            "q",
            &[Select::part("d", "body."), Select::all("q")],
            &Default::default(),
        )
        .unwrap();
        let files: Vec<String> = m
            .checkpoint_tensors()
            .unwrap()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            files,
            [
                "d.safetensors",
                "q.safetensors",
                "opt_d.safetensors",
                "opt_q.safetensors"
            ]
        );
        m.scale_learning_rates(0.5);
        assert_eq!(m.optimizer("q").lr(), 1e-4);
        // A NaN anywhere is found and named.
        let v = &m.network("q").params.trainable()[0].1;
        v.set(&Tensor::new(&[1f32, f32::NAN, 0.0], &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(m.first_non_finite_weight().unwrap().unwrap(), "q head.w");
        let _ = DType::F32;
    }

    #[test]
    fn normalised_initialisation_gives_every_layer_spectral_norm_one() {
        for sets in [
            &["model.normalized_init=[\"d\"]"][..],
            &[
                "model.normalized_init=[\"g\", \"d\"]",
                "model.arch=mlp",
                "model.mlp_hidden=8",
            ],
            &["model.normalized_init=[\"d\"]", "model.critic=conv4"],
        ] {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let cfg = crate::config::Config::from_toml_str("", "t", &sets).unwrap();
            let f = crate::family::build(&cfg, &Device::Cpu).unwrap();
            let mut layers = 0;
            for net in &cfg.model.normalized_init {
                for (name, v) in f.model().network(net).params.trainable() {
                    if name.ends_with(".weight") && matches!(v.rank(), 2 | 4) {
                        let s = spectral_norm_exact(v.as_tensor()).unwrap();
                        assert!((s - 1.0).abs() < 1e-4, "{net} {name}: {s}");
                        layers += 1;
                    }
                }
            }
            assert!(layers >= 3, "{sets:?}");
        }
        let cfg = crate::config::Config::from_toml_str(
            "",
            "t",
            &["model.normalized_init=[\"q\"]".to_string()],
        )
        .unwrap();
        let e = crate::family::build(&cfg, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no network \"q\""), "{e}");
    }

    #[test]
    fn the_average_follows_its_formula_and_copies_buffers() {
        let mut m = Model::default();
        m.add_network("g", store(1, &["fc.weight", "bn.running_mean"]));
        m.add_ema("g", store(2, &["fc.weight", "bn.running_mean"]), 0.9, 1)
            .unwrap();
        let flat = |s: &ParamStore, n: &str| -> Vec<f32> { s.tensors()[n].to_vec1().unwrap() };
        let (g, avg) = (
            m.network("g").params.clone(),
            m.network("g").ema.as_ref().unwrap().params.clone(),
        );
        let set = |s: &ParamStore, v: [f32; 3]| {
            for (_, var) in s.vars() {
                var.set(&Tensor::new(&v, &Device::Cpu).unwrap()).unwrap();
            }
        };
        set(&g, [2.0, 4.0, 6.0]);
        m.update_ema(1).unwrap();
        assert_eq!(
            flat(&avg, "fc.weight"),
            [2.0, 4.0, 6.0],
            "up to `start` it copies"
        );
        set(&g, [12.0, 14.0, 16.0]);
        m.update_ema(2).unwrap();
        let got = flat(&avg, "fc.weight");
        for (i, want) in [3.0f32, 5.0, 7.0].iter().enumerate() {
            assert!((got[i] - want).abs() < 1e-5, "{got:?}");
        }
        assert_eq!(
            flat(&avg, "bn.running_mean"),
            [12.0, 14.0, 16.0],
            "buffers are copied"
        );
    }
}
