//! A study file: the members of one comparison and the seeds each runs with, as TOML.
//!
//! ```toml
//! title = "Report 004: vanilla GAN to WGAN-GP"
//! seeds = [0, 1, 2]
//! set = ["train.steps=3000"]          # applied to every member (optional)
//! eval_n = 10000                      # images `gankit eval` scores per run (optional)
//! keep_checkpoints = 1                # checkpoints a finished run keeps (optional)
//!
//! [reduced]                           # what `--scale reduced` changes (optional)
//! seeds = [0, 1]
//! set = ["train.steps=600"]
//! eval_n = 2000
//! member_set = { vanilla = ["train.batch_size=32"] }   # for one member only
//!
//! [[member]]                          # a list of members ...
//! name = "vanilla"
//! config = "../configs/mlp-vanilla.toml"   # relative to the study file
//! set = []
//!
//! [grid]                              # ... and/or a grid over one base config
//! base = "../configs/lsgan-alpha.toml"
//! axes = { "lsgan.alpha.max" = ["0.3", "0.5", "0.9"] }
//! ```
//!
//! Each member runs once per seed as run `<member>-s<seed>`; a grid's members are named
//! from their keys without the section and values (`alpha.max-0.5`, several axes joined by `_`). Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compare::markdown_table;
use super::settings::{
    Settings, check_distinct, defaults_note, differing, member_values, settings_cell,
};
use crate::config::Config;
use crate::{Error, Result};

/// A study file as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StudySpec {
    pub title: String,
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default = "default_eval_n")]
    pub eval_n: usize,
    /// Checkpoints a run keeps once it is trained and evaluated (the newest). Default 1:
    /// the final weights, enough to sample, evaluate again or resume.
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    #[serde(default)]
    pub reduced: Option<Reduced>,
    #[serde(default)]
    pub member: Vec<MemberSpec>,
    #[serde(default)]
    pub grid: Option<Grid>,
}

fn default_eval_n() -> usize {
    10_000
}

fn default_keep_checkpoints() -> usize {
    1
}

/// What `--scale reduced` changes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reduced {
    pub seeds: Option<Vec<u64>>,
    #[serde(default)]
    pub set: Vec<String>,
    pub eval_n: Option<usize>,
    /// Member name → overrides for that member only (after `set`).
    #[serde(default)]
    pub member_set: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    pub name: String,
    pub config: PathBuf,
    #[serde(default)]
    pub set: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub base: PathBuf,
    /// Config key → the values it takes (as `--set` writes them).
    pub axes: BTreeMap<String, Vec<String>>,
}

/// The scale a study runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// The report's own settings.
    Full,
    /// The `[reduced]` section's: a scale that finishes on a small machine.
    Reduced,
}

impl Scale {
    /// Its name as `--scale` takes it and study.json records it.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Full => "full",
            Scale::Reduced => "reduced",
        }
    }
}

/// One run of a study: a member at one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// `<member>-s<seed>`: the run folder's name.
    pub name: String,
    pub member: String,
    pub config: PathBuf,
    /// Every override, the seed's (`train.seed=…`) last.
    pub set: Vec<String>,
    pub seed: u64,
    /// What it trains with: the config after every override.
    pub settings: Settings,
}

/// A study ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub title: String,
    pub runs: Vec<PlannedRun>,
    pub eval_n: usize,
    /// Checkpoints a finished run keeps.
    pub keep_checkpoints: usize,
}

impl Plan {
    /// The members in order, each with its runs and its values of the settings that differ
    /// between members: the table `gankit sweep --plan` prints, in the columns of the
    /// comparison's.
    pub fn markdown(&self) -> String {
        let mut members: Vec<&PlannedRun> = Vec::new();
        for r in &self.runs {
            if !members.iter().any(|m| m.member == r.member) {
                members.push(r);
            }
        }
        let keys = differing(members.iter().map(|m| &m.settings));
        let head = ["member", "settings", "runs", "config"].map(String::from);
        let rows = members.iter().map(|m| {
            let settings = member_values(&keys, &[&m.settings]);
            let runs = self.runs.iter().filter(|r| r.member == m.member).count();
            vec![
                m.member.clone(),
                settings_cell(&settings),
                runs.to_string(),
                m.config.display().to_string(),
            ]
        });
        let mut out = markdown_table(&head, rows);
        let note = defaults_note(&keys);
        if !note.is_empty() {
            out.push_str(&format!("\n{note}\n"));
        }
        out
    }
}

/// Read and check the study at `path` and plan its runs at `scale`: every member's config
/// is loaded with its overrides, so a mistake stops the sweep before anything runs.
pub fn plan(path: &Path, scale: Scale) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read study {}: {e}", path.display())))?;
    let spec: StudySpec = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    plan_spec(&spec, base_dir, scale)
        .map_err(|e| Error::Config(format!("{}: {}", path.display(), bare(e))))
}

