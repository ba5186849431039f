//! Progress bars (indicatif): training, as a `train::Observer`, and decoding an image folder
//! into its cache.

use gankit::family::Model;
use gankit::train::{Observer, RunInfo};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new() -> Self {
        Bar {
            bar: ProgressBar::hidden(),
        }
    }
}

impl Observer for Bar {
    fn started(&mut self, info: &RunInfo) {
        eprintln!("run       {}", info.run_dir.display());
        eprintln!("data      {} ({} images)", info.data_source, info.images);
        eprintln!(
            "pipeline  serves {:.0} images/s ({})",
            info.pipeline.images_per_s(),
            info.pipeline_mode
        );
        eprintln!("params    {}", Model::describe_params(&info.params));
        if let Some(t0) = crate::STARTED.get() {
            let total = t0.elapsed().as_secs_f64();
            eprintln!(
                "start-up  {:.2} s to the first iteration, besides {:.2} s on the data",
                (total - info.data_seconds).max(0.0),
                info.data_seconds
            );
        }
        if info.start_step > 0 {
            eprintln!("resuming  at iteration {}", info.start_step);
        }
        let bar = ProgressBar::new(info.total_steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} it  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(info.start_step);
        bar.reset_eta();
        self.bar = bar;
    }

    fn iteration(&mut self, step: u64, stats: &[(&'static str, f64)]) {
        self.bar.set_position(step);
        if step % 5 == 0 || step == 1 {
            let msg: Vec<String> = stats.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
            self.bar.set_message(msg.join("  "));
        }
    }

    fn note(&mut self, msg: &str) {
        self.bar.suspend(|| eprintln!("{msg}"));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish();
    }
}

/// A bar for decoding an image folder into its cache; shown only while one is decoded.
pub struct Decoding {
    bar: Option<ProgressBar>,
}

impl Decoding {
    pub fn new() -> Self {
        Decoding { bar: None }
    }

    /// `done` of `total` images decoded.
    pub fn update(&mut self, done: usize, total: usize) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "decoding  {bar:30.cyan/blue} {pos}/{len} images  {per_sec}  ETA {eta}",
                )
                .expect("valid template"),
            );
            bar
        });
        bar.set_position(done as u64);
        if done == total {
            bar.finish_and_clear();
        }
    }
}
