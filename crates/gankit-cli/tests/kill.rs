//! Crash safety: SIGKILL a training run at pseudo-random moments, resume it each time, and
//! check that the finished run equals an uninterrupted one bit for bit (weights, optimiser
//! state, every metrics.csv row), so no kill lost more than the work since its checkpoint.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use common::{TINY, gankit, text};

const STEPS: &str = "train.steps=60";
/// SIGKILLs aimed at per test.
const KILLS: u32 = 5;

fn train_args(name: &str) -> Vec<&str> {
    let mut a = vec!["train", "--name", name];
    a.extend(TINY);
    a.extend([
        "--set",
        STEPS,
        "--set",
        "checkpoint.every=3",
        "--set",
        "log.sample_every=5",
    ]);
    a
}

/// xorshift64: reproducible kill moments without a dependency.
struct Moments(u64);
impl Moments {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

/// Metrics rows without the timing columns, as bit patterns.
fn rows(run: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(text.ends_with('\n'), "metrics.csv ends in a torn line");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "images_per_s" && header[i] != "wall_s")
        .collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| f[i].to_string()).collect()
        })
        .collect()
}

fn final_tensors(run: &Path) -> Vec<(String, Vec<u32>)> {
    let loaded = gankit::checkpoint::load(&run.join("checkpoints"), None, &Device::Cpu).unwrap();
    assert_eq!(loaded.state.step, 60);
    let mut out = vec![];
    for (file, map) in &loaded.tensors {
        for (name, t) in map {
            let v = t
                .flatten_all()
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap();
            let bits = v
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect();
            out.push((format!("{file}/{name}"), bits));
        }
    }
    out.sort();
    out
}

#[test]
fn sigkill_at_random_moments_loses_nothing_but_the_work_since_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let reference = gankit(&train_args("ref"), tmp.path());
    assert!(reference.status.success(), "{}", text(&reference));
    // Kill moments spread over a fraction of a whole run's time, start-up included, so that
    // they land in every phase: loading data, training, writing checkpoints.
    let whole = t0.elapsed().as_millis() as u64;

    let run = tmp.path().join("runs/killed");
    let mut moments = Moments(0x9E37_79B9_7F4A_7C15);
    let mut kills = 0;
    let mut finished = false;
    for attempt in 0..50 {
        let args: Vec<&str> = if run.join("config.toml").is_file() {
            vec!["resume", "runs/killed"]
        } else {
            train_args("killed")
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_gankit"))
            .args(&args)
            .current_dir(tmp.path())
            .env("RAYON_NUM_THREADS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // After KILLS kills, the next process runs to the end.
        let deadline = (kills < KILLS)
            .then(|| Instant::now() + Duration::from_millis(moments.next_ms(10, whole / 4 + 20)));
        loop {
            if child.try_wait().unwrap().is_some() {
                let o = child.wait_with_output().unwrap();
                assert!(o.status.success(), "attempt {attempt}: {}", text(&o));
                finished = true;
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if finished {
            break;
        }
    }
    assert!(finished, "the run never finished");
    assert!(
        kills >= 3,
        "only {kills} kills landed before the run finished"
    );
    let reference = tmp.path().join("runs/ref");
    assert_eq!(
        rows(&run),
        rows(&reference),
        "metrics.csv differs after {kills} kills"
    );
    assert_eq!(final_tensors(&run), final_tensors(&reference));
    eprintln!("{kills} SIGKILLs, every resume continued exactly (whole run {whole} ms)");
}
