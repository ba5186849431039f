//! `gankit sweep` and `gankit compare`, run by the real binary on a tiny study: the plan
//! shown before anything runs, every run trained and evaluated, finished runs skipped and
//! their old checkpoints removed, an interrupted one resumed to the same result, a changed
//! study and two members with the same settings refused, the comparison written with each
//! member's settings; and the widest shipped study's page fits a 1400-pixel window.

mod common;

use std::path::Path;

use common::{gankit, stderr, text};

fn write_study(root: &Path, alpha: &str) {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let study = format!(
        r#"title = "tiny study"
seeds = [0, 1]
set = ["train.steps=4", "train.batch_size=8", "data.split=test", "model.g_width=8",
       "model.d_width=8", "log.grid=4", "checkpoint.every=1"]
eval_n = 40
keep_checkpoints = 2
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
    // The plan: each member's settings that differ, nothing written.
    let o = gankit(&["sweep", "tiny.toml", "--plan"], root);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = |table: &str, member: &str| -> String {
        let start = format!("| {member} |");
        let line = table.lines().find(|l| l.starts_with(&start));
        line.unwrap_or_else(|| panic!("no row {member} in {table}"))
            .to_string()
    };
    assert!(
        row(&plan, "alpha.max-0.3").contains("lsgan.alpha.max 0.3,"),
        "{plan}"
    );
    assert!(
        row(&plan, "alpha.max-0.3").contains("train.loss lsgan"),
        "{plan}"
    );
    assert!(
        row(&plan, "dcgan").starts_with("| dcgan | defaults | 2 |"),
        "{plan}"
    );
    assert!(!root.join("runs").exists(), "--plan writes nothing");

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
        // checkpoint.every=1 and checkpoint.keep=3 leave steps 2–4; the study keeps 2.
        let kept = gankit::checkpoint::list(&study.join("runs").join(n).join("checkpoints"));
        assert_eq!(kept.unwrap(), [3, 4], "{n}");
    }
    assert!(stderr(&o).contains(&format!("MB in {}", Path::new("runs/tiny").display())));
    // The table, in the study's order, on stdout; the report beside it.
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let dcgan = table.find("| dcgan | defaults | 2 | 4 |").expect(&table);
    let alpha = table
        .find("| alpha.max-0.3 | lsgan.alpha.end")
        .expect(&table);
    assert!(dcgan < alpha, "{table}");
    assert!(row(&table, "alpha.max-0.3").contains("lsgan.alpha.max 0.3,"));
    assert!(row(&table, "alpha.max-0.3").contains("| 2 | 4 |"));
    let json = std::fs::read_to_string(study.join("compare/compare.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["members"][1]["settings"]["lsgan.alpha.max"], "0.3");
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
    assert_eq!(
        gankit::checkpoint::list(&run.join("checkpoints")).unwrap(),
        [3]
    );
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

    // compare of the study folder again: the study's own title.
    let o = gankit(&["compare", "runs/tiny"], root);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(study.join("compare/report.html")).unwrap();
    assert!(html.contains("<h1>tiny study</h1>"), "the study's title");

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
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.contains("| dcgan | – | 2 | 4 |"), "{table}");
    assert!(root.join("cmp/report.html").is_file());
    check_images_load_in_chromium(&study.join("compare/report.html"), root);
    let o = gankit(&["compare", "nowhere"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn two_members_with_the_same_settings_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    // "pretrained-alpha" claims α, but the pretrained config has none and its set adds
    // only logging: it would train what "pretrained" trains.
    let study = format!(
        r#"title = "t"
seeds = [0]
[[member]]
name = "pretrained"
config = "{0}/lsgan-pretrained.toml"
[[member]]
name = "pretrained-alpha"
config = "{0}/lsgan-pretrained.toml"
set = ["log.sample_every=100"]
"#,
        configs.display()
    );
    std::fs::write(tmp.path().join("t.toml"), study).unwrap();
    for args in [&["sweep", "t.toml", "--plan"][..], &["sweep", "t.toml"]] {
        let o = gankit(args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = stderr(&o);
        assert!(
            err.contains(
                "members \"pretrained\" and \"pretrained-alpha\" resolve to the same settings"
            ),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!tmp.path().join("runs").exists());
}

/// Report 004's page is the widest the shipped studies make (12 members, up to 13 loss
/// columns, the longest settings cells): compared from run folders that hold each member's
/// resolved config and made-up metrics, its table fits a 1400-pixel browser window.
#[test]
fn the_widest_study_page_fits_a_1400_pixel_window() {
    let Some((browser, required)) = chromium() else {
        eprintln!("skipped the browser check: no chromium");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let studies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../studies");
    let plan = gankit::study::spec::plan(
        &studies.join("report004.toml"),
        gankit::study::spec::Scale::Reduced,
    )
    .unwrap();
    let losses = [
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "acc_real",
        "acc_fake",
        "w_dist",
        "gp",
        "grad_norm",
        "lipschitz_bound",
    ];
    for (i, run) in plan.runs.iter().enumerate() {
        let dir = root.join("study/runs").join(&run.name);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = gankit::config::Config::load(&run.config, &run.set).unwrap();
        std::fs::write(dir.join("config.toml"), cfg.to_toml()).unwrap();
        let mut csv = format!("step,epoch,images_per_s,{},wall_s\n", losses.join(","));
        for step in 1..=60 {
            let values: Vec<String> = (0..losses.len())
                .map(|k| format!("{:.4}", 1000.0 * ((step * (k + 2) + i) % 7) as f64 - 2999.5))
                .collect();
            csv.push_str(&format!(
                "{step},0,100,{},{}\n",
                values.join(","),
                step as f64 * 0.19
            ));
        }
        std::fs::write(dir.join("metrics.csv"), csv).unwrap();
        let eval = format!(
            r#"{{"fid": {:.2}, "precision": 0.1234, "recall": 0.0012}}"#,
            100.0 + i as f64 * 3.7
        );
        std::fs::write(dir.join("eval.json"), eval).unwrap();
    }
    let o = gankit(&["compare", "study", "--title", &plan.title], root);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(root.join("study/compare/report.html")).unwrap();
    let scratch = root.join("browser");
    std::fs::create_dir_all(&scratch).unwrap();
    let probe = "document.documentElement.scrollWidth + ' ' + \
        Math.max.apply(null, Array.from(document.querySelectorAll('td')).map(function (c) { \
        return Math.round(c.getBoundingClientRect().height); }))";
    let Some(found) = in_chromium(&browser, &html, &scratch, probe) else {
        assert!(!required, "chromium printed nothing");
        eprintln!("skipped the browser check: chromium loaded nothing");
        return;
    };
    let n: Vec<u32> = found
        .split(' ')
        .map(|w| w.parse().unwrap_or_else(|_| panic!("{found}")))
        .collect();
    assert!(n[0] <= 1400, "the page is {} pixels wide", n[0]);
    assert!(n[1] <= 40, "a table cell is {} pixels high: it wraps", n[1]);
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

/// What the JavaScript expression `probe` gives on `html` opened from disk in headless
/// Chromium, in a 1400 × 1000 window, once the page has loaded, with every host name
/// unresolvable (so nothing can come from a network); None when Chromium printed nothing.
fn in_chromium(browser: &Path, html: &str, scratch: &Path, probe: &str) -> Option<String> {
    let script = format!(
        "<script>window.addEventListener('load', function () {{\
        var p = document.createElement('pre'); p.id = 'gankit-check';\
        p.textContent = 'probe[' + ({probe}) + ']';\
        document.body.appendChild(p); }});</script>"
    );
    assert!(html.contains("</body>"));
    let page = scratch.join("check.html");
    std::fs::write(&page, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let o = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,1000",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&o.stdout);
    // The element the script added (the script's own text holds "probe[" too).
    let marker = "id=\"gankit-check\">probe[";
    let start = dom.find(marker)? + marker.len();
    let end = start + dom[start..].find(']')?;
    Some(dom[start..end].to_string())
}

/// How many images `html` has and how many of them headless Chromium decoded.
fn images_loaded(browser: &Path, html: &str, scratch: &Path) -> (usize, usize) {
    let probe = "Array.from(document.images).length + ' ' + \
        Array.from(document.images).filter(function (i) { \
        return i.complete && i.naturalWidth > 0; }).length";
    let found = in_chromium(browser, html, scratch, probe)
        .unwrap_or_else(|| panic!("chromium printed no count"));
    let words: Vec<usize> = found.split(' ').map(|w| w.parse().unwrap()).collect();
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
