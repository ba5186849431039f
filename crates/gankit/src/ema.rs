//! An exponential moving average of the generator's weights (`[ema]`): after each iteration
//! with a G update, every trainable weight θ̄ ← decay · θ̄ + (1 − decay) · θ, and the buffers
//! (batch norm's running statistics) are copied. Samples and evaluation use the average.

use candle_core::Tensor;

use crate::Result;
use crate::models::Generator;
use crate::nn::ParamStore;

/// The averaged generator and its weights.
pub struct Ema {
    pub g: Box<dyn Generator>,
    pub params: ParamStore,
    decay: f64,
    start: u64,
}

impl Ema {
    /// An average over `params`, a store built like G's (same names and shapes), and the
    /// generator `g` reading it. It starts as a copy of `source`.
    pub fn new(
        g: Box<dyn Generator>,
        params: ParamStore,
        source: &ParamStore,
        decay: f64,
        start: u64,
    ) -> Result<Ema> {
        params.assign(&source.tensors(), "the EMA copy of G")?;
        Ok(Ema {
            g,
            params,
            decay,
            start,
        })
    }

    /// Fold G's current weights (`source`) into the average after iteration `iteration`
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
                var.set(&average(var.as_tensor(), theta, decay)?)?;
            }
        }
        Ok(())
    }
}

/// decay · avg + (1 − decay) · theta.
fn average(avg: &Tensor, theta: &Tensor, decay: f64) -> candle_core::Result<Tensor> {
    (avg * decay)? + (theta * (1.0 - decay))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::models;
    use crate::rng::Rng;
    use candle_core::Device;

    fn store_and_g(cfg: &Config, stream: u64) -> (ParamStore, Box<dyn Generator>) {
        let s = ParamStore::new(Rng::new(0, stream), &Device::Cpu);
        let g = models::build_generator(cfg, s.var_builder()).unwrap();
        (s, g)
    }

    fn flat(store: &ParamStore, name: &str) -> Vec<f32> {
        store.tensors()[name]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn the_update_equals_its_formula_and_buffers_are_copied() {
        let cfg = Config::from_toml_str("[model]\ng_width = 4", "t", &[]).unwrap();
        let (g_store, _) = store_and_g(&cfg, 1);
        let (e_store, e_g) = store_and_g(&cfg, 2);
        let ema = Ema::new(e_g, e_store.clone(), &g_store, 0.9, 1).unwrap();
        assert_eq!(flat(&e_store, "fc.weight"), flat(&g_store, "fc.weight"));
        let before = flat(&e_store, "fc.weight");
        // Move G's weights and a buffer.
        for (name, var) in g_store.vars() {
            var.set(&(var.as_tensor() + 1.0).unwrap()).unwrap();
            let _ = name;
        }
        ema.update(&g_store, 1).unwrap();
        assert_eq!(
            flat(&e_store, "fc.weight"),
            flat(&g_store, "fc.weight"),
            "up to `start` it copies"
        );
        let avg_before = flat(&e_store, "fc.weight");
        for (_, var) in g_store.vars() {
            var.set(&(var.as_tensor() * 2.0).unwrap()).unwrap();
        }
        ema.update(&g_store, 2).unwrap();
        let theta = flat(&g_store, "fc.weight");
        let got = flat(&e_store, "fc.weight");
        for i in 0..got.len() {
            let want = 0.9 * avg_before[i] as f64 + 0.1 * theta[i] as f64;
            assert!(
                (got[i] as f64 - want).abs() < 1e-6,
                "{i}: {} vs {want}",
                got[i]
            );
        }
        assert_ne!(got, before);
        assert_eq!(
            flat(&e_store, "bn0.running_mean"),
            flat(&g_store, "bn0.running_mean"),
            "buffers are copied"
        );
    }
}
