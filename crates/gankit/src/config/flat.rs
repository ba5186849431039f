//! A config as flat `section.key → value` pairs: what `resume` and `sample` name when a
//! saved config and a given one differ, and (without the keys the run does not read) what
//! a comparison shows of each member.

use std::collections::BTreeMap;

use super::{
    Arch, Config, Critic, FamilyKind, GEveryUnit, LossKind, OnNan, OptimizerKind, RampShape,
};

/// A TOML table as dotted keys and their values, as a user writes them after `--set key=`
/// (strings bare, arrays as `[a, b]`).
pub fn flatten_toml(table: &toml::Table) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, v, out);
            }
        } else {
            out.insert(prefix.to_string(), show(v));
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in table {
        walk(k, v, &mut out);
    }
    out
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        // An f32 field (written out as the nearest f64) shows as the f32 it is: 0.3, not
        // 0.30000001192092896.
        toml::Value::Float(x) if (*x as f32) as f64 == *x && x.is_finite() => {
            let short = format!("{}", *x as f32);
            if short.contains(['.', 'e', 'E']) {
                short
            } else {
                format!("{short}.0")
            }
        }
        toml::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            )
        }
        other => other.to_string(),
    }
}

/// Every field of a resolved config as dotted keys ([`flatten_toml`]).
pub fn flatten(c: &Config) -> BTreeMap<String, String> {
    match toml::Value::try_from(c).expect("a Config serialises") {
        toml::Value::Table(t) => flatten_toml(&t),
        _ => unreachable!("a Config serialises to a table"),
    }
}

/// The keys of [`flatten`] that `c`'s run reads: without the sections of other objectives,
/// families and architectures, the parameters of what is switched off (α's ramp at α max 0,
/// pretraining's at 0 epochs, DiffAugment's sizes without a policy, …) and the optimiser
/// constants of other optimiser kinds.
pub fn flatten_in_use(c: &Config) -> BTreeMap<String, String> {
    let mut unused: Vec<String> = Vec::new();
    for (net, o) in [("g", &c.optim.g), ("d", &c.optim.d)] {
        let keys: &[&str] = match o.kind {
            OptimizerKind::Adam => &["alpha", "momentum"],
            OptimizerKind::Rmsprop => &["beta1", "beta2"],
            OptimizerKind::Sgd => &["beta1", "beta2", "eps", "alpha"],
        };
        unused.extend(keys.iter().map(|k| format!("optim.{net}.{k}")));
    }
    let loss = c.train.loss;
    // α's schedule: read by its loss, its ramp only while α is on, `levels` by "step" only.
    for (kind, section, a) in [
        (LossKind::Wgan, "wgan", &c.wgan.alpha),
        (LossKind::Lsgan, "lsgan", &c.lsgan.alpha),
    ] {
        let ramp: &[&str] = if loss != kind {
            unused.push(format!("{section}."));
            &[]
        } else if a.max == 0.0 {
            &["shape", "start", "end", "levels"]
        } else if a.shape != RampShape::Step {
            &["levels"]
        } else {
            &[]
        };
        unused.extend(ramp.iter().map(|k| format!("{section}.alpha.{k}")));
    }
    let mut off = |prefixes: &[&str]| unused.extend(prefixes.iter().map(|p| p.to_string()));
    if loss != LossKind::WganGp {
        off(&["gp."]);
    }
    if !c.pretrain.enabled() {
        off(&["pretrain.lr", "pretrain.images", "pretrain.loss"]);
    }
    if c.augment.policy.is_empty() {
        off(&["augment.translation", "augment.cutout"]);
    }
    if c.instance_noise.std == 0.0 {
        off(&["instance_noise.anneal_steps"]);
    }
    if !c.ema.enabled() {
        off(&["ema.start", "ema.encoder"]);
    }
    let family = c.model.family;
    if family != FamilyKind::Infogan {
        off(&["infogan."]);
    }
    if !matches!(family, FamilyKind::Bigan | FamilyKind::Bigbigan) {
        off(&["bigan."]);
    }
    if family != FamilyKind::Vaegan {
        off(&["vaegan."]);
    }
    let m = &c.model;
    if m.arch != Arch::Progressive {
        off(&["progressive."]);
    }
    if m.arch != Arch::Mlp {
        off(&["model.mlp_hidden"]);
    }
    if m.arch != Arch::Mlp || m.critic != Critic::Default {
        off(&["model.d_dropout"]);
    }
    if m.arch != Arch::Allconv {
        off(&["model.extra_layers"]);
    }
    if m.attention.is_empty() {
        off(&["model.attention_variant"]);
    }
    if c.data.class_schedule == super::ClassSchedule::None {
        off(&["data.class_order", "data.class_steps"]);
    }
    if c.train.g_every == 1 && c.train.g_every_unit == GEveryUnit::Iterations {
        off(&["train.g_every_unit"]);
    }
    if c.train.on_nan == OnNan::Stop {
        off(&["train.max_rollbacks", "train.rollback_lr_factor"]);
    }
    let mut all = flatten(c);
    all.retain(|k, _| {
        !unused
            .iter()
            .any(|u| k == u || (u.ends_with('.') && k.starts_with(u.as_str())))
    });
    all
}

