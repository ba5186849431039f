//! Evaluation during training: every `eval.every` iterations the generator's samples are
//! scored against the run's data with the evaluator (the session keeps the best-FID
//! checkpoint).

use crate::Result;
use crate::config::Config;
use crate::data::ImageSet;
use crate::evaluator::{self, EvalReport, Extractor, RealFeatures};
use crate::family::{self, Draw, Family, latent};
use crate::rng::{Rng, stream};

/// Columns added to metrics.csv when evaluation is on.
pub const COLUMNS: [&str; 4] = ["fid", "kid", "precision", "recall"];

/// The evaluator and the real features of one run.
pub struct Evaluation {
    evaluator: Box<dyn Extractor>,
    real: RealFeatures,
    n: usize,
    seed: u64,
}

impl Evaluation {
    /// Load the evaluator the config names and the features of `n` real images.
    pub fn prepare(cfg: &Config, data: &ImageSet) -> Result<Option<Evaluation>> {
        if cfg.eval.every == 0 {
            return Ok(None);
        }
        let home = evaluator::home();
        let name = match cfg.eval.evaluator.as_str() {
            "auto" => evaluator::default_for(&cfg.data),
            other => other.to_string(),
        };
        // Inception scores images rounded to 8 bits, as `gankit eval` does by default.
        let ev = evaluator::open(&home, &name, data.channels, data.size, true)?;
        let seed = cfg.train.seed;
        let real = evaluator::real_features(
            ev.as_ref(),
            data,
            cfg.eval.n,
            seed,
            Some(&home.join("cache")),
        )?;
        Ok(Some(Evaluation {
            evaluator: ev,
            real,
            n: cfg.eval.n,
            seed,
        }))
    }

    /// Score `n` fresh samples (their own random stream, evaluation mode: training is not
    /// disturbed), from the weight average when there is one.
    pub fn run(&mut self, family: &dyn Family) -> Result<EvalReport> {
        family.prepare_sampling()?;
        let classes = latent::cycle_classes(self.n, family.classes(), None);
        let draw = Draw {
            classes: classes.as_deref(),
            ..Default::default()
        };
        let mut rng = Rng::new(self.seed, stream::EVAL);
        let images = family::generate(family, self.n, &draw, &mut rng, true)?;
        evaluator::score(
            self.evaluator.as_ref(),
            &self.real,
            &images,
            self.n,
            classes.as_deref(),
            self.seed,
        )
    }
}
