//! Checkpoint loading: a checkpoint directory whose state.json and g.safetensors come from
//! the fuzzer (the other files are a real tiny run's), loaded and restored into the
//! networks as `gankit resume` does. Any bytes, no panic.
//!
//! The input is `STATE_JSON \0 SAFETENSORS`. When the JSON is an object, its `files`
//! checksums are set to the files' real hashes, so the fuzzer reaches the parsers behind
//! the checksum check instead of stopping at it.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use gankit::checkpoint::{self, CheckpointState};
use gankit::config::Config;
use gankit::nets::Nets;
use gankit::rng::RngState;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn config() -> Config {
    Config::from_toml_str("[model]\ng_width = 2\nd_width = 2\nz_dim = 4", "fuzz", &[]).unwrap()
}

/// The tensor files of a real tiny run, and a scratch folder.
fn template() -> &'static (Vec<(&'static str, HashMap<String, Tensor>)>, PathBuf) {
    static T: OnceLock<(Vec<(&'static str, HashMap<String, Tensor>)>, PathBuf)> = OnceLock::new();
    T.get_or_init(|| {
        let nets = Nets::build(&config(), &Device::Cpu).unwrap();
        let dir = std::env::temp_dir().join(format!("gankit-fuzz-{}", std::process::id()));
        (nets.checkpoint_tensors().unwrap(), dir)
    })
}

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// With `GANKIT_FUZZ_SEED=FILE`, write a seed input first: an empty state (a valid one is
/// made) and the real G weights.
fn write_seed() {
    if let Some(path) = std::env::var_os("GANKIT_FUZZ_SEED") {
        let (files, dir) = template();
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("seed.safetensors");
        checkpoint::write_safetensors(&p, &files[0].1).unwrap();
        let mut seed = vec![0u8];
        seed.extend(std::fs::read(&p).unwrap());
        std::fs::write(path, seed).unwrap();
    }
}

fuzz_target!(|data: &[u8]| {
    static SEED: std::sync::Once = std::sync::Once::new();
    SEED.call_once(write_seed);
    let (files, dir) = template();
    let (json, weights) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let ckpt = dir.join("step_00000001");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(&ckpt).unwrap();
    let mut hashes = serde_json::Map::new();
    for (name, tensors) in files {
        let p = ckpt.join(name);
        if *name == "g.safetensors" {
            std::fs::write(&p, weights).unwrap();
        } else {
            checkpoint::write_safetensors(&p, tensors).unwrap();
        }
        hashes.insert(name.to_string(), hex(&std::fs::read(&p).unwrap()).into());
    }
    let state = match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("files".into(), hashes.into());
            serde_json::to_vec(&m).unwrap()
        }
        _ if json.is_empty() => {
            // A valid state: the fuzzer then works on the weights alone.
            let st = CheckpointState {
                step: 1,
                batches: 1,
                rng: RngState {
                    seed: 0,
                    stream: 3,
                    word_pos: "0".into(),
                },
                elapsed_s: 0.0,
                config_hash: "0".repeat(64),
                version: "fuzz".into(),
                files: hashes
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
                    .collect(),
                best_fid: None,
                lr_scale: 1.0,
                rollbacks: 0,
                pretrained: false,
                config: None,
            };
            serde_json::to_vec(&st).unwrap()
        }
        _ => json.to_vec(),
    };
    std::fs::write(ckpt.join("state.json"), state).unwrap();
    if let Ok(loaded) = checkpoint::load(dir, None, &Device::Cpu) {
        let mut nets = Nets::build(&config(), &Device::Cpu).unwrap();
        let _ = nets.restore(&loaded.tensors);
    }
});
