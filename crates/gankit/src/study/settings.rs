//! What a run was trained with, as a comparison shows it: the resolved config's keys that
//! the run reads (`config::flatten_in_use`) and that shape what is learnt (not the seed,
//! the thread count, nor the `log`, `checkpoint` and `eval` sections); of those, the ones
//! that set members apart, and each member's values of them as one line.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::config::{Config, flatten, flatten_in_use, flatten_toml};
use crate::{Error, Result};

/// Keys left out: the seed tells a member's runs apart, the rest choose only what is
/// logged, saved or scored during training, or how many threads run.
fn ignored(key: &str) -> bool {
    matches!(key, "train.seed" | "train.threads")
        || ["log.", "checkpoint.", "eval."]
            .iter()
            .any(|s| key.starts_with(s))
}

/// A run's training settings: dotted key → value as `--set` writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    /// The settings of a resolved config.
    pub fn of(config: &Config) -> Settings {
        Settings::keep(flatten_in_use(config))
    }

    /// The settings of a run folder's config.toml (every field of the config it was
    /// trained with). One this gankit cannot load (an older version's keys) compares by
    /// every key as written.
    pub fn parse(text: &str, origin: &str) -> Result<Settings> {
        if let Ok(config) = Config::from_toml_str(text, origin, &[]) {
            return Ok(Settings::of(&config));
        }
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| Error::Data(format!("{origin}: not a TOML config ({})", e.message())))?;
        Ok(Settings::keep(flatten_toml(&table)))
    }

    fn keep(all: BTreeMap<String, String>) -> Settings {
        Settings(all.into_iter().filter(|(k, _)| !ignored(k)).collect())
    }

    /// The value of `key`, None where the run does not read it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// gankit's default value of `key` (`Config::default`'s).
fn default_value(key: &str) -> Option<&'static str> {
    static DEFAULTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    DEFAULTS
        .get_or_init(|| flatten(&Config::default()))
        .get(key)
        .map(String::as_str)
}

/// The keys that set `settings` apart, in key order: those whose value is not the same in
/// every run that reads them, or is not gankit's default in one of them (a key only WGAN
/// reads shows where its value is not the default).
pub fn differing<'a>(settings: impl IntoIterator<Item = &'a Settings>) -> Vec<String> {
    let all: Vec<&Settings> = settings.into_iter().collect();
    let mut keys: Vec<&String> = all.iter().flat_map(|s| s.0.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            let values: Vec<&str> = all.iter().filter_map(|s| s.get(k)).collect();
            let read_by_all = values.len() == all.len();
            let same = values.windows(2).all(|w| w[0] == w[1]);
            !(same && (read_by_all || values.first().copied() == default_value(k)))
        })
        .cloned()
        .collect()
}

