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
    check_images_load_in_chromium(&study.join("compare/report.html"), root);
    let o = gankit(&["compare", "nowhere"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// The headless browser: `GANKIT_CHROMIUM` when set (then required), else `chromium` on
/// the PATH (Debian's package), else None.
fn chromium() -> Option<(std::path::PathBuf, bool)> {
    if let Some(p) = std::env::var_os("GANKIT_CHROMIUM") {
        return Some((p.into(), true));
    }
    let found = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then(|| ("chromium".into(), false))
}

/// How many images `html` has and how many of them headless Chromium decoded, opening the
/// file from disk with every host name unresolvable (so nothing can come from a network).
/// A script appended to a copy of the page counts them once the page has loaded.
fn images_loaded(browser: &Path, html: &str, scratch: &Path) -> (usize, usize) {
    let script = "<script>window.addEventListener('load', function () {\
        var all = Array.from(document.images);\
        var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; });\
        var p = document.createElement('pre'); p.id = 'gankit-check';\
        p.textContent = 'images ' + all.length + ' loaded ' + ok.length;\
        document.body.appendChild(p); });</script>";
    assert!(html.contains("</body>"));
    let page = scratch.join("check.html");
    std::fs::write(&page, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let o = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&o.stdout);
    let start = dom
        .find("images ")
        .unwrap_or_else(|| panic!("no count in {dom}"));
    let words: Vec<usize> = dom[start..]
        .split(['<', ' '])
        .filter_map(|w| w.parse().ok())
        .take(2)
        .collect();
    (words[0], words[1])
}

/// The HTML report opens from disk in a real browser and every image in it decodes; a copy
/// with one image's data cut short shows that the check sees a broken image.
fn check_images_load_in_chromium(report: &Path, root: &Path) {
    let Some((browser, required)) = chromium() else {
        eprintln!("skipped the browser check: no chromium");
        return;
    };
    let html = std::fs::read_to_string(report).unwrap();
    let scratch = root.join("browser");
    std::fs::create_dir_all(&scratch).unwrap();
    let (all, loaded) = images_loaded(&browser, &html, &scratch);
    if all == 0 && !required {
        eprintln!("skipped the browser check: chromium loaded nothing");
        return;
    }
    assert!(all >= 5, "{all} images");
    assert_eq!(loaded, all, "images that did not load");
    let marker = "data:image/png;base64,";
    let at = html.find(marker).unwrap() + marker.len();
    let broken = format!("{}AAAA{}", &html[..at], &html[at + 200..]);
    assert_eq!(images_loaded(&browser, &broken, &scratch), (all, all - 1));
}
