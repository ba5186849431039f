//! A seeded parameter store behind candle-nn's `VarBuilder`.
//!
//! Models are written in candle-nn's idiom (`vb.pp("name")`, `vb.get_with_hints`), but the
//! tensors come from a [`ParamStore`]: it initialises every new variable from its own seeded
//! [`Rng`] (candle's CPU RNG cannot be seeded), keeps them under their full dotted names, and
//! saves / loads them as safetensors, refusing any file whose names or shapes differ.
//!
//! Batch-norm running statistics and spectral norm's u vectors live in the same store (like
//! PyTorch's state dict) but are *buffers*: saved with the weights, never handed to an
//! optimiser.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, var_builder::SimpleBackend};

use crate::rng::Rng;
use crate::{Error, Result};

/// Name suffixes of non-trainable state (buffers).
const BUFFER_SUFFIXES: [&str; 3] = ["running_mean", "running_var", "weight_u"];

/// True for buffers: state saved with the weights but not trained.
pub fn is_buffer(name: &str) -> bool {
    BUFFER_SUFFIXES.iter().any(|s| name.ends_with(s))
}

struct Inner {
    rng: Rng,
    vars: BTreeMap<String, Var>,
}

/// The variables of one network (the generator or the discriminator).
#[derive(Clone)]
pub struct ParamStore {
    inner: Arc<Mutex<Inner>>,
    device: Device,
}

impl ParamStore {
    /// An empty store whose new variables are drawn from `rng`.
    pub fn new(rng: Rng, device: &Device) -> Self {
        ParamStore {
            inner: Arc::new(Mutex::new(Inner {
                rng,
                vars: BTreeMap::new(),
            })),
            device: device.clone(),
        }
    }

    /// A `VarBuilder` (f32) that creates its variables in this store.
    pub fn var_builder(&self) -> VarBuilder<'static> {
        self.var_builder_with(DType::F32)
    }

    /// A `VarBuilder` creating variables of `dtype` (f64 for gradient checks).
    pub fn var_builder_with(&self, dtype: DType) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, self.device.clone())
    }

    /// A `VarBuilder` over the existing variables with the trainable ones detached (sharing
    /// their storage, so every optimiser update shows through) and the buffers as they are.
    /// A network built from it computes the same outputs, but a backward pass through it
    /// computes no gradients for its weights: G's step runs D this way.
    pub fn frozen_var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_backend(
            Box::new(Frozen(self.clone())),
            DType::F32,
            self.device.clone(),
        )
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every variable, buffers included, by name.
    pub fn vars(&self) -> BTreeMap<String, Var> {
        self.lock().vars.clone()
    }

    /// The trainable variables (buffers excluded), sorted by name.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.lock()
            .vars
            .iter()
            .filter(|(n, _)| !is_buffer(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.trainable().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The current values as plain tensors, by name.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.lock()
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Save all variables to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::checkpoint::write_safetensors(path, &self.tensors())
    }

    /// Overwrite every variable with the tensors of `map`, which must hold exactly the same
    /// names and shapes.
    pub fn assign(&self, map: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        let inner = self.lock();
        for (name, var) in &inner.vars {
            let t = map.get(name).ok_or_else(|| {
                Error::Run(format!(
                    "{what} has no tensor `{name}`: it was written by another architecture"
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(Error::Run(format!(
                    "{what}: tensor `{name}` has shape {:?}, the model expects {:?}",
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        if let Some(extra) = map.keys().find(|k| !inner.vars.contains_key(*k)) {
            return Err(Error::Run(format!(
                "{what} has a tensor `{extra}` this model does not: it was written by another architecture"
            )));
        }
        Ok(())
    }

    /// Load the values saved by [`ParamStore::save`].
    pub fn load(&self, path: &Path) -> Result<()> {
        let map = crate::checkpoint::read_safetensors(path, &self.device)?;
        self.assign(&map, &path.display().to_string())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn init_values(rng: &mut Rng, n: usize, shape: &Shape, init: Init) -> Result<Vec<f32>> {
    Ok(match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => rng.normal_vec(n, mean as f32, stdev as f32),
        Init::Uniform { lo, up } => rng.uniform_vec(n, lo as f32, up as f32),
        Init::Kaiming { .. } => {
            // Same fan-in convention as candle-nn, drawn from our seeded RNG.
            let dims = shape.dims();
            let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
            let bound = (1.0 / fan_in as f32).sqrt();
            rng.uniform_vec(n, -bound, bound)
        }
    })
}

impl SimpleBackend for ParamStore {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut inner = self.lock();
        if let Some(v) = inner.vars.get(name) {
            if v.shape() != &s {
                candle_core::bail!(
                    "variable {name} requested with shape {s:?}, has {:?}",
                    v.shape()
                )
            }
            return Ok(v.as_tensor().clone());
        }
        let n = s.elem_count();
        let data = init_values(&mut inner.rng, n, &s, h).map_err(candle_core::Error::wrap)?;
        let t = Tensor::from_vec(data, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        inner.vars.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        match self.lock().vars.get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.lock().vars.contains_key(name)
    }
}

/// The backend of [`ParamStore::frozen_var_builder`]: existing variables only.
struct Frozen(ParamStore);

impl SimpleBackend for Frozen {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.get_unchecked(name, dtype, dev)?;
        if t.shape() != &s {
            candle_core::bail!(
                "variable {name} requested with shape {s:?}, has {:?}",
                t.shape()
            )
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        match self.0.lock().vars.get(name) {
            Some(v) if is_buffer(name) => Ok(v.as_tensor().clone()),
            Some(v) => Ok(v.as_tensor().detach()),
            None => candle_core::bail!("frozen view: no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_tensor(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_and_names_are_dotted() {
        let make = || {
            let s = ParamStore::new(Rng::new(3, 1), &Device::Cpu);
            let vb = s.var_builder();
            vb.pp("layer")
                .pp("conv")
                .get_with_hints(
                    (2, 3),
                    "weight",
                    Init::Randn {
                        mean: 0.0,
                        stdev: 0.02,
                    },
                )
                .unwrap();
            vb.pp("bn")
                .get_with_hints(3, "running_var", Init::Const(1.0))
                .unwrap();
            s
        };
        let (a, b) = (make(), make());
        let ta = a.tensors()["layer.conv.weight"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let tb = b.tensors()["layer.conv.weight"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ta, tb);
        assert_eq!(a.trainable().len(), 1, "running_var is a buffer");
        assert_eq!(a.vars().len(), 2);
    }

    #[test]
    fn assign_refuses_other_names_and_shapes() {
        let s = ParamStore::new(Rng::new(3, 1), &Device::Cpu);
        s.var_builder()
            .get_with_hints((2, 2), "w", Init::Const(0.0))
            .unwrap();
        let mut m = HashMap::new();
        m.insert(
            "w".to_string(),
            Tensor::zeros((3, 2), DType::F32, &Device::Cpu).unwrap(),
        );
        let e = s.assign(&m, "ckpt").unwrap_err().to_string();
        assert!(e.contains("shape"), "{e}");
        let mut m = HashMap::new();
        m.insert(
            "v".to_string(),
            Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
        );
        let e = s.assign(&m, "ckpt").unwrap_err().to_string();
        assert!(e.contains("no tensor `w`"), "{e}");
    }
}