/// The keys whose values differ between two configs, as `key: A → B` (dotted keys, in
/// order).
pub fn differences(a: &Config, b: &Config) -> Vec<String> {
    let (fa, fb) = (flatten(a), flatten(b));
    let none = "(unset)".to_string();
    let mut keys: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                fa.get(k).unwrap_or(&none),
                fb.get(k).unwrap_or(&none)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_changed_key() {
        let a = Config::default();
        let b = Config::from_toml_str(
            "[train]\nseed = 4\n[model]\nd_width = 32\nnormalized_init = [\"d\"]\n[lsgan.alpha]\nshape = \"step\"",
            "t",
            &[],
        )
        .unwrap();
        assert_eq!(
            differences(&a, &b),
            vec![
                "lsgan.alpha.shape: linear → step",
                "model.d_width: 64 → 32",
                "model.normalized_init: [] → [d]",
                "train.seed: 0 → 4"
            ]
        );
        assert!(differences(&a, &a).is_empty());
    }

    #[test]
    fn only_the_keys_a_run_reads_are_in_use() {
        let of = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            flatten_in_use(&Config::from_toml_str("", "t", &sets).unwrap())
        };
        let plain = of(&[]);
        for gone in [
            "wgan.clip",
            "gp.lambda",
            "lsgan.alpha.max",
            "optim.g.momentum",
        ] {
            assert!(!plain.contains_key(gone), "{gone}");
        }
        assert_eq!(plain["optim.d.beta1"], "0.5");
        let lsgan = of(&["train.loss=lsgan"]);
        assert_eq!(lsgan["lsgan.alpha.max"], "0.0");
        assert!(!lsgan.contains_key("lsgan.alpha.shape"));
        let ramp = of(&[
            "train.loss=lsgan",
            "lsgan.alpha.max=0.5",
            "lsgan.alpha.end=9",
        ]);
        assert_eq!(ramp["lsgan.alpha.shape"], "linear");
        // α's shape is not read while α is off: these two train the same.
        assert_eq!(lsgan, of(&["train.loss=lsgan", "lsgan.alpha.shape=step"]));
        let mlp = of(&[
            "model.arch=mlp",
            "model.d_dropout=0.3",
            "optim.d.kind=rmsprop",
        ]);
        assert_eq!(mlp["model.d_dropout"], "0.3");
        assert!(!mlp.contains_key("optim.d.beta1") && mlp.contains_key("optim.g.beta1"));
    }

    #[test]
    fn a_written_config_flattens_like_the_resolved_one() {
        let c = Config::from_toml_str("[optim.d]\nlr = 0.0003", "t", &[]).unwrap();
        let table: toml::Table = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(flatten_toml(&table), flatten(&c));
        assert_eq!(flatten(&c)["optim.d.lr"], "0.0003");
        assert_eq!(flatten(&c)["train.rollback_lr_factor"], "0.5");
        assert_eq!(flatten(&c)["train.loss"], "non-saturating");
    }
}
