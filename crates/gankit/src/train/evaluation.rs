//! Evaluation during training: every `eval.every` iterations the generator's samples are
//! scored against the run's data with the evaluator, and the best-FID checkpoint is kept.

use crate::Result;
use crate::config::Config;
use crate::data::ImageSet;
use crate::evaluator::{self, EvalReport, Evaluator, RealFeatures};
use crate::nets::Nets;
use crate::rng::{Rng, stream};

/// Columns added to metrics.csv when evaluation is on.
pub const COLUMNS: [&str; 4] = ["fid", "kid", "precision", "recall"];

/// The evaluator and the real features of one run.
pub struct Evaluation {
    evaluator: Evaluator,
    real: RealFeatures,
    n: usize,
    seed: u64,
    /// Lowest FID so far.
    pub best_fid: Option<f64>,
}

impl Evaluation {
    /// Load the evaluator the config names and the features of `n` real images.
    pub fn prepare(
        cfg: &Config,
        data: &ImageSet,
        best_fid: Option<f64>,
    ) -> Result<Option<Evaluation>> {
        if cfg.eval.every == 0 {
            return Ok(None);
        }
        let home = evaluator::home();
        let name = match cfg.eval.evaluator.as_str() {
            "auto" => evaluator::default_for(&cfg.data),
            other => other.to_string(),
        };
        let ev = Evaluator::open(&home, &name, data.channels, data.size)?;
        let seed = cfg.train.seed;
        let real =
            evaluator::real_features(&ev, data, cfg.eval.n, seed, Some(&home.join("cache")))?;
        Ok(Some(Evaluation {
            evaluator: ev,
            real,
            n: cfg.eval.n,
            seed,
            best_fid,
        }))
    }

    /// Score `n` fresh samples (their own random stream, evaluation mode: training is not
    /// disturbed). Returns the report and whether its FID is the best so far.
    pub fn run(&mut self, nets: &Nets) -> Result<(EvalReport, bool)> {
        nets.refresh_ema_statistics()?;
        let images = nets.generate(self.n, None, &mut Rng::new(self.seed, stream::EVAL))?;
        let classes = nets.sample_classes(self.n, None);
        let report = evaluator::score(
            &self.evaluator,
            &self.real,
            &images,
            self.n,
            classes.as_deref(),
            self.seed,
        )?;
        let best = self.best_fid.is_none_or(|b| report.fid < b);
        if best {
            self.best_fid = Some(report.fid);
        }
        Ok((report, best))
    }
}
