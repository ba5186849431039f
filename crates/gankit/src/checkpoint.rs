//! Checkpoints: everything needed to continue a run exactly.
//!
//! A checkpoint is a directory `checkpoints/step_NNNNNNNN/` holding the model family's
//! tensor files (see `family::model`: `g.safetensors`, `d.safetensors` with weights and
//! buffers, `opt_g.safetensors`, `opt_d.safetensors` with optimiser moments and step counts,
//! ...) and `state.json`: the format version, the run's [`RunState`] (step, data position,
//! RNG position, ...), the config and its hash, and a SHA-256 of every tensor file. It is
//! written into a temporary directory, every file is flushed to disk, and the directory is
//! renamed into place: a crash leaves either the whole checkpoint or none of it. Only the
//! newest `keep` are kept.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::hex;
use crate::error::IoContext;
use crate::rng::RngState;
use crate::{Error, Result};

/// The checkpoint format this gankit writes. 1: state.json without a `format` field (the
/// same layout; read as is). 2: `format` recorded.
pub const FORMAT: u32 = 2;

/// Where a run is, besides its tensors: saved into and restored from a checkpoint as one
/// value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Training iterations completed.
    pub step: u64,
    /// Batches drawn from the data stream so far.
    pub batches: u64,
    /// Position of the noise / dropout generator.
    pub rng: RngState,
    /// Seconds of training so far, across resumes (wall-clock time).
    pub elapsed_s: f64,
    /// Lowest FID seen by evaluation during training so far (when `eval.every` > 0).
    #[serde(default)]
    pub best_fid: Option<f64>,
    /// Factor on every configured learning rate after NaN rollbacks (1 without any).
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// NaN rollbacks so far (`train.on_nan = "rollback"`).
    #[serde(default)]
    pub rollbacks: u32,
    /// Whether `[pretrain]` has run (it runs once, before iteration 1).
    #[serde(default)]
    pub pretrained: bool,
}

/// state.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The checkpoint format ([`FORMAT`]); absent in format 1.
    #[serde(default = "format_1")]
    pub format: u32,
    #[serde(flatten)]
    pub run: RunState,
    /// SHA-256 of the resolved config the run was started with.
    pub config_hash: String,
    /// gankit version that wrote it.
    pub version: String,
    /// SHA-256 of each tensor file, checked on load.
    pub files: BTreeMap<String, String>,
    /// The resolved config the run was written with (TOML), to name what differs when a
    /// checkpoint meets another config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

fn one() -> f64 {
    1.0
}

fn format_1() -> u32 {
    1
}

impl CheckpointState {
    /// Refuse what this gankit cannot read (a newer format) and values no run writes (a
    /// damaged or hand-edited state.json): the error names the field.
    pub fn check(&self, what: &str) -> Result<()> {
        if !(1..=FORMAT).contains(&self.format) {
            return Err(Error::Run(format!(
                "{what} is checkpoint format {} (written by gankit {}); this gankit reads formats 1 to {FORMAT}: use a newer gankit",
                self.format, self.version
            )));
        }
        let bad = |field: &str, v: String| {
            Err(Error::Run(format!(
                "{what}: {field} = {v} is impossible; the checkpoint is damaged"
            )))
        };
        let r = &self.run;
        if !(r.elapsed_s.is_finite() && r.elapsed_s >= 0.0) {
            return bad("elapsed_s", r.elapsed_s.to_string());
        }
        if !(r.lr_scale > 0.0 && r.lr_scale <= 1.0) {
            return bad("lr_scale", r.lr_scale.to_string());
        }
        if let Some(f) = r.best_fid.filter(|f| !f.is_finite()) {
            return bad("best_fid", f.to_string());
        }
        if r.rng.word_pos.parse::<u128>().is_err() {
            return bad("rng.word_pos", format!("{:?}", r.rng.word_pos));
        }
        if self.config_hash.len() != 64 || !self.config_hash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return bad("config_hash", format!("{:?}", self.config_hash));
        }
        if self.files.is_empty() {
            return bad("files", "{}".into());
        }
        Ok(())
    }
}

