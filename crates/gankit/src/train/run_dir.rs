//! The layout of a run directory.
//!
//! ```text
//! RUN/
//!   config.toml        the resolved config (every field), written at the start
//!   metrics.csv        one row per logged iteration
//!   loss.png           loss curves, redrawn at each checkpoint and at the end
//!   fid.png            FID curve, when evaluation during training is on
//!   samples/step_NNNNNN.png   grids from one fixed noise batch
//!   checkpoints/step_NNNNNNNN/  see `checkpoint`; checkpoints/best/ holds the best FID
//! ```

use std::path::PathBuf;

use crate::config::Config;
use crate::error::IoContext;
use crate::{Error, Result};

/// Paths inside one run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn loss_plot(&self) -> PathBuf {
        self.root.join("loss.png")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn sample_grid(&self, step: u64) -> PathBuf {
        self.samples().join(format!("step_{step:06}.png"))
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    /// The animated GIF of the sample grids over training.
    pub fn samples_gif(&self) -> PathBuf {
        self.root.join("samples.gif")
    }
    /// The per-layer weight histograms of iteration `step` (`log.histograms`).
    pub fn histograms(&self, step: u64) -> PathBuf {
        self.root
            .join("histograms")
            .join(format!("step_{step:06}.png"))
    }
    /// The folder of the TensorBoard event file (`log.tensorboard`).
    pub fn tensorboard(&self) -> PathBuf {
        self.root.join("tensorboard")
    }
    /// The sample grids written through iteration `step` (none at 0, whose grid a run
    /// starting there draws again), in order of their iteration.
    pub fn sample_grids_through(&self, step: u64) -> Vec<PathBuf> {
        let mut grids: Vec<(u64, PathBuf)> = std::fs::read_dir(self.samples())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter_map(|p| {
                        let name = p.file_name()?.to_str()?;
                        let s = name.strip_prefix("step_")?.strip_suffix(".png")?;
                        let s: u64 = s.parse().ok()?;
                        (step > 0 && s <= step).then_some((s, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        grids.sort();
        grids.into_iter().map(|(_, p)| p).collect()
    }

    /// Create a fresh run directory; refuses one that already holds a run.
    pub fn create(&self, cfg: &Config) -> Result<()> {
        if self.config().exists() {
            return Err(Error::Run(format!(
                "{} already holds a run: use `gankit resume {}` or choose another --name / --out",
                self.root.display(),
                self.root.display()
            )));
        }
        std::fs::create_dir_all(self.samples()).at(self.samples())?;
        std::fs::create_dir_all(self.checkpoints()).at(self.checkpoints())?;
        let text = format!(
            "# Resolved configuration of this run (every field, defaults included).\n{}",
            cfg.to_toml()
        );
        crate::fsutil::write_atomic(&self.config(), text.as_bytes())
    }

    /// Delete temporary files a crash left behind (`.NAME.PID-K.tmp`, see
    /// `fsutil::temp_path`) in the run folder and its samples folder.
    pub fn remove_stale_temporaries(&self) -> Result<()> {
        for dir in [self.root.clone(), self.samples()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".tmp") && e.path().is_file() {
                    std::fs::remove_file(e.path()).at(e.path())?;
                }
            }
        }
        Ok(())
    }

    /// Fingerprint of the run's config.toml as written: SHA-256 of its TOML body (the
    /// header comment left out), which is what [`Config::hash`] gave when the run
    /// started. Checkpoints store it, so an edited config.toml is caught on resume,
    /// while a newer gankit that adds defaulted fields still resumes older runs.
    pub fn config_fingerprint(&self) -> Result<String> {
        let text = std::fs::read_to_string(self.config()).at(self.config())?;
        Ok(crate::config::fingerprint(&text))
    }

    /// Read the resolved config of an existing run.
    pub fn load_config(&self) -> Result<Config> {
        if !self.config().is_file() {
            return Err(Error::Run(format!(
                "{} is not a gankit run directory (no config.toml)",
                self.root.display()
            )));
        }
        Config::load(&self.config(), &[])
    }
}

/// The run directory `name` inside `out`. The name must be one plain path component (no
/// `/`, no `..`, not absolute, not hidden), so a run always lands directly inside `out`.
pub fn run_path(out: &std::path::Path, name: &str) -> Result<PathBuf> {
    use std::path::Component;
    let mut parts = std::path::Path::new(name).components();
    let plain = matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.contains(['/', '\\'])
        && !name.starts_with('.')
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(Error::Config(format!(
            "--name {name:?} must be one folder name (no '/', '..' or leading '.'): the run is created directly inside --out {}",
            out.display()
        )));
    }
    Ok(out.join(name))
}

/// A run directory name from the config and the time: `<arch>-<loss>-<YYYYmmdd-HHMMSS>`.
pub fn default_name(cfg: &Config) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    let arch =
        toml::Value::try_from(cfg.model.arch).map(|v| v.as_str().unwrap_or("gan").to_string());
    format!(
        "{}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        arch.unwrap_or_else(|_| "gan".into()),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
    }

    #[test]
    fn run_names_are_one_plain_component() {
        let out = std::path::Path::new("runs");
        assert_eq!(run_path(out, "dcgan-1").unwrap(), out.join("dcgan-1"));
        for bad in [
            "../../x", "a/b", "/abs", "..", ".", "", ".hidden", "a\\b", "x\ny",
        ] {
            let e = run_path(out, bad).unwrap_err().to_string();
            assert!(e.contains("one folder name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn create_refuses_an_existing_run() {
        let dir = tempfile::tempdir().unwrap();
        let r = RunDir::new(dir.path().join("r"));
        r.create(&Config::default()).unwrap();
        assert_eq!(r.load_config().unwrap(), Config::default());
        assert!(
            r.create(&Config::default())
                .unwrap_err()
                .to_string()
                .contains("gankit resume")
        );
    }
}
