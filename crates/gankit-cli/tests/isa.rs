//! GANKIT_ISA: the binary runs its step on the narrowed instruction sets and says which.

mod common;

use std::process::{Command, Output};

use common::{TINY, text};

fn gankit_with_isa(isa: &str, args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gankit"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .env("GANKIT_HOME", cwd.join("home"))
        .env("GANKIT_ISA", isa)
        .output()
        .expect("the binary runs")
}

/// The flags /proc/cpuinfo lists for this CPU (empty off Linux).
fn cpu_flags() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn level(flags: &[String]) -> u8 {
    let has = |f: &str| flags.iter().any(|x| x == f);
    if has("avx512f") && has("avx512bw") && has("avx512vl") {
        2
    } else if has("avx2") && has("fma") {
        1
    } else {
        0
    }
}

#[test]
fn narrowed_instruction_sets_run_the_step_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let flags = cpu_flags();
    let faulting = cfg!(all(target_os = "linux", target_arch = "x86_64"))
        && flags.iter().any(|f| f == "cpuid_fault");
    let native = level(&flags);
    for (isa, rank) in [("avx2", 1u8), ("x86-64", 0)] {
        let mut args = vec!["bench", "--json", "--steps", "2", "--warmup", "0"];
        args.extend_from_slice(&TINY);
        let o = gankit_with_isa(isa, &args, dir.path());
        if !faulting {
            assert_eq!(o.status.code(), Some(2), "{}", text(&o));
            assert!(text(&o).contains("CPUID faulting"), "{}", text(&o));
            continue;
        }
        assert!(o.status.success(), "GANKIT_ISA={isa}: {}", text(&o));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        let expected = ["x86-64", "avx2", "avx512"][rank.min(native) as usize];
        assert_eq!(v["isa"], expected, "GANKIT_ISA={isa}: {v}");
        let ms = v["ms_median"].as_f64().unwrap();
        assert!(ms.is_finite() && ms > 0.0, "{v}");
    }
    // Unset, the bench reports everything the CPU has.
    let mut args = vec!["bench", "--json", "--steps", "1", "--warmup", "0"];
    args.extend_from_slice(&TINY);
    let o = gankit_with_isa("", &args, dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            v["isa"],
            ["x86-64", "avx2", "avx512"][native as usize],
            "{v}"
        );
    }
}

#[test]
fn a_baseline_training_run_learns_and_checkpoints() {
    // Under the scalar paths (gemm's and gankit's) a whole run still works end to end.
    if !std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .contains("cpuid_fault")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["train", "--name", "run"];
    args.extend_from_slice(&TINY);
    let o = gankit_with_isa("x86-64", &args, dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(dir.path().join("runs/run/metrics.csv")).unwrap();
    assert!(csv.lines().count() >= 5, "{csv}");
    assert!(!csv.contains("NaN") && !csv.contains("nan"), "{csv}");
}

#[test]
fn an_unknown_level_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = gankit_with_isa("avx3", &["datasets"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("GANKIT_ISA=avx3") && err.contains("avx2"),
        "{err}"
    );
}
