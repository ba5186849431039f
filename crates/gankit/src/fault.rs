//! Crash points for the crash-safety tests. With `GANKIT_CRASH_AT=NAME:K` in the
//! environment, the process aborts (no destructor runs, no buffer is flushed: as abrupt as
//! SIGKILL) the K-th time it passes point NAME. The soak test (`scripts/soak.sh`) uses it
//! to land crashes exactly where a random SIGKILL rarely does: inside a checkpoint write,
//! between the weights and state.json, during start-up, half way through a metrics.csv
//! line. Unset (every normal run), a point costs one load of an initialised `OnceLock`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a crash point.
pub const ENV: &str = "GANKIT_CRASH_AT";

/// The points, for the tests that arm them.
pub const POINTS: [&str; 5] = [
    "start",
    "checkpoint-file",
    "checkpoint-state",
    "checkpoint-rename",
    "metrics-append",
];

fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var(ENV).ok()?;
            let (name, k) = v.split_once(':')?;
            Some((name.to_string(), k.parse().ok()?))
        })
        .as_ref()
}

/// Pass crash point `name` (one of [`POINTS`]).
pub fn point(name: &str) {
    static PASSED: AtomicU64 = AtomicU64::new(0);
    let Some((armed, k)) = armed() else {
        return;
    };
    if armed == name && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *k {
        std::process::abort();
    }
}
