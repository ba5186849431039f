//! The training loop, generic over the model family.
//!
//! One iteration: `d_steps` times { next real batch → `Family::d_step` }, then `g_steps`
//! times `Family::g_step` (on every `g_every`-th iteration); then logging, sample grids
//! and checkpoints on their schedules. A [`Session`] is created by [`Session::start`] (a
//! new run) or [`Session::resume`] (from the newest checkpoint of a run), and
//! [`Session::run`] drives it to the end or until `stop` is raised, which saves a
//! checkpoint first. Everything it checkpoints is the family's [`Model`] and one
//! [`RunState`].

mod board;
mod evaluation;
mod run_dir;

pub use run_dir::{RunDir, default_name, run_path};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::checkpoint::{self, CheckpointState, RunState};
use crate::config::{Config, GEveryUnit, OnNan};
use crate::data::{self, Batcher, ImageSet};
use crate::error::IoContext;
use crate::family::{self, Draw, Family, Model, latent};
use crate::objectives::{RealBatch, Stats};
use crate::report::{gif, grid, histogram, metrics, metrics::MetricsLog, plot};
use crate::rng::{Rng, stream};
use crate::{Error, Result};
use evaluation::Evaluation;

/// What the loop tells its caller (a progress bar, a log, a test).
pub trait Observer {
    /// Once, before the first iteration.
    fn started(&mut self, _info: &RunInfo) {}
    /// After every iteration, with that iteration's statistics.
    fn iteration(&mut self, _step: u64, _stats: &[(&'static str, f64)]) {}
    /// A notable event (checkpoint written, sample grid, ...).
    fn note(&mut self, _msg: &str) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Facts about a run, given to [`Observer::started`].
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_dir: std::path::PathBuf,
    pub data_source: String,
    pub images: usize,
    pub start_step: u64,
    pub total_steps: u64,
    /// Trainable parameters of each network, by name (`g`, `d`, ...).
    pub params: Vec<(&'static str, usize)>,
    /// What the data pipeline served when measured at start, and from where.
    pub pipeline: data::throughput::Throughput,
    pub pipeline_mode: &'static str,
    /// Seconds the session spent on data before the first iteration: loading (or decoding,
    /// or mapping the cache) and measuring the pipeline. A command's start-up is its time to
    /// the first iteration less these.
    pub data_seconds: f64,
}

/// How [`Session::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All `train.steps` iterations are done.
    Finished,
    /// `stop` was raised; a checkpoint was written at this step.
    Stopped(u64),
}

/// A real batch (batch_size, C, H, W) from the batcher's flat pixels, with its labels in a
/// conditional run.
fn real_batch(cfg: &Config, batch: data::Batch, device: &Device) -> Result<RealBatch> {
    let (b, c, s) = (cfg.train.batch_size, cfg.data.channels, cfg.data.image_size);
    let images = Tensor::from_vec(batch.images, (b, c, s, s), device)?;
    let epoch = batch.epoch;
    let labels = match (cfg.model.classes, batch.labels) {
        (0, _) => None,
        (_, Some(l)) => {
            let l: Vec<u32> = l.into_iter().map(u32::from).collect();
            Some(Tensor::new(l.as_slice(), device)?)
        }
        (_, None) => return Err(Error::Data("a conditional run needs labelled data".into())),
    };
    Ok(RealBatch {
        images,
        labels,
        epoch,
    })
}

/// The update steps of one iteration (1-based `iteration`): `d_steps` discriminator-side
/// steps, each on a batch from `next_real`, then `g_steps` generator-side steps when
/// `iteration` is a multiple of `g_every`, after which the weight averages are updated.
/// Returns the averaged statistics and the last real batch. Shared by the training loop and
/// the benchmark, so both time the same work.
pub fn iteration_steps(
    family: &mut dyn Family,
    next_real: &mut dyn FnMut() -> Result<RealBatch>,
    rng: &mut Rng,
    t: &crate::config::TrainConfig,
    iteration: u64,
) -> Result<(Stats, RealBatch)> {
    family.begin_iteration(iteration);
    let mut stats = Stats::new();
    let mut real = None;
    for _ in 0..t.d_steps {
        let r = next_real()?;
        merge(&mut stats, family.d_step(&r, rng)?, t.d_steps);
        real = Some(r);
    }
    let real = real.expect("d_steps ≥ 1");
    // Iterations without a G update (train.g_every > 1) log NaN for G's columns.
    let g_now = match t.g_every_unit {
        GEveryUnit::Iterations => iteration % t.g_every == 0,
        GEveryUnit::Epochs => real.epoch % t.g_every == 0,
    };
    if g_now {
        for _ in 0..t.g_steps {
            let s = family.g_step(&real, rng)?;
            merge(&mut stats, s, t.g_steps);
        }
        family.model().update_ema(iteration)?;
    }
    Ok((stats, real))
}

/// A run in progress.
pub struct Session {
    cfg: Config,
    dir: RunDir,
    family: Box<dyn Family>,
    data: Arc<ImageSet>,
    batcher: Batcher,
    /// The run's state; its `rng` and `batches` are refreshed from `rng` and `batcher`
    /// when a checkpoint is written ([`Session::run_state`]).
    state: RunState,
    /// The noise / dropout generator, at `state.rng` when the session was made.
    rng: Rng,
    /// The generator's input for the sample grids (one fixed batch).
    fixed_latent: Tensor,
    metrics: MetricsLog,
    /// Fingerprint of RUN/config.toml, stored in each checkpoint.
    config_hash: String,
    evaluation: Option<Evaluation>,
    /// The data pipeline's throughput, measured before the run's batcher started.
    pipeline: data::throughput::Throughput,
    /// Seconds spent loading the data and measuring the pipeline ([`RunInfo::data_seconds`]).
    data_seconds: f64,
    /// The TensorBoard event file, with `log.tensorboard`.
    board: Option<board::Board>,
}

/// The run's images, and the seconds loading them took.
fn load_timed(
    cfg: &Config,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Arc<ImageSet>, f64)> {
    let t0 = std::time::Instant::now();
    let data = Arc::new(data::load_with(&cfg.data, progress)?);
    Ok((data, t0.elapsed().as_secs_f64()))
}

/// The state of iteration 0 of a new run.
fn fresh_state(cfg: &Config) -> RunState {
    RunState {
        step: 0,
        batches: 0,
        rng: Rng::new(cfg.train.seed, stream::NOISE).state(cfg.train.seed),
        elapsed_s: 0.0,
        best_fid: None,
        lr_scale: 1.0,
        rollbacks: 0,
        pretrained: false,
    }
}

/// Iterations after which a run reports what its step consumes beside what the pipeline
/// serves.
const CONSUMPTION_AFTER: u64 = 20;

/// Columns of D's Lipschitz tracking, when `log.lipschitz_every` > 0.
const LIPSCHITZ_COLUMNS: [&str; 2] = ["lipschitz_bound", "max_grad_norm"];

fn metric_columns(family: &dyn Family, cfg: &Config) -> Vec<String> {
    let mut cols: Vec<String> = metrics::BASE_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    cols.extend(family.columns().iter().map(|s| s.to_string()));
    if cfg.log.lipschitz_every > 0 {
        cols.extend(LIPSCHITZ_COLUMNS.iter().map(|s| s.to_string()));
    }
    if cfg.eval.every > 0 {
        cols.extend(evaluation::COLUMNS.iter().map(|s| s.to_string()));
    }
    cols.push(metrics::WALL_COLUMN.to_string());
    cols
}

/// Whether a metrics.csv column is one the trainer adds around a family's own (the
/// bookkeeping of [`metric_columns`], the Lipschitz estimates, the evaluation), rather than
/// one of the objective's losses and statistics.
pub fn is_trainer_column(name: &str) -> bool {
    metrics::BASE_COLUMNS.contains(&name)
        || name == metrics::WALL_COLUMN
        || LIPSCHITZ_COLUMNS.contains(&name)
        || evaluation::COLUMNS.contains(&name)
}

/// Refuse a checkpoint whose state cannot belong to `cfg`'s run.
fn check_resumable(st: &RunState, cfg: &Config, path: &std::path::Path) -> Result<()> {
    if st.rng.seed != cfg.train.seed || st.rng.stream != stream::NOISE {
        return Err(Error::Run(format!(
            "{}: its noise generator (seed {}, stream {}) is not this run's (seed {}): the checkpoint is damaged or from another run",
            path.display(),
            st.rng.seed,
            st.rng.stream,
            cfg.train.seed
        )));
    }
    if st.step > cfg.train.steps {
        return Err(Error::Run(format!(
            "{} is at iteration {}, past train.steps = {}: the checkpoint is damaged or from another run",
            path.display(),
            st.step,
            cfg.train.steps
        )));
    }
    Ok(())
}

impl Session {
    /// Start a new run of `cfg` in `dir` (created; must not hold a run already).
    pub fn start(cfg: Config, dir: RunDir, device: &Device) -> Result<Session> {
        Self::start_with(cfg, dir, device, &mut |_, _| {})
    }

    /// [`Session::start`], reporting (decoded, total) to `progress` while an image folder
    /// is decoded into its cache.
    pub fn start_with(
        cfg: Config,
        dir: RunDir,
        device: &Device,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Session> {
        family::check(&cfg)?;
        let data = load_timed(&cfg, progress)?;
        // Built before the run directory exists, so a model that cannot be built leaves none.
        let family = family::build(&cfg, device)?;
        dir.create(&cfg)?;
        crate::fault::point("start");
        let state = fresh_state(&cfg);
        Self::assemble(cfg, dir, family, data, state, false)
    }

    /// Continue the run in `dir` from its newest checkpoint. A run stopped before its first
    /// checkpoint (killed early) has nothing to lose: it starts again from iteration 0 in
    /// the same directory, with its config.toml.
    pub fn resume(dir: RunDir, device: &Device) -> Result<Session> {
        Self::resume_with(dir, device, &mut |_, _| {})
    }

    /// [`Session::resume`], reporting (decoded, total) to `progress` while an image folder
    /// is decoded into its cache (when the cache is missing, stale or damaged).
    pub fn resume_with(
        dir: RunDir,
        device: &Device,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Session> {
        let cfg = dir.load_config()?;
        crate::fault::point("start");
        dir.remove_stale_temporaries()?;
        family::check(&cfg)?;
        if checkpoint::list(&dir.checkpoints())?.is_empty() {
            let data = load_timed(&cfg, progress)?;
            let family = family::build(&cfg, device)?;
            let state = fresh_state(&cfg);
            return Self::assemble(cfg, dir, family, data, state, true);
        }
        checkpoint::recover(&dir.checkpoints(), checkpoint::BEST)?;
        let loaded = checkpoint::load(&dir.checkpoints(), None, device)?;
        let st = &loaded.state;
        let config_hash = dir.config_fingerprint()?;
        if st.config_hash != config_hash {
            // Checkpoints since this field exist carry their config: name what changed.
            let named = st
                .config
                .as_deref()
                .and_then(|t| Config::from_toml_str(t, "checkpoint", &[]).ok())
                .map(|saved| crate::config::differences(&saved, &cfg))
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({})", d.join(", ")))
                .unwrap_or_default();
            return Err(Error::Config(format!(
                "{} does not match checkpoint {}{named}: the config was changed after the run started, or the checkpoint comes from another run; restore the config or start a new run",
                dir.config().display(),
                loaded.path.display()
            )));
        }
        check_resumable(&st.run, &cfg, &loaded.path)?;
        let data = load_timed(&cfg, progress)?;
        let mut family = family::build(&cfg, device)?;
        family.model_mut().restore(&loaded.tensors)?;
        Self::assemble(cfg, dir, family, data, st.run.clone(), true)
    }

    /// Build a session at `state`; a resumed one cuts metrics.csv back to `state.step`.
    fn assemble(
        cfg: Config,
        dir: RunDir,
        mut family: Box<dyn Family>,
        (data, mut data_seconds): (Arc<ImageSet>, f64),
        state: RunState,
        resumed: bool,
    ) -> Result<Session> {
        let keep_metrics_through = resumed.then_some(state.step);
        if resumed {
            // Grids after the checkpoint are drawn again as the run reaches them.
            gif::keep_through(&dir.samples_gif(), &dir.sample_grids_through(state.step))?;
        }
        family.at_step(state.step);
        if data.channels != cfg.data.channels || data.size != cfg.data.image_size {
            return Err(Error::Data(
                "loaded images do not match data.channels / image_size".into(),
            ));
        }
        check_labels(&cfg, &data)?;
        let seed = cfg.train.seed;
        let plan = data::class_plan(&cfg, &data);
        // Measured before the run's batcher starts decoding, so the two do not compete.
        let measuring = std::time::Instant::now();
        let pipeline = data::throughput::measure(
            &data,
            cfg.train.batch_size,
            std::time::Duration::from_millis(250),
            8,
        )?;
        data_seconds += measuring.elapsed().as_secs_f64();
        let batcher = Batcher::with_plan(
            data.clone(),
            cfg.train.batch_size,
            seed,
            state.batches,
            plan,
        )?;
        let evaluation = Evaluation::prepare(&cfg, &data)?;
        // One class (or categorical code) per row of the grid, in a family with them.
        let grid_classes = latent::grid_classes(cfg.log.grid, family.classes());
        let grid_codes = latent::grid_classes(cfg.log.grid, family.codes());
        let fixed_latent = family.latent(
            cfg.log.grid,
            &Draw {
                classes: grid_classes.as_deref(),
                codes: grid_codes.as_deref(),
                truncation: None,
            },
            &mut Rng::new(seed, stream::FIXED_NOISE),
        )?;
        let metrics = MetricsLog::open(
            &dir.metrics(),
            metric_columns(family.as_ref(), &cfg),
            keep_metrics_through,
        )?;
        let config_hash = dir.config_fingerprint()?;
        family.model_mut().scale_learning_rates(state.lr_scale);
        let columns = metric_columns(family.as_ref(), &cfg);
        let board = board::Board::for_run(&cfg, &dir.tensorboard(), state.step, columns)?;
        Ok(Session {
            rng: Rng::from_state(&state.rng)?,
            state,
            cfg,
            config_hash,
            dir,
            family,
            data,
            batcher,
            fixed_latent,
            metrics,
            evaluation,
            pipeline,
            data_seconds,
            board,
        })
    }

    /// Iterations completed.
    pub fn step(&self) -> u64 {
        self.state.step
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn family(&self) -> &dyn Family {
        self.family.as_ref()
    }

    pub fn model(&self) -> &Model {
        self.family.model()
    }

    pub fn run_dir(&self) -> &RunDir {
        &self.dir
    }

    /// One iteration; returns its statistics, the epoch of its last batch and that batch.
    fn iterate(&mut self) -> Result<(Stats, u64, RealBatch)> {
        let iteration = self.state.step + 1;
        let mut epoch = 0;
        let device = self.fixed_latent.device().clone();
        let (batcher, cfg) = (&mut self.batcher, &self.cfg);
        let mut next_real = || {
            let b = batcher.next_batch()?;
            epoch = b.epoch;
            real_batch(cfg, b, &device)
        };
        let (stats, real) = iteration_steps(
            self.family.as_mut(),
            &mut next_real,
            &mut self.rng,
            &self.cfg.train,
            iteration,
        )?;
        let bad = match stats.iter().find(|(_, v)| !v.is_finite()) {
            Some((name, v)) => Some(format!("{name} = {v}")),
            None => self
                .family
                .model()
                .first_non_finite_weight()?
                .map(|w| format!("weight {w} is not finite")),
        };
        if let Some(what) = bad {
            return Err(Error::Diverged(format!(
                "{what} at iteration {iteration}; the last good checkpoint is kept in {} (lower the learning rates, change the objective, or set train.on_nan = \"rollback\")",
                self.dir.checkpoints().display()
            )));
        }
        Ok((stats, epoch, real))
    }

    /// The critic's Lipschitz upper bound and the max input-gradient norm on interpolates
    /// between `real` and fresh fakes, for families with a critic (NaN without). Uses its
    /// own random stream and evaluation mode, so tracking never changes the training.
    fn lipschitz(&self, real: &RealBatch) -> Result<[f64; 2]> {
        use crate::metrics::lipschitz::{max_input_gradient, upper_bound};
        let Some(critic) = self.family.critic() else {
            return Ok([f64::NAN; 2]);
        };
        let mut rng = Rng::new(self.cfg.train.seed ^ self.state.step, stream::LIPSCHITZ);
        let labels = real.labels();
        let classes = labels.map(|l| l.to_vec1::<u32>()).transpose()?;
        let draw = Draw {
            classes: classes.as_deref(),
            ..Default::default()
        };
        let z = self.family.latent(real.images.dim(0)?, &draw, &mut rng)?;
        let fake = self.family.render(&z, false)?;
        let bound = upper_bound(&self.family.model().network(critic.network).params, 20)?;
        Ok([
            bound,
            max_input_gradient(critic.d, &real.images, &fake, labels, &mut rng)?,
        ])
    }

    /// Train until `train.steps` iterations are done or `stop` is raised.
    pub fn run(&mut self, observer: &mut dyn Observer, stop: &Arc<AtomicBool>) -> Result<Outcome> {
        observer.started(&RunInfo {
            run_dir: self.dir.root.clone(),
            data_source: self.data.source.clone(),
            images: self.data.len,
            start_step: self.state.step,
            total_steps: self.cfg.train.steps,
            params: self.family.model().param_counts(),
            pipeline: self.pipeline,
            pipeline_mode: data::throughput::mode(&self.data),
            data_seconds: self.data_seconds,
        });
        if self.state.step == 0 && self.cfg.pretrain.enabled() && !self.state.pretrained {
            self.family
                .pretrain(&self.cfg, &self.data, &self.dir.root, &mut |m| {
                    observer.note(m)
                })?;
            self.state.pretrained = true;
            // Kept, so that a resume goes on from here instead of pretraining again.
            self.save_checkpoint()?;
        }
        if self.state.step == 0 {
            self.write_samples()?;
            self.write_histograms()?;
            if self.cfg.train.on_nan == OnNan::Rollback {
                // Something to roll back to, should the first iterations diverge.
                self.save_checkpoint()?;
            }
        }
        let images_per_iter = (self.cfg.train.batch_size * self.cfg.train.d_steps) as f64;
        let (loop_start, first_step) = (Instant::now(), self.state.step);
        while self.state.step < self.cfg.train.steps {
            let t0 = Instant::now();
            let (stats, epoch, real) = match self.iterate() {
                Ok(done) => done,
                Err(Error::Diverged(what)) if self.cfg.train.on_nan == OnNan::Rollback => {
                    self.rollback(&what, observer)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let dt = t0.elapsed().as_secs_f64();
            self.state.elapsed_s += dt;
            self.state.step += 1;
            let step = self.state.step;
            observer.iteration(step, &stats);
            if step - first_step == CONSUMPTION_AFTER {
                let used = CONSUMPTION_AFTER as f64 * images_per_iter
                    / loop_start.elapsed().as_secs_f64().max(1e-9);
                observer.note(&format!(
                    "pipeline  the step consumes {used:.0} images/s; the pipeline served {:.0} ({:.1}x)",
                    self.pipeline.images_per_s(),
                    self.pipeline.images_per_s() / used
                ));
            }
            if step % self.cfg.log.every == 0 {
                let mut row = vec![step as f64, epoch as f64, images_per_iter / dt.max(1e-9)];
                for name in self.family.columns() {
                    row.push(
                        stats
                            .iter()
                            .find(|(k, _)| *k == name)
                            .map_or(f64::NAN, |(_, v)| *v),
                    );
                }
                let every = self.cfg.log.lipschitz_every;
                if every > 0 {
                    if step % every == 0 {
                        row.extend(self.lipschitz(&real)?);
                    } else {
                        row.extend([f64::NAN; 2]);
                    }
                }
                row.extend(self.evaluate(observer)?);
                row.push(self.state.elapsed_s);
                self.metrics.write(&row)?;
                if let Some(b) = self.board.as_mut() {
                    b.row(step, &row)?;
                }
            }
            let last = step == self.cfg.train.steps;
            if step % self.cfg.log.sample_every == 0 || last {
                self.write_samples()?;
            }
            self.write_histograms()?;
            let stopping = stop.load(Ordering::SeqCst);
            if step % self.cfg.checkpoint.every == 0 || last || stopping {
                let path = self.save_checkpoint()?;
                observer.note(&format!("checkpoint {}", path.display()));
            }
            if stopping && !last {
                return Ok(Outcome::Stopped(step));
            }
        }
        Ok(Outcome::Finished)
    }

    /// On evaluation iterations, score the generator, keep the best-FID checkpoint and
    /// return the values of [`evaluation::COLUMNS`]; NaN on the others; nothing when off.
    fn evaluate(&mut self, observer: &mut dyn Observer) -> Result<Vec<f64>> {
        let every = self.cfg.eval.every;
        let Some(ev) = self.evaluation.as_mut() else {
            return Ok(vec![]);
        };
        if self.state.step % every != 0 {
            return Ok(vec![f64::NAN; evaluation::COLUMNS.len()]);
        }
        let r = ev.run(self.family.as_ref())?;
        observer.note(&format!(
            "iteration {}: FID {:.3}, precision {:.3}, recall {:.3}",
            self.state.step,
            r.fid,
            r.precision.unwrap_or(f64::NAN),
            r.recall.unwrap_or(f64::NAN)
        ));
        if self.state.best_fid.is_none_or(|b| r.fid < b) {
            self.state.best_fid = Some(r.fid);
            let state = self.checkpoint_state();
            let path = checkpoint::save_as(
                &self.dir.checkpoints(),
                checkpoint::BEST,
                state,
                &self.family.model().checkpoint_tensors()?,
            )?;
            observer.note(&format!("best FID so far: {}", path.display()));
        }
        // The run's own real images are always scored, so every number is there.
        let nan = f64::NAN;
        Ok(vec![
            r.fid,
            r.kid.unwrap_or(nan),
            r.precision.unwrap_or(nan),
            r.recall.unwrap_or(nan),
        ])
    }

    /// Go back to the newest checkpoint after a divergence (`what`), with every learning
    /// rate multiplied by `train.rollback_lr_factor`; fails once `train.max_rollbacks` are
    /// used up. metrics.csv is cut back to the checkpoint's iteration.
    fn rollback(&mut self, what: &str, observer: &mut dyn Observer) -> Result<()> {
        let t = &self.cfg.train;
        if self.state.rollbacks >= t.max_rollbacks {
            return Err(Error::Diverged(format!(
                "{what} (after {} rollbacks, train.max_rollbacks)",
                self.state.rollbacks
            )));
        }
        let device = self.fixed_latent.device().clone();
        let loaded = checkpoint::load(&self.dir.checkpoints(), None, &device)?;
        self.family.model_mut().restore(&loaded.tensors)?;
        // Training goes back to the checkpoint's position; the count of rollbacks, the
        // lowered rates, the best FID (its checkpoint stays on disk) and the seconds spent
        // go on.
        let back = loaded.state.run;
        self.state = RunState {
            step: back.step,
            batches: back.batches,
            rng: back.rng,
            pretrained: back.pretrained,
            rollbacks: self.state.rollbacks + 1,
            lr_scale: self.state.lr_scale * t.rollback_lr_factor,
            ..self.state.clone()
        };
        self.rng = Rng::from_state(&self.state.rng)?;
        let plan = data::class_plan(&self.cfg, &self.data);
        self.batcher = Batcher::with_plan(
            self.data.clone(),
            t.batch_size,
            t.seed,
            self.state.batches,
            plan,
        )?;
        let columns = metric_columns(self.family.as_ref(), &self.cfg);
        // The event file is cut back to the checkpoint, as metrics.csv is (the open one is
        // closed first, flushing what it buffered).
        self.board = None;
        self.board = board::Board::for_run(
            &self.cfg,
            &self.dir.tensorboard(),
            self.state.step,
            columns.clone(),
        )?;
        self.metrics = MetricsLog::open(&self.dir.metrics(), columns, Some(self.state.step))?;
        self.family
            .model_mut()
            .scale_learning_rates(self.state.lr_scale);
        observer.note(&format!(
            "{what}: rolled back to iteration {}, learning rates × {} (rollback {} of {})",
            self.state.step, self.state.lr_scale, self.state.rollbacks, t.max_rollbacks
        ));
        Ok(())
    }

    /// The run's state now: its counters with the noise generator's and the data's
    /// positions.
    fn run_state(&self) -> RunState {
        RunState {
            batches: self.batcher.position(),
            rng: self.rng.state(self.cfg.train.seed),
            ..self.state.clone()
        }
    }

    fn checkpoint_state(&self) -> CheckpointState {
        CheckpointState {
            format: checkpoint::FORMAT,
            run: self.run_state(),
            config_hash: self.config_hash.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            files: Default::default(),
            config: Some(self.cfg.to_toml()),
        }
    }

    /// Write a checkpoint of the current state (and redraw the loss curves).
    pub fn save_checkpoint(&mut self) -> Result<std::path::PathBuf> {
        self.metrics.sync()?;
        if let Some(b) = self.board.as_mut() {
            b.flush()?;
        }
        self.draw_loss_curves()?;
        let state = self.checkpoint_state();
        checkpoint::save(
            &self.dir.checkpoints(),
            state,
            &self.family.model().checkpoint_tensors()?,
            self.cfg.checkpoint.keep,
        )
    }

    fn write_samples(&mut self) -> Result<()> {
        self.family.prepare_sampling()?;
        let x = self.family.render(&self.fixed_latent, true)?;
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        let (c, s) = (self.cfg.data.channels, self.cfg.data.image_size);
        let img = grid::grid_image(&data, self.cfg.log.grid, c, s);
        grid::write_image(&self.dir.sample_grid(self.state.step), &img)?;
        if let Some(b) = self.board.as_mut() {
            b.image(self.state.step, &img)?;
        }
        gif::append(&self.dir.samples_gif(), &img.to_rgb8())
    }

    /// At the iterations `log.histograms` names, the weight histograms of every network.
    fn write_histograms(&mut self) -> Result<()> {
        let step = self.state.step;
        if !self.cfg.log.histograms.contains(&step) {
            return Ok(());
        }
        let panels = board::weight_histograms(self.family.model())?;
        let path = self.dir.histograms(step);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        let title = format!("weights at iteration {step}");
        histogram::draw(&path, &title, &panels)?;
        if let Some(b) = self.board.as_mut() {
            b.histograms(step, &panels)?;
        }
        Ok(())
    }

    fn draw_loss_curves(&self) -> Result<()> {
        let (header, rows) = metrics::read(&self.dir.metrics())?;
        if rows.is_empty() {
            return Ok(());
        }
        let col = |name: &str| header.iter().position(|h| h == name);
        let steps: Vec<f64> = rows.iter().map(|r| r[0]).collect();
        let series: Vec<(&str, Vec<f64>)> = self
            .family
            .columns()
            .into_iter()
            .filter(|n| n.ends_with("_loss"))
            .filter_map(|n| col(n).map(|i| (n, rows.iter().map(|r| r[i]).collect())))
            .collect();
        let name = self
            .dir
            .root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("run");
        plot::loss_curves(
            &self.dir.loss_plot(),
            &format!("{name} — losses"),
            "loss",
            &steps,
            &series,
        )?;
        // The FID curve, the Lipschitz bound (report 004 Fig. 2) and G's gradient norm,
        // from the iterations that logged them.
        for (file, title, columns) in [
            ("fid.png", "FID", &["fid"][..]),
            (
                "lipschitz.png",
                "Lipschitz bound",
                &["lipschitz_bound", "max_grad_norm"],
            ),
            ("g_grad_norm.png", "‖∇θ G‖", &["g_grad_norm"]),
        ] {
            let present: Vec<(&str, usize)> = columns
                .iter()
                .filter_map(|c| col(c).map(|i| (*c, i)))
                .collect();
            let logged = |i: usize| rows.iter().filter(|r| r[i].is_finite()).count();
            if present.is_empty() || present.iter().all(|&(_, i)| logged(i) == 0) {
                continue;
            }
            // Every series over the logged iterations of the first.
            let first = present[0].1;
            let kept: Vec<&Vec<f64>> = rows.iter().filter(|r| r[first].is_finite()).collect();
            let x: Vec<f64> = kept.iter().map(|r| r[0]).collect();
            let series: Vec<(&str, Vec<f64>)> = present
                .iter()
                .map(|&(c, i)| (c, kept.iter().map(|r| r[i]).collect()))
                .collect();
            plot::loss_curves(
                &self.dir.root.join(file),
                &format!("{name} — {title}"),
                title,
                &x,
                &series,
            )?;
        }
        Ok(())
    }
}

/// A conditional run (`model.classes` > 0) needs a label for every image, each below
/// `model.classes`.
fn check_labels(cfg: &Config, data: &ImageSet) -> Result<()> {
    let classes = cfg.model.classes;
    if classes == 0 {
        return Ok(());
    }
    let Some(labels) = &data.labels else {
        return Err(Error::Data(format!(
            "model.classes = {classes} trains with labels, and {} has none: put the labels file (e.g. train-labels-idx1-ubyte.gz) beside the images, or set model.classes = 0",
            data.source
        )));
    };
    match labels.iter().max() {
        Some(&m) if m as usize >= classes => Err(Error::Data(format!(
            "{} has label {m}, but model.classes = {classes}: set model.classes to at least {}",
            data.source,
            m as usize + 1
        ))),
        _ => Ok(()),
    }
}

/// Accumulate `new` into `acc` as a mean over `n` repetitions (columns keep their order).
fn merge(acc: &mut Vec<(&'static str, f64)>, new: Vec<(&'static str, f64)>, n: usize) {
    for (k, v) in new {
        match acc.iter_mut().find(|(a, _)| *a == k) {
            Some((_, s)) => *s += v / n as f64,
            None => acc.push((k, v / n as f64)),
        }
    }
}

#[cfg(test)]
mod tests;
