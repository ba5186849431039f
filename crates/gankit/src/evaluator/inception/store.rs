//! The user's Inception weights under `<home>/evaluators/`: imported once from a safetensors
//! file (`gankit evaluator import-inception`; a `.pth` goes through
//! `scripts/convert_inception.py` first), checked tensor by tensor, stored with its SHA-256
//! beside it, and checked against that hash whenever it is loaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{InceptionV3, layout};
use crate::config::hex;
use crate::error::IoContext;
use crate::{Error, Result};

/// The evaluator's name in reports and file names.
pub const NAME: &str = "inception-v3-fid";

/// How to get the weights, for the errors that need them.
pub const HOW_TO_IMPORT: &str = "get pytorch-fid's pt_inception-2015-12-05-6726825d.pth (https://github.com/mseitzer/pytorch-fid/releases), convert it with `python scripts/convert_inception.py FILE.pth inception.safetensors` (needs torch) and run `gankit evaluator import-inception inception.safetensors`";

/// What is saved beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InceptionInfo {
    pub name: String,
    /// SHA-256 of the stored weights: the key of cached real-set features.
    pub sha256: String,
    /// The file it was imported from.
    pub source: String,
    pub tensors: usize,
    pub version: String,
}

pub fn weights_path(home: &Path) -> PathBuf {
    super::super::weights_path(home, NAME)
}

/// Check `file` (safetensors) and store the tensors the network reads under `home`.
pub fn import(home: &Path, file: &Path) -> Result<InceptionInfo> {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "pth" | "pt" | "ckpt") {
        return Err(Error::Config(format!(
            "{} is a PyTorch file: convert it first with `python scripts/convert_inception.py {} inception.safetensors` (needs torch), then import inception.safetensors",
            file.display(),
            file.display()
        )));
    }
    let all = crate::checkpoint::read_safetensors(file, &Device::Cpu)?;
    let wanted = layout::tensors();
    let kept: HashMap<String, Tensor> = wanted
        .iter()
        .filter_map(|(name, _)| all.get(name).map(|t| (name.clone(), t.clone())))
        .collect();
    // Names every missing tensor or wrong shape.
    InceptionV3::new(&kept)?;
    let path = weights_path(home);
    let dir = path.parent().expect("the weights path has a folder");
    std::fs::create_dir_all(dir).at(dir)?;
    crate::checkpoint::write_safetensors(&path, &kept)?;
    let bytes = std::fs::read(&path).at(&path)?;
    let info = InceptionInfo {
        name: NAME.into(),
        sha256: hex(&Sha256::digest(&bytes)),
        source: file.display().to_string(),
        tensors: kept.len(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let json = serde_json::to_string_pretty(&info).expect("info serialises");
    crate::fsutil::write_atomic(&path.with_extension("json"), json.as_bytes())?;
    Ok(info)
}

/// The imported network and its info; without weights, an error saying how to import them.
pub fn load(home: &Path) -> Result<(InceptionV3, InceptionInfo)> {
    let path = weights_path(home);
    if !path.is_file() {
        return Err(Error::Run(format!(
            "no Inception weights in {}: {HOW_TO_IMPORT}",
            path.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )));
    }
    let jp = path.with_extension("json");
    let text = std::fs::read_to_string(&jp).at(&jp)?;
    let info: InceptionInfo = serde_json::from_str(&text).map_err(|e| {
        Error::Run(format!(
            "{} is damaged: {e}; import the weights again",
            jp.display()
        ))
    })?;
    let bytes = std::fs::read(&path).at(&path)?;
    if hex(&Sha256::digest(&bytes)) != info.sha256 {
        return Err(Error::Run(format!(
            "{} does not match the hash in {}: import the weights again",
            path.display(),
            jp.display()
        )));
    }
    let tensors =
        crate::checkpoint::decode_safetensors(&bytes, &path.display().to_string(), &Device::Cpu)?;
    Ok((InceptionV3::new(&tensors)?, info))
}
