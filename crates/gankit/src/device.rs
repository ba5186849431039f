//! The device a command computes on, by name: `cpu`, `cuda`, `cuda:N` or `auto`.
//!
//! CUDA needs a gankit built with the `cuda` feature (README, "GPU"). Without it, asking
//! for `cuda` is a user error that says how to build one, and `auto` is the CPU.

use candle_core::{Device, DeviceLocation};

use crate::{Error, Result};

/// The names [`select`] accepts, for help texts.
pub const NAMES: &str = "cpu, cuda, cuda:N or auto";

/// The device called `name`.
pub fn select(name: &str) -> Result<Device> {
    match name.trim() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(auto()),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => Err(Error::Config(format!(
                "unknown device `{other}`: use {NAMES}"
            ))),
        },
    }
}

/// CUDA device 0 when this build has CUDA and the device answers, else the CPU.
pub fn auto() -> Device {
    if cfg!(feature = "cuda")
        && let Ok(d) = Device::new_cuda(0)
    {
        return d;
    }
    Device::Cpu
}

fn cuda(i: usize) -> Result<Device> {
    if !cfg!(feature = "cuda") {
        return Err(Error::Config(
            "this gankit was built without CUDA: build it with `cargo build --release --features cuda` \
             (README, \"GPU\"), or use --device cpu"
                .into(),
        ));
    }
    Device::new_cuda(i).map_err(|e| {
        Error::Config(format!(
            "CUDA device {i} is not available ({e}): check `nvidia-smi`, and that libcuda, libcudnn \
             and libcublas are on the library path (README, \"GPU\"), or use --device cpu"
        ))
    })
}

/// The device's name as [`select`] reads it: `cpu`, `cuda:N` (or `metal:N`).
pub fn name(d: &Device) -> String {
    match d.location() {
        DeviceLocation::Cpu => "cpu".into(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_and_written_back() {
        assert!(select("cpu").unwrap().is_cpu());
        assert_eq!(name(&select(" cpu ").unwrap()), "cpu");
        let auto = select("auto").unwrap();
        assert!(auto.is_cpu() || auto.is_cuda());
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let e = select(bad).unwrap_err();
            assert!(e.is_user_error(), "{bad}: {e}");
            assert!(e.to_string().contains(NAMES), "{bad}: {e}");
        }
    }

    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        if cfg!(feature = "cuda") {
            return;
        }
        assert!(select("auto").unwrap().is_cpu());
        for name in ["cuda", "cuda:1"] {
            let e = select(name).unwrap_err();
            assert!(e.is_user_error());
            assert!(e.to_string().contains("--features cuda"), "{e}");
        }
    }
}
