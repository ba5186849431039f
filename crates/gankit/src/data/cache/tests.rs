use super::*;
use crate::data::folder;

const WANT: Want = Want {
    size: 8,
    channels: 3,
    labels: true,
};

/// `n` small RGB images of different sizes in class folders a/, b/, c/ (PNG and JPEG).
fn folder_of(root: &Path, n: usize) {
    for i in 0..n {
        let class = ["a", "b", "c"][i % 3];
        std::fs::create_dir_all(root.join(class)).unwrap();
        let (w, h) = (10 + i as u32 % 7, 12 + i as u32 % 5);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 20 + i as u32) as u8, (y * 15) as u8, (i * 37) as u8])
        });
        let ext = if i % 4 == 0 { "jpg" } else { "png" };
        img.save(root.join(format!("{class}/{i:03}.{ext}")))
            .unwrap();
    }
}

fn load(root: &Path, cache_dir: Option<&Path>) -> ImageSet {
    folder::load(root, WANT, false, cache_dir, &mut |_, _| {}).unwrap()
}

fn only_cache_file(cache_dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Every image's bytes, whatever holds them.
fn all_bytes(set: &ImageSet) -> Vec<u8> {
    let n = set.image_len();
    (0..set.len)
        .flat_map(|i| set.pixels.image(i, n).unwrap().into_owned())
        .collect()
}

fn same_images(a: &ImageSet, b: &ImageSet) {
    assert_eq!((a.len, a.channels, a.size), (b.len, b.channels, b.size));
    assert!(all_bytes(a) == all_bytes(b));
    assert_eq!(a.labels, b.labels);
}

#[test]
fn the_cache_gives_the_decoded_images_and_later_runs_map_it() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    folder_of(data.path(), 30);
    let memory = load(data.path(), None);
    assert!(memory.pixels.is_streamed());
    let built = load(data.path(), Some(cache.path()));
    assert!(built.source.contains("into cache"), "{}", built.source);
    let opened = load(data.path(), Some(cache.path()));
    assert!(opened.source.contains("opened in"), "{}", opened.source);
    assert!(opened.pixels.is_mapped());
    same_images(&memory, &built);
    same_images(&memory, &opened);
    // Sorted paths: a/… (class 0), then b/…, then c/…, ten each.
    let labels = memory.labels.as_deref().unwrap();
    assert!(
        labels
            .iter()
            .enumerate()
            .all(|(i, &l)| l as usize == i / 10)
    );
    let path = only_cache_file(cache.path());
    let header = verify(&path).unwrap();
    assert_eq!((header.count, header.listed, header.skipped), (30, 30, 0));
    assert_eq!(header.classes.unwrap(), ["a", "b", "c"]);
}

#[test]
fn a_changed_folder_rebuilds_its_cache() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    folder_of(data.path(), 12);
    load(data.path(), Some(cache.path()));
    folder_of(data.path(), 13);
    let set = load(data.path(), Some(cache.path()));
    assert!(
        set.source.contains("rebuilt: the folder changed"),
        "{}",
        set.source
    );
    assert_eq!(set.len, 13);
    same_images(&set, &load(data.path(), None));
    // Other settings get their own cache file.
    let gray = Want {
        channels: 1,
        ..WANT
    };
    folder::load(data.path(), gray, false, Some(cache.path()), &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
}

#[test]
fn a_damaged_cache_is_rebuilt_never_used() {
    let data = tempfile::tempdir().unwrap();
    folder_of(data.path(), 20);
    let memory = load(data.path(), None);
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 5] = [
        ("a pixel", |b| b[100] ^= 1),
        ("a label", |b| b[20 * 192 + 3] ^= 4),
        ("the index", |b| {
            let at = b.len() - FOOTER - 30;
            b[at] ^= 1
        }),
        ("the footer", |b| {
            let at = b.len() - 2;
            b[at] = b'X'
        }),
        ("the length", |b| {
            b.pop();
        }),
    ];
    for (what, damage) in damages {
        let cache = tempfile::tempdir().unwrap();
        load(data.path(), Some(cache.path()));
        let path = only_cache_file(cache.path());
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        assert!(verify(&path).is_err(), "{what}");
        let set = load(data.path(), Some(cache.path()));
        assert!(set.source.contains("rebuilt"), "{what}: {}", set.source);
        same_images(&memory, &set);
        assert!(verify(&path).is_ok(), "{what}");
    }
}

#[test]
fn two_builds_at_once_leave_one_whole_cache() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    folder_of(data.path(), 40);
    let listing = Listing::of_folder(data.path()).unwrap();
    let path = path_for(cache.path(), data.path(), WANT);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| build(&path, &listing, WANT, false, &mut |_, _| {}).unwrap());
        }
    });
    assert_eq!(only_cache_file(cache.path()), path);
    assert!(matches!(open(&path, &listing, WANT), Lookup::Valid(..)));
}

#[test]
fn unreadable_files_are_left_out_and_indexed_or_refused_leaving_no_file() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    folder_of(data.path(), 9);
    std::fs::write(data.path().join("b/broken.png"), b"not a png").unwrap();
    let e = folder::load(data.path(), WANT, true, Some(cache.path()), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of 10") && e.contains("data.unreadable"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    let set = load(data.path(), Some(cache.path()));
    assert_eq!(set.len, 9);
    assert!(set.source.contains("1 unreadable"), "{}", set.source);
    same_images(&set, &load(data.path(), None));
    let listed = list(cache.path()).unwrap();
    assert_eq!(listed.len(), 1);
    let h = listed[0].header.as_ref().unwrap();
    assert_eq!((h.count, h.listed, h.skipped), (9, 10, 1));
}

#[test]
fn progress_reaches_the_total() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    folder_of(data.path(), 10);
    let mut last = (0, 0);
    folder::load(data.path(), WANT, false, Some(cache.path()), &mut |d, t| {
        assert!(d <= t);
        last = (d, t)
    })
    .unwrap();
    assert_eq!(last, (10, 10));
}
