//! `gankit bench --flops`: the step's counted arithmetic beside the machine's gemm peak.

mod common;

use common::{TINY, gankit, text};

fn bench_json(extra: &[&str], dir: &std::path::Path) -> serde_json::Value {
    let mut args = vec!["bench", "--json", "--warmup", "1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&TINY);
    let o = gankit(&args, dir);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
}

#[test]
fn flops_per_iteration_are_counted_and_set_beside_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    let one = bench_json(&["--steps", "1"], dir.path());
    let three = bench_json(&["--steps", "3", "--flops"], dir.path());
    let per_iter = one["gflop_per_iter"].as_f64().unwrap();
    assert!(per_iter > 0.0, "{one}");
    // Every iteration does the same products: the count per iteration does not depend on
    // how many were timed.
    assert!(
        (three["gflop_per_iter"].as_f64().unwrap() - per_iter).abs() < 1e-12,
        "{one}\n{three}"
    );
    assert!(one["gemm_peak_gflops"].is_null(), "{one}");
    let peak = three["gemm_peak_gflops"].as_f64().unwrap();
    let rate = three["gflops"].as_f64().unwrap();
    assert!(peak > 1.0 && rate > 0.0, "{three}");
    assert!(
        rate < 2.0 * peak,
        "the step cannot outrun the products' peak: {three}"
    );

    let mut args = vec!["bench", "--flops", "--steps", "1", "--warmup", "0"];
    args.extend_from_slice(&TINY);
    let o = gankit(&args, dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("gemm peak") && text(&o).contains("% of it"),
        "{}",
        text(&o)
    );
}