fn bare(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

/// [`plan`] for a parsed study whose config paths are relative to `base_dir`.
pub fn plan_spec(spec: &StudySpec, base_dir: &Path, scale: Scale) -> Result<Plan> {
    let no_member_sets = BTreeMap::new();
    let (seeds, extra, eval_n, member_sets) = match (scale, &spec.reduced) {
        (Scale::Full, _) => (spec.seeds.clone(), vec![], spec.eval_n, &no_member_sets),
        (Scale::Reduced, Some(r)) => (
            r.seeds.clone().unwrap_or_else(|| spec.seeds.clone()),
            r.set.clone(),
            r.eval_n.unwrap_or(spec.eval_n),
            &r.member_set,
        ),
        (Scale::Reduced, None) => {
            return Err(Error::Config(
                "--scale reduced: this study has no [reduced] section".into(),
            ));
        }
    };
    if seeds.is_empty() {
        return Err(Error::Config("seeds: give at least one seed".into()));
    }
    let mut unique = seeds.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != seeds.len() {
        return Err(Error::Config("seeds: a seed is listed twice".into()));
    }
    if spec.keep_checkpoints == 0 {
        return Err(Error::Config(
            "keep_checkpoints = 0: keep at least the final checkpoint (1)".into(),
        ));
    }
    if !(10..=1_000_000).contains(&eval_n) {
        return Err(Error::Config(format!(
            "eval_n = {eval_n}: score between 10 and 1000000 images"
        )));
    }
    let mut members: Vec<(String, PathBuf, Vec<String>)> = spec
        .member
        .iter()
        .map(|m| (m.name.clone(), m.config.clone(), m.set.clone()))
        .collect();
    if let Some(g) = &spec.grid {
        members.extend(grid_members(g)?);
    }
    if members.is_empty() {
        return Err(Error::Config(
            "the study has no members: add [[member]] entries or a [grid]".into(),
        ));
    }
    if let Some(unknown) = member_sets
        .keys()
        .find(|k| !members.iter().any(|(n, _, _)| n == *k))
    {
        return Err(Error::Config(format!(
            "reduced.member_set names {unknown:?}, which is not a member"
        )));
    }
    let mut runs = Vec::new();
    for (name, config, set) in members {
        check_name(&name)?;
        if runs.iter().any(|r: &PlannedRun| r.member == name) {
            return Err(Error::Config(format!("member {name:?} is named twice")));
        }
        let config = base_dir.join(config);
        for &seed in &seeds {
            let mut all: Vec<String> = spec.set.clone();
            all.extend(extra.iter().cloned());
            all.extend(set.iter().cloned());
            all.extend(member_sets.get(&name).into_iter().flatten().cloned());
            all.push(format!("train.seed={seed}"));
            let resolved = Config::load(&config, &all)
                .map_err(|e| Error::Config(format!("member {name:?}: {}", bare(e))))?;
            runs.push(PlannedRun {
                name: format!("{name}-s{seed}"),
                member: name.clone(),
                config: config.clone(),
                set: all,
                seed,
                settings: Settings::of(&resolved),
            });
        }
    }
    // Each member's first run stands for it: its runs differ only in the seed.
    let firsts: Vec<(&str, &Settings)> = runs
        .iter()
        .step_by(seeds.len())
        .map(|r| (r.member.as_str(), &r.settings))
        .collect();
    check_distinct(&firsts)?;
    Ok(Plan {
        title: spec.title.clone(),
        runs,
        eval_n,
        keep_checkpoints: spec.keep_checkpoints,
    })
}

/// The members of a grid: every combination of the axes' values, named from them.
fn grid_members(g: &Grid) -> Result<Vec<(String, PathBuf, Vec<String>)>> {
    let mut combos: Vec<(Vec<String>, Vec<String>)> = vec![(vec![], vec![])];
    for (key, values) in &g.axes {
        if values.is_empty() {
            return Err(Error::Config(format!("grid axis {key:?} has no values")));
        }
        // The key without its section: `lsgan.alpha.max` names members `alpha.max-…`.
        let short = key.split_once('.').map_or(key.as_str(), |(_, rest)| rest);
        combos = combos
            .into_iter()
            .flat_map(|(names, sets)| {
                values.iter().map(move |v| {
                    let mut n = names.clone();
                    n.push(format!("{short}-{}", v.trim_matches('"')));
                    let mut s = sets.clone();
                    s.push(format!("{key}={v}"));
                    (n, s)
                })
            })
            .collect();
    }
    Ok(combos
        .into_iter()
        .map(|(names, sets)| (names.join("_"), g.base.clone(), sets))
        .collect())
}

/// A member name is one folder name of letters, digits, `.`, `_` and `-`, and does not
/// itself end like a seed suffix.
fn check_name(name: &str) -> Result<()> {
    let ok_chars = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_chars {
        return Err(Error::Config(format!(
            "member name {name:?}: use letters, digits, '.', '_' and '-' (a folder name)"
        )));
    }
    if super::runs::member_of(name) != name {
        return Err(Error::Config(format!(
            "member name {name:?} ends like a seed suffix (-s<digits>): rename it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> StudySpec {
        toml::from_str(text).unwrap()
    }

    fn configs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
    }

    #[test]
    fn members_and_a_grid_expand_to_one_run_per_seed() {
        let s = spec(
            r#"
            title = "t"
            seeds = [0, 1]
            set = ["train.steps=10"]
            [reduced]
            seeds = [5]
            set = ["train.steps=2"]
            eval_n = 100
            member_set = { plain = ["train.batch_size=16"] }
            [[member]]
            name = "plain"
            config = "dcgan-fashion.toml"
            [grid]
            base = "lsgan-alpha.toml"
            axes = { "lsgan.alpha.max" = ["0.3", "0.9"], "train.batch_size" = ["32"] }
            "#,
        );
        let p = plan_spec(&s, &configs(), Scale::Full).unwrap();
        let names: Vec<&str> = p.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "plain-s0",
                "plain-s1",
                "alpha.max-0.3_batch_size-32-s0",
                "alpha.max-0.3_batch_size-32-s1",
                "alpha.max-0.9_batch_size-32-s0",
                "alpha.max-0.9_batch_size-32-s1"
            ]
        );
        assert_eq!(
            p.runs[3].set,
            [
                "train.steps=10",
                "lsgan.alpha.max=0.3",
                "train.batch_size=32",
                "train.seed=1"
            ]
        );
        assert_eq!(p.eval_n, 10_000);
        let r = plan_spec(&s, &configs(), Scale::Reduced).unwrap();
        assert_eq!(r.runs.len(), 3);
        assert_eq!(
            r.runs[0].set,
            [
                "train.steps=10",
                "train.steps=2",
                "train.batch_size=16",
                "train.seed=5"
            ]
        );
        assert_eq!(
            r.runs[1].set,
            [
                "train.steps=10",
                "train.steps=2",
                "lsgan.alpha.max=0.3",
                "train.batch_size=32",
                "train.seed=5"
            ]
        );
        assert_eq!(r.eval_n, 100);
    }

    #[test]
    fn mistakes_are_found_before_anything_runs() {
        let base = "title = \"t\"\nseeds = [0]\n";
        let err = |extra: &str| {
            plan_spec(&spec(&format!("{base}{extra}")), &configs(), Scale::Full)
                .unwrap_err()
                .to_string()
        };
        assert!(err("").contains("no members"));
        let m = |name: &str, cfg: &str, set: &str| {
            format!("[[member]]\nname = \"{name}\"\nconfig = \"{cfg}\"\nset = [{set}]\n")
        };
        assert!(err(&m("a/b", "dcgan-fashion.toml", "")).contains("folder name"));
        assert!(err(&m("a-s1", "dcgan-fashion.toml", "")).contains("seed suffix"));
        assert!(err(&m("a", "missing.toml", "")).contains("member \"a\""));
        assert!(err(&m("a", "dcgan-fashion.toml", "\"train.nope=1\"")).contains("nope"));
        let twice = format!(
            "{}{}",
            m("a", "dcgan-fashion.toml", ""),
            m("a", "dcgan-fashion.toml", "")
        );
        assert!(err(&twice).contains("named twice"));
        let no_reduced = plan_spec(
            &spec(&format!("{base}{}", m("a", "dcgan-fashion.toml", ""))),
            &configs(),
            Scale::Reduced,
        );
        assert!(no_reduced.unwrap_err().to_string().contains("no [reduced]"));
        assert!(toml::from_str::<StudySpec>(&format!("{base}colour = 1\n")).is_err());
        let stray = format!(
            "{base}{}[reduced]\nmember_set = {{ b = [] }}\n",
            m("a", "dcgan-fashion.toml", "")
        );
        let e = plan_spec(&spec(&stray), &configs(), Scale::Reduced).unwrap_err();
        assert!(
            e.to_string().contains("\"b\", which is not a member"),
            "{e}"
        );
    }

    #[test]
    fn every_shipped_study_plans_at_both_scales() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../studies");
        let mut studies = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                for scale in [Scale::Full, Scale::Reduced] {
                    let plan = plan(&p, scale).unwrap_or_else(|e| panic!("{e}"));
                    assert!(plan.runs.len() >= 4, "{}", p.display());
                    // Every Fashion-MNIST run finds its data (the system copy, else the
                    // embedded test split); folders are the user's to provide.
                    for run in &plan.runs {
                        let cfg = crate::config::Config::load(&run.config, &run.set)
                            .unwrap_or_else(|e| panic!("{}: {e}", run.name));
                        if cfg.data.dataset == crate::config::DatasetKind::FashionMnist {
                            let mut data = cfg.data.clone();
                            data.split = crate::config::Split::Test;
                            crate::data::load(&data)
                                .unwrap_or_else(|e| panic!("{} {}: {e}", p.display(), run.name));
                        }
                    }
                }
                studies += 1;
            }
        }
        assert!(studies >= 3);
    }
}