/// Name of the checkpoint directory of `step`.
pub fn dir_name(step: u64) -> String {
    format!("step_{step:08}")
}

/// Write a safetensors file (a full disk or a denied write is an `Error::Io` naming the
/// path).
pub fn write_safetensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let sorted: BTreeMap<&String, &Tensor> = tensors.iter().collect();
    let bytes = safetensors::tensor::serialize(sorted, None)
        .map_err(|e| Error::Run(format!("cannot encode {}: {e}", path.display())))?;
    std::fs::write(path, bytes).at(path)
}

/// Read a safetensors file onto `device`. Only what gankit writes is accepted: f32
/// tensors (u32 for step counters), every float finite.
pub fn read_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.is_file() {
        return Err(Error::Run(format!("{} is missing", path.display())));
    }
    let bytes = std::fs::read(path).at(path)?;
    decode_safetensors(&bytes, &path.display().to_string(), device)
}

/// Decode safetensors bytes (see [`read_safetensors`]); `what` names them in errors.
pub fn decode_safetensors(
    bytes: &[u8],
    what: &str,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    use candle_core::DType;
    let damaged = |m: String| Error::Run(format!("{what} {m}"));
    let map = candle_core::safetensors::load_buffer(bytes, device)
        .map_err(|e| damaged(format!("is not a valid safetensors file: {e}")))?;
    for (name, t) in &map {
        match t.dtype() {
            DType::F32 => {
                let v = t.flatten_all()?.to_vec1::<f32>()?;
                if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                    return Err(damaged(format!(
                        "holds {bad} in `{name}`: it is damaged, or its run diverged"
                    )));
                }
            }
            DType::U32 => {}
            other => {
                return Err(damaged(format!(
                    "has `{name}` of type {other:?}; gankit writes f32 (and u32 counters): it is not a gankit file"
                )));
            }
        }
    }
    Ok(map)
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).at(path)?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn fsync(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).at(path)
}

/// Write a checkpoint for `state.run.step` under `dir` (the run's `checkpoints/`), then
/// delete all but the newest `keep`. `tensors` are the family's files and their tensors.
pub fn save(
    dir: &Path,
    state: CheckpointState,
    tensors: &[(String, HashMap<String, Tensor>)],
    keep: usize,
) -> Result<PathBuf> {
    let name = dir_name(state.run.step);
    let path = save_as(dir, &name, state, tensors)?;
    prune(dir, keep)?;
    Ok(path)
}

/// Name of the checkpoint kept for the best FID (never pruned).
pub const BEST: &str = "best";

/// Write a checkpoint into `dir/name` atomically. One of that name (such as `best`) is
/// replaced without a moment where neither exists on disk: it is first renamed to
/// `.old-NAME`, the new one renamed into place, then the old one deleted; a crash between
/// the two renames is undone by the next call (and by [`recover`]).
pub fn save_as(
    dir: &Path,
    name: &str,
    mut state: CheckpointState,
    tensors: &[(String, HashMap<String, Tensor>)],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).at(dir)?;
    recover(dir, name)?;
    let tmp = dir.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).at(&tmp)?;
    }
    std::fs::create_dir(&tmp).at(&tmp)?;
    if let Err(e) = write_files(&tmp, &mut state, tensors) {
        // A full disk leaves no half-written checkpoint behind.
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let fin = dir.join(name);
    let old = dir.join(format!(".old-{name}"));
    if fin.exists() {
        std::fs::rename(&fin, &old).at(&old)?;
        fsync(dir)?;
    }
    std::fs::rename(&tmp, &fin).at(&fin)?;
    crate::fault::point("checkpoint-rename");
    fsync(dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    Ok(fin)
}

/// The tensor files and state.json of a checkpoint, written and flushed into `tmp`.
fn write_files(
    tmp: &Path,
    state: &mut CheckpointState,
    tensors: &[(String, HashMap<String, Tensor>)],
) -> Result<()> {
    state.format = FORMAT;
    state.files.clear();
    for (file, map) in tensors {
        let p = tmp.join(file);
        write_safetensors(&p, map)?;
        fsync(&p)?;
        state.files.insert(file.to_string(), sha256_file(&p)?);
        crate::fault::point("checkpoint-file");
    }
    crate::fault::point("checkpoint-state");
    let json = serde_json::to_string_pretty(&state).expect("state serialises");
    let sp = tmp.join("state.json");
    std::fs::write(&sp, json).at(&sp)?;
    fsync(&sp)
}

/// Put back `dir/name` from `.old-NAME` when a crash came between the two renames of
/// [`save_as`]; delete a leftover `.old-NAME` otherwise.
pub fn recover(dir: &Path, name: &str) -> Result<()> {
    let (fin, old) = (dir.join(name), dir.join(format!(".old-{name}")));
    if !old.exists() {
        return Ok(());
    }
    if fin.exists() {
        std::fs::remove_dir_all(&old).at(&old)
    } else {
        std::fs::rename(&old, &fin).at(&fin)?;
        fsync(dir)
    }
}

/// Steps of the complete checkpoints under `dir`, ascending.
pub fn list(dir: &Path) -> Result<Vec<u64>> {
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let mut steps = Vec::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix("step_"))
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        if e.path().join("state.json").is_file() {
            steps.push(step);
        }
    }
    steps.sort();
    Ok(steps)
}

