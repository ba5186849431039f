//! The runs a comparison reads: each run folder's metrics.csv, eval.json (when evaluated),
//! config.toml and last sample grid; runs grouped into members by name (`NAME-s<seed>`).

use std::path::{Path, PathBuf};

use super::settings::Settings;
use crate::report::metrics;
use crate::{Error, Result};

/// One run as a comparison sees it.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The run folder's name.
    pub name: String,
    /// The member it belongs to: the name without its `-s<seed>` suffix.
    pub member: String,
    pub dir: PathBuf,
    /// metrics.csv's header and rows.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
    /// eval.json, when the run was evaluated.
    pub eval: Option<serde_json::Value>,
    /// The newest sample grid.
    pub last_grid: Option<PathBuf>,
    /// What it trained with, from its config.toml.
    pub settings: Settings,
}

impl RunRecord {
    /// Read the run in `dir` (a folder with metrics.csv).
    pub fn load(dir: &Path) -> Result<RunRecord> {
        let csv = dir.join("metrics.csv");
        if !csv.is_file() {
            return Err(Error::Config(format!(
                "{} is not a run folder (no metrics.csv): give run folders or a study folder",
                dir.display()
            )));
        }
        let (columns, rows) = metrics::read(&csv)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let eval = match std::fs::read_to_string(dir.join("eval.json")) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
                Error::Data(format!(
                    "{}: not an eval.json gankit wrote ({e}); run `gankit eval {}` again",
                    dir.join("eval.json").display(),
                    dir.display()
                ))
            })?),
            Err(_) => None,
        };
        let run_dir = crate::train::RunDir::new(dir);
        let config = run_dir.config();
        let text = std::fs::read_to_string(&config).map_err(|e| {
            Error::Config(format!(
                "{}: cannot read it ({e}): a run folder holds the config it was trained with",
                config.display()
            ))
        })?;
        let settings = Settings::parse(&text, &config.display().to_string())?;
        let mut grids = run_dir.sample_grids_through(u64::MAX);
        Ok(RunRecord {
            member: member_of(&name).to_string(),
            name,
            dir: dir.to_path_buf(),
            columns,
            rows,
            eval,
            last_grid: grids.pop(),
            settings,
        })
    }

    /// The values of metrics column `name` (NaN where not logged), with the iterations.
    pub fn series(&self, name: &str) -> Option<(Vec<f64>, Vec<f64>)> {
        let c = self.columns.iter().position(|x| x == name)?;
        let s = self.columns.iter().position(|x| x == "step")?;
        Some((
            self.rows.iter().map(|r| r[s]).collect(),
            self.rows.iter().map(|r| r[c]).collect(),
        ))
    }

    /// The iterations done.
    pub fn steps(&self) -> u64 {
        self.series("step")
            .and_then(|(s, _)| s.last().copied())
            .unwrap_or(0.0) as u64
    }

    /// Training milliseconds per iteration (wall_s over the iterations).
    pub fn ms_per_iteration(&self) -> Option<f64> {
        let (s, w) = self.series("wall_s")?;
        let (s, w) = (s.last()?, w.last()?);
        (*s > 0.0).then(|| w / s * 1000.0)
    }

    /// A number from eval.json.
    pub fn eval_number(&self, key: &str) -> Option<f64> {
        self.eval.as_ref()?.get(key)?.as_f64()
    }

    /// The loss-like columns: what the objective logs per iteration, without the
    /// trainer's bookkeeping, evaluation and Lipschitz columns.
    pub fn loss_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| !crate::train::is_trainer_column(c))
            .cloned()
            .collect()
    }
}

/// A run's member: its name without a trailing `-s<digits>` (the seed).
pub fn member_of(run: &str) -> &str {
    match run.rsplit_once("-s") {
        Some((m, seed))
            if !m.is_empty() && !seed.is_empty() && seed.bytes().all(|b| b.is_ascii_digit()) =>
        {
            m
        }
        _ => run,
    }
}