/// A member's values of `keys` over its runs (`runs`, one settings each): a key none of them
/// reads is left out; values joined by " / " where its runs disagree ("–" for a run that
/// does not read the key).
pub fn member_values(keys: &[String], runs: &[&Settings]) -> BTreeMap<String, String> {
    keys.iter()
        .filter(|k| runs.iter().any(|r| r.get(k).is_some()))
        .map(|k| {
            let mut values: Vec<&str> = Vec::new();
            for r in runs {
                let v = r.get(k).unwrap_or("–");
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            (k.clone(), values.join(" / "))
        })
        .collect()
}

/// Refuse two members that would train the same thing: the first pair of `members` (name,
/// settings) whose settings are equal, named in one line.
pub fn check_distinct(members: &[(&str, &Settings)]) -> Result<()> {
    for (i, (a, sa)) in members.iter().enumerate() {
        if let Some((b, _)) = members[..i].iter().find(|(_, sb)| sb == sa) {
            return Err(Error::Config(format!(
                "members {b:?} and {a:?} resolve to the same settings (only the seed, logging, checkpoints or unused keys differ): change one, or drop it"
            )));
        }
    }
    Ok(())
}

/// A member's values of [`differing`] keys as one line: `key value` pairs without the values
/// at gankit's defaults (see [`defaults_note`]), G's and D's optimiser settings merged where
/// equal (`optim.g/d.lr 0.0001`); "defaults" where nothing is left, "–" where no key
/// sets the members apart.
pub fn settings_cell(settings: &BTreeMap<String, String>) -> String {
    if settings.is_empty() {
        return "–".into();
    }
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in settings {
        if default_value(k) == Some(v.as_str()) {
            continue;
        }
        if let Some(rest) = k.strip_prefix("optim.d.") {
            if settings.get(&format!("optim.g.{rest}")) == Some(v) {
                continue;
            }
        }
        match k.strip_prefix("optim.g.") {
            Some(rest) if settings.get(&format!("optim.d.{rest}")) == Some(v) => {
                parts.push(format!("optim.g/d.{rest} {v}"))
            }
            _ => parts.push(format!("{k} {v}")),
        }
    }
    if parts.is_empty() {
        "defaults".into()
    } else {
        parts.join(", ")
    }
}

/// What a settings cell leaves out: "A row lists … gankit's defaults: `key value`, …" for
/// `keys`; empty without keys.
pub fn defaults_note(keys: &[String]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let defaults: BTreeMap<String, String> = keys
        .iter()
        .filter_map(|k| default_value(k).map(|v| (k.clone(), v.to_string())))
        .collect();
    let mut shown: Vec<String> = Vec::new();
    for (k, v) in &defaults {
        let merged = k
            .strip_prefix("optim.d.")
            .is_some_and(|rest| defaults.get(&format!("optim.g.{rest}")) == Some(v));
        if merged {
            continue;
        }
        match k.strip_prefix("optim.g.") {
            Some(rest) if defaults.get(&format!("optim.d.{rest}")) == Some(v) => {
                shown.push(format!("optim.g/d.{rest} {}", show_empty(v)))
            }
            _ => shown.push(format!("{k} {}", show_empty(v))),
        }
    }
    format!(
        "Settings: the config keys that set members apart (resolved after the config file and every --set; the seed, logging and checkpoints left out). A row leaves out a key its runs do not read, and a value at gankit's default: {}.",
        shown.join(", ")
    )
}

fn show_empty(v: &str) -> &str {
    if v.is_empty() { "\"\"" } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sets: &[&str]) -> Config {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::from_toml_str("", "t", &sets).unwrap()
    }

    fn row(keys: &[String], s: &Settings) -> BTreeMap<String, String> {
        member_values(keys, &[s])
    }

    #[test]
    fn only_keys_that_shape_training_count() {
        let a = Settings::of(&cfg(&["train.seed=3", "log.every=5", "train.threads=1"]));
        assert_eq!(a, Settings::of(&Config::default()));
        assert_eq!(a.get("train.seed"), None);
        assert_eq!(a.get("optim.d.lr"), Some("0.0002"));
        let lsgan = [
            "train.loss=lsgan",
            "lsgan.alpha.max=0.5",
            "lsgan.alpha.end=9",
        ];
        let b = Settings::of(&cfg(&[&lsgan[..], &["optim.d.lr=0.0003"]].concat()));
        let c = Settings::of(&cfg(&lsgan));
        // α's ramp is read by b and c alike, but its end is not the default; gp.lambda is
        // read by no one; the loss and D's rate differ.
        let keys = differing([&a, &b, &c]);
        assert_eq!(
            keys,
            [
                "lsgan.alpha.end",
                "lsgan.alpha.max",
                "optim.d.lr",
                "train.loss"
            ]
        );
        assert!(differing([&a, &a]).is_empty());
        assert_eq!(settings_cell(&row(&keys, &a)), "defaults");
        assert_eq!(
            member_values(&keys, &[&a, &b])["optim.d.lr"],
            "0.0002 / 0.0003"
        );
        assert_eq!(
            member_values(&keys, &[&a, &b])["lsgan.alpha.max"],
            "– / 0.5"
        );
        assert!(!row(&keys, &a).contains_key("lsgan.alpha.max"));
        assert_eq!(
            settings_cell(&row(&keys, &b)),
            "lsgan.alpha.end 9, lsgan.alpha.max 0.5, optim.d.lr 0.0003, train.loss lsgan"
        );
        let note = defaults_note(&keys);
        assert!(
            note.ends_with("lsgan.alpha.end 0, lsgan.alpha.max 0.0, optim.d.lr 0.0002, train.loss non-saturating."),
            "{note}"
        );
        let written = Settings::parse(&cfg(&lsgan).to_toml(), "x").unwrap();
        assert_eq!(written, c);
        // A config.toml of another version is read key by key.
        let old = Settings::parse("[train]\nloss = \"lsgan\"\nretired = 1\n", "x").unwrap();
        assert_eq!(old.get("train.retired"), Some("1"));
    }

    #[test]
    fn both_optimisers_share_a_cell_entry_where_equal() {
        let wgan = [
            "train.loss=wgan-gp",
            "optim.g.lr=0.0001",
            "optim.d.lr=0.0001",
        ];
        let s = Settings::of(&cfg(&[&wgan[..], &["optim.d.beta1=0.0"]].concat()));
        let keys = differing([&Settings::of(&Config::default()), &s]);
        assert_eq!(
            settings_cell(&row(&keys, &s)),
            "optim.d.beta1 0.0, optim.g/d.lr 0.0001, train.loss wgan-gp"
        );
        assert!(defaults_note(&keys).contains("optim.d.beta1 0.5, optim.g/d.lr 0.0002,"));
    }

    #[test]
    fn equal_members_are_named() {
        let (a, b) = (
            Settings::of(&cfg(&[])),
            Settings::of(&cfg(&["train.seed=1"])),
        );
        let c = Settings::of(&cfg(&["model.d_dropout=0.3", "model.arch=mlp"]));
        assert!(check_distinct(&[("x", &a), ("y", &c)]).is_ok());
        let e = check_distinct(&[("x", &a), ("y", &c), ("z", &b)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"x\" and \"z\""), "{e}");
    }
}