/// Delete all but the newest `keep` complete checkpoints under `dir`.
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    let steps = list(dir)?;
    for s in &steps[..steps.len().saturating_sub(keep)] {
        let p = dir.join(dir_name(*s));
        std::fs::remove_dir_all(&p).at(&p)?;
    }
    Ok(())
}

/// A checkpoint read back from disk, checksums verified.
pub struct Loaded {
    pub state: CheckpointState,
    pub tensors: HashMap<String, HashMap<String, Tensor>>,
    pub path: PathBuf,
}

/// Load checkpoint `step` (the newest when `None`) from `dir`.
pub fn load(dir: &Path, step: Option<u64>, device: &Device) -> Result<Loaded> {
    let steps = list(dir)?;
    let step = match step {
        Some(s) if steps.contains(&s) => s,
        Some(s) => {
            return Err(Error::Run(format!(
                "no checkpoint for step {s} in {}; available: {steps:?}",
                dir.display()
            )));
        }
        None => *steps
            .last()
            .ok_or_else(|| Error::Run(format!("no checkpoint in {}", dir.display())))?,
    };
    let path = dir.join(dir_name(step));
    let sp = path.join("state.json");
    let text = std::fs::read_to_string(&sp).at(&sp)?;
    let state: CheckpointState = serde_json::from_str(&text)
        .map_err(|e| Error::Run(format!("{} is damaged: {e}", sp.display())))?;
    state.check(&sp.display().to_string())?;
    let mut tensors = HashMap::new();
    for file in state.files.keys() {
        if file.contains(['/', '\\']) || file.starts_with('.') {
            return Err(Error::Run(format!(
                "{} names a file {file:?} outside the checkpoint: it is damaged",
                sp.display()
            )));
        }
        let p = path.join(file);
        let want = &state.files[file];
        if !p.is_file() {
            return Err(Error::Run(format!("{} is missing", p.display())));
        }
        if &sha256_file(&p)? != want {
            return Err(Error::Run(format!(
                "{} does not match the checksum in state.json: the checkpoint is damaged",
                p.display()
            )));
        }
        tensors.insert(file.clone(), read_safetensors(&p, device)?);
    }
    Ok(Loaded {
        state,
        tensors,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: u64) -> CheckpointState {
        CheckpointState {
            format: FORMAT,
            run: RunState {
                step,
                batches: step * 2,
                rng: RngState {
                    seed: 1,
                    stream: 3,
                    word_pos: "12345678901234567890123".into(),
                },
                elapsed_s: 1.5,
                lr_scale: 1.0,
                rollbacks: 0,
                pretrained: false,
                best_fid: None,
            },
            config_hash: "ab".repeat(32),
            config: None,
            version: "0".into(),
            files: BTreeMap::new(),
        }
    }

    fn tensors() -> Vec<(String, HashMap<String, Tensor>)> {
        [
            "g.safetensors",
            "d.safetensors",
            "opt_g.safetensors",
            "opt_d.safetensors",
        ]
        .iter()
        .map(|f| {
            let mut m = HashMap::new();
            m.insert(
                "w".to_string(),
                Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap(),
            );
            (f.to_string(), m)
        })
        .collect()
    }

    /// state.json as gankit wrote it before the format field (checkpoint format 1), and a
    /// format from the future.
    #[test]
    fn format_1_checkpoints_load_and_newer_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), state(7), &tensors(), 3).unwrap();
        let sp = dir.path().join(dir_name(7)).join("state.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(
            v["step"], 7,
            "the run state is written flat, as in format 1"
        );
        v.as_object_mut().unwrap().remove("format");
        std::fs::write(&sp, v.to_string()).unwrap();
        let l = load(dir.path(), None, &Device::Cpu).unwrap();
        assert_eq!((l.state.format, l.state.run.step), (1, 7));
        v["format"] = 9.into();
        std::fs::write(&sp, v.to_string()).unwrap();
        let e = load(dir.path(), None, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("checkpoint format 9") && e.contains("newer gankit"),
            "{e}"
        );
    }

    #[test]
    fn round_trip_keeps_the_newest_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        for s in [10, 20, 30] {
            save(dir.path(), state(s), &tensors(), 2).unwrap();
        }
        assert_eq!(list(dir.path()).unwrap(), vec![20, 30]);
        let l = load(dir.path(), None, &Device::Cpu).unwrap();
        assert_eq!(l.state.run.step, 30);
        assert_eq!(l.state.run.rng, state(30).run.rng);
        assert_eq!(
            l.tensors["d.safetensors"]["w"].to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        assert!(load(dir.path(), Some(10), &Device::Cpu).is_err());
        // Flip one byte of a weight file: the checksum catches it.
        let p = dir.path().join(dir_name(30)).join("g.safetensors");
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 0xff;
        std::fs::write(&p, b).unwrap();
        let e = load(dir.path(), None, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("checksum"), "{e}");
    }

    #[test]
    fn an_unfinished_temporary_checkpoint_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), state(5), &tensors(), 3).unwrap();
        std::fs::create_dir(dir.path().join(".tmp-step_00000010")).unwrap();
        std::fs::create_dir(dir.path().join("step_00000020")).unwrap(); // no state.json
        assert_eq!(list(dir.path()).unwrap(), vec![5]);
    }

    #[test]
    fn replacing_a_named_checkpoint_survives_a_crash_between_the_renames() {
        let dir = tempfile::tempdir().unwrap();
        let best = |d: &Path| -> u64 {
            let text = std::fs::read_to_string(d.join(BEST).join("state.json")).unwrap();
            serde_json::from_str::<CheckpointState>(&text)
                .unwrap()
                .run
                .step
        };
        save_as(dir.path(), BEST, state(1), &tensors()).unwrap();
        save_as(dir.path(), BEST, state(2), &tensors()).unwrap();
        assert_eq!(best(dir.path()), 2);
        assert!(!dir.path().join(".old-best").exists());
        // A crash after the first rename: only .old-best is on disk.
        std::fs::rename(dir.path().join(BEST), dir.path().join(".old-best")).unwrap();
        recover(dir.path(), BEST).unwrap();
        assert_eq!(best(dir.path()), 2);
        // A crash after the second rename: both are there; the old one goes.
        save_as(dir.path(), "spare", state(3), &tensors()).unwrap();
        std::fs::rename(dir.path().join("spare"), dir.path().join(".old-best")).unwrap();
        save_as(dir.path(), BEST, state(4), &tensors()).unwrap();
        assert_eq!(best(dir.path()), 4);
        assert!(!dir.path().join(".old-best").exists());
    }
}
