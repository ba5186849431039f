//! Image folders through the decoded-image cache, run by the real binary: decoded once, then
//! memory-mapped; the same weights with it, streaming, and after a rebuild; labels from
//! class folders; `gankit cache list | verify | clear`.

mod common;

use std::path::{Path, PathBuf};

use common::{gankit, stderr, text, write_fashion_pngs};

/// 48 Fashion-MNIST test images as 28×28 PNGs in three class folders.
fn write_folder(root: &Path) {
    write_fashion_pngs(&root.join("faces"), 48, |i| format!("class{}", i % 3));
}

/// `faces.zip` (deflated) and `faces.tar` of the folder `faces`, members in reverse order.
fn archive(root: &Path) {
    use std::io::Write;
    let mut files: Vec<PathBuf> = Vec::new();
    for class in std::fs::read_dir(root.join("faces")).unwrap() {
        for f in std::fs::read_dir(class.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    files.reverse();
    let rel = |p: &Path| p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
    let mut z = zip::ZipWriter::new(std::fs::File::create(root.join("faces.zip")).unwrap());
    let mut t = tar::Builder::new(std::fs::File::create(root.join("faces.tar")).unwrap());
    for p in &files {
        z.start_file(rel(p), zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&std::fs::read(p).unwrap()).unwrap();
        t.append_path_with_name(p, rel(p)).unwrap();
    }
    z.finish().unwrap();
    t.finish().unwrap();
}

/// Train 4 tiny iterations on the folder as run `name`; its stderr.
fn train(root: &Path, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["train", "--name", name];
    for s in [
        "data.dataset=folder",
        "data.path=faces",
        "train.steps=4",
        "train.batch_size=8",
        "model.g_width=8",
        "model.d_width=8",
        "log.grid=4",
        "checkpoint.every=4",
    ] {
        args.extend(["--set", s]);
    }
    for s in extra {
        args.extend(["--set", s]);
    }
    let o = gankit(&args, root);
    assert!(o.status.success(), "{}", text(&o));
    stderr(&o)
}

fn weights(root: &Path, run: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root.join(format!("runs/{run}/checkpoints/step_00000004"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect()
}

fn cache_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("home/data-cache"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_folder_is_decoded_once_then_mapped_and_trains_the_same_streamed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_folder(root);
    let first = train(root, "a", &[]);
    assert!(
        first.contains("into cache") && first.contains("(48 images)"),
        "{first}"
    );
    // The start-up line parts the set-up from the data's time (here, decoding the folder).
    let line = first
        .lines()
        .find(|l| l.starts_with("start-up"))
        .unwrap_or_else(|| panic!("no start-up line: {first}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert!(
        numbers[0] >= 0.0 && numbers[0] < 60.0 && numbers[1] > 0.0,
        "{line}"
    );
    let second = train(root, "b", &[]);
    assert!(second.contains("opened in"), "{second}");
    assert!(
        second.contains("pipeline  serves") && second.contains("memory-mapped from the cache"),
        "{second}"
    );
    // The pipeline measured alone: decoding from the files and serving from the cache.
    let o = gankit(
        &[
            "bench",
            "--data",
            "--json",
            "--seconds",
            "0.2",
            "--set",
            "data.dataset=folder",
            "--set",
            "data.path=faces",
            "--set",
            "train.batch_size=8",
        ],
        root,
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(v["images"], 48, "{v}");
    assert!(v["decoded_images_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["served_images_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["mode"], "memory-mapped from the cache", "{v}");
    let uncached = train(root, "c", &["data.cache=false"]);
    assert!(
        uncached.contains("streamed") && !uncached.contains("cache"),
        "{uncached}"
    );
    assert_eq!(weights(root, "a"), weights(root, "b"));
    assert_eq!(weights(root, "a"), weights(root, "c"));
    assert_eq!(cache_files(root).len(), 1);

    // A damaged cache is found by `cache verify` (exit 2) and rebuilt by the next run,
    // which trains the same weights.
    let cache = &cache_files(root)[0];
    let mut bytes = std::fs::read(cache).unwrap();
    bytes[1000] ^= 0x10;
    std::fs::write(cache, &bytes).unwrap();
    let o = gankit(&["cache", "verify"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("damaged"), "{}", text(&o));
    let rebuilt = train(root, "d", &[]);
    assert!(rebuilt.contains("rebuilt"), "{rebuilt}");
    assert_eq!(weights(root, "a"), weights(root, "d"));
    let o = gankit(&["cache", "verify"], root);
    assert!(o.status.success(), "{}", text(&o));

    // A zip and a tar of the folder train the same weights, cached and streamed.
    archive(root);
    for (run, path) in [("zip", "faces.zip"), ("tar", "faces.tar")] {
        let set = format!("data.path={path}");
        let first = train(root, run, &[&set]);
        assert!(first.contains(&format!("archive {path}")), "{first}");
        assert_eq!(weights(root, "a"), weights(root, run));
        let streamed = format!("{run}-streamed");
        train(root, &streamed, &[&set, "data.cache=false"]);
        assert_eq!(weights(root, "a"), weights(root, &streamed));
    }

    // Evaluation of a folder run maps the same cache.
    let o = gankit(&["eval", "runs/a", "--n", "16"], root);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        cache_files(root).len(),
        3,
        "the folder's, the zip's and the tar's"
    );
}

#[test]
fn class_folders_label_a_conditional_run_and_sources_and_caches_are_described_and_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_folder(root);
    let o = gankit(
        &[
            "train",
            "--set",
            "data.dataset=folder",
            "--set",
            "data.path=faces",
            "--set",
            "model.classes=3",
        ],
        root,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("data.labels"), "{}", stderr(&o));
    let o = gankit(&["datasets", "faces"], root);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("48 readable") && out.contains("32×32 (48)") && out.contains("classes   3"),
        "{out}"
    );
    let o = gankit(&["datasets", "nowhere"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    train(
        root,
        "labelled",
        &["data.labels=folders", "model.classes=3"],
    );
    train(root, "plain", &[]);
    let o = gankit(&["cache", "list"], root);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("48 images 28×28×1, 3 classes"), "{out}");
    assert_eq!(out.matches("48 images").count(), 2, "{out}");

    let o = gankit(&["cache", "clear", "nonsense.gkdata"], root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(cache_files(root).len(), 2);
    let one = cache_files(root)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = gankit(&["cache", "clear", &one], root);
    assert!(
        o.status.success() && text(&o).contains("freed"),
        "{}",
        text(&o)
    );
    assert_eq!(cache_files(root).len(), 1);
    let o = gankit(&["cache", "clear"], root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(cache_files(root).is_empty());
    let o = gankit(&["cache", "list"], root);
    assert!(text(&o).contains("no caches"), "{}", text(&o));
}
