//! `gankit sweep` and `gankit compare`, run by the real binary on a tiny study: every run
//! trained and evaluated, finished runs skipped, an interrupted one resumed to the same
//! result, a changed study refused, the comparison written.

mod common;

use std::path::Path;

use common::{gankit, stderr, text};

fn write_study(root: &Path, alpha: &str) {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let study = format!(
        r#"title = "tiny study"
seeds = [0, 1]
set = ["train.steps=4", "train.batch_size=8", "data.split=test", "model.g_width=8",
       "model.d_width=8", "log.grid=4", "checkpoint.every=2"]
eval_n = 40
[[member]]
name = "dcgan"
config = "{0}/dcgan-fashion.toml"
[grid]
base = "{0}/lsgan-alpha.toml"
axes = {{ "lsgan.alpha.max" = ["{alpha}"] }}
"#,
        configs.display()
    );
    std::fs::write(root.join("tiny.toml"), study).unwrap();
}

#[test]
fn a_study_runs_every_member_skips_finished_runs_and_resumes_interrupted_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_study(root, "0.3");
    let o = gankit(&["sweep", "tiny.toml", "--jobs", "2"], root);
    assert!(o.status.success(), "{}", text(&o));
    let study = root.join("runs/tiny");
    let names = [
        "dcgan-s0",
        "dcgan-s1",
        "alpha.max-0.3-s0",
        "alpha.max-0.3-s1",
    ];
    for n in names {
        assert!(
            study.join("runs").join(n).join("eval.json").is_file(),
            "{n}"
        );
        assert!(study.join("logs").join(format!("{n}.log")).is_file(), "{n}");
    }
    // The table, in the study's order, on stdout; the report beside it.
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let dcgan = table.find("| dcgan | 2 | 4 |").expect(&table);
    let alpha = table.find("| alpha.max-0.3 | 2 | 4 |").expect(&table);
    assert!(dcgan < alpha, "{table}");
    let html = std::fs::read_to_string(study.join("compare/report.html")).unwrap();
    assert!(
        html.matches("data:image/png;base64,").count() >= 5,
        "grids and curves"
    );
    assert!(study.join("compare/compare.md").is_file());

    // Again: nothing to do.
    let o = gankit(&["sweep", "tiny.toml"], root);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stderr(&o).matches("finished earlier, skipped").count(), 4);

    // A run stopped before its end and its evaluation is resumed and scores the same.
    let run = study.join("runs/dcgan-s1");
    let before = std::fs::read_to_string(run.join("eval.json")).unwrap();
    std::fs::remove_file(run.join("eval.json")).unwrap();
    std::fs::remove_dir_all(run.join("checkpoints/step_00000004")).unwrap();
    let o = gankit(&["sweep", "tiny.toml"], root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("dcgan-s1: resuming"), "{}", stderr(&o));
    let fid = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["fid"].clone();
    let after = std::fs::read_to_string(run.join("eval.json")).unwrap();
    assert_eq!(fid(&before), fid(&after));

    // A changed study does not reuse the folder.
    write_study(root, "0.9");
    let o = gankit(&["sweep", "tiny.toml"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("another --out"), "{}", stderr(&o));

    // compare takes run folders too.
    let o = gankit(
        &[
            "compare",
            "runs/tiny/runs/dcgan-s0",
            "runs/tiny/runs/dcgan-s1",
            "--out",
            "cmp",
        ],
        root,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| dcgan | 2 | 4 |"));
    assert!(root.join("cmp/report.html").is_file());
    let o = gankit(&["compare", "nowhere"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