/// The run folders of `paths`: each a run folder, or a folder of them (a study's `runs`,
/// or the study folder itself), sorted by name.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<RunRecord>> {
    let mut runs = Vec::new();
    for p in paths {
        if p.join("metrics.csv").is_file() {
            runs.push(RunRecord::load(p)?);
            continue;
        }
        let base = if p.join("runs").is_dir() {
            p.join("runs")
        } else {
            p.clone()
        };
        let entries = std::fs::read_dir(&base).map_err(|e| {
            Error::Config(format!(
                "{}: cannot read it ({e}); give run folders or a study folder",
                p.display()
            ))
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.join("metrics.csv").is_file())
            .collect();
        if dirs.is_empty() {
            return Err(Error::Config(format!(
                "{} holds no run folders (none has a metrics.csv)",
                p.display()
            )));
        }
        dirs.sort();
        // A study folder lists its runs in the study's order.
        if let Some(order) = study_order(p) {
            let rank = |d: &PathBuf| {
                let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
                order
                    .iter()
                    .position(|o| Some(o) == name.as_ref())
                    .unwrap_or(usize::MAX)
            };
            dirs.sort_by_key(rank);
        }
        for d in dirs {
            runs.push(RunRecord::load(&d)?);
        }
    }
    Ok(runs)
}

/// The study.json in `dir`, when there is one gankit can read.
fn study_json(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("study.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The title of the study whose folder is `dir` (from its study.json).
pub fn study_title(dir: &Path) -> Option<String> {
    study_json(dir)?["title"].as_str().map(String::from)
}

/// The run names of the study.json in `dir`, in the study's order.
fn study_order(dir: &Path) -> Option<Vec<String>> {
    let v = study_json(dir)?;
    v["runs"]
        .as_array()?
        .iter()
        .map(|r| r["name"].as_str().map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_is_the_name_without_its_seed() {
        assert_eq!(member_of("alpha-0.5-s2"), "alpha-0.5");
        assert_eq!(member_of("wgan-gp"), "wgan-gp");
        assert_eq!(member_of("dcgan-sn"), "dcgan-sn");
        assert_eq!(member_of("-s1"), "-s1");
        assert_eq!(member_of("x-s"), "x-s");
    }

    #[test]
    fn a_run_is_read_from_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a-s0");
        std::fs::create_dir_all(run.join("samples")).unwrap();
        std::fs::write(
            run.join("metrics.csv"),
            "step,epoch,images_per_s,d_loss,g_loss,wall_s\n1,0,10,1.5,0.5,0.2\n2,0,10,1.25,0.75,0.4\n",
        )
        .unwrap();
        std::fs::write(run.join("eval.json"), r#"{"fid": 12.5}"#).unwrap();
        let sets = ["model.arch=mlp".into(), "model.d_dropout=0.3".into()];
        let cfg = crate::config::Config::from_toml_str("", "t", &sets);
        std::fs::write(run.join("config.toml"), cfg.unwrap().to_toml()).unwrap();
        std::fs::write(run.join("samples/step_000002.png"), b"").unwrap();
        std::fs::write(run.join("samples/step_000001.png"), b"").unwrap();
        let runs = collect(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!((r.name.as_str(), r.member.as_str()), ("a-s0", "a"));
        assert_eq!(r.loss_columns(), vec!["d_loss", "g_loss"]);
        assert_eq!(r.series("g_loss").unwrap().1, vec![0.5, 0.75]);
        assert_eq!(r.steps(), 2);
        assert!((r.ms_per_iteration().unwrap() - 200.0).abs() < 1e-9);
        assert_eq!(r.eval_number("fid"), Some(12.5));
        assert!(r.last_grid.as_ref().unwrap().ends_with("step_000002.png"));
        assert_eq!(r.settings.get("model.d_dropout"), Some("0.3"));
        let err = collect(&[run.join("samples")]).unwrap_err().to_string();
        assert!(err.contains("no run folders"), "{err}");
    }
}
