//! Folders of PNG / JPEG images (CelebA's img_align_celeba, CUFS), searched recursively:
//! decoded once into a memory-mapped cache (`cache`), or streamed from the files
//! (`stream`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::cache::{self, Lookup, Want};
use super::images::{ImageSet, square_planes};
use super::listing::Listing;
use super::pixels::Pixels;
use super::stream::Streamer;
use crate::{Error, Result};

/// Decode one image file's bytes (PNG or JPEG, told by its content): centre crop, resize
/// to `size`, `channels` planes. Sizes are bounded by the `image` crate's default limits.
pub fn decode(bytes: &[u8], size: usize, channels: usize) -> std::result::Result<Vec<u8>, String> {
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    Ok(square_planes(&img, size, channels))
}

/// The images under `dir` at `want`: through their cache in `cache_dir` (opened when whole
/// and current, else built, reporting (decoded, listed) to `progress`) or, without a cache
/// folder, streamed from the files. Files that cannot be decoded are skipped and counted in the
/// set's `source`, or with `fail` refused, naming the first.
pub fn load(
    dir: &Path,
    want: Want,
    fail: bool,
    cache_dir: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImageSet> {
    let started = Instant::now();
    let listing = Listing::open(dir)?;
    if listing.entries.is_empty() {
        return Err(Error::Data(format!(
            "no .png, .jpg or .jpeg files under {}: point data.path at the image folder",
            dir.display()
        )));
    }
    // The image count is the set's `len`; the source names only what is not counted there.
    let kind = match listing.origin {
        super::listing::Origin::Folder => "folder",
        super::listing::Origin::Archive(_) => "archive",
    };
    let mut source = format!("{kind} {}", dir.display());
    let Some(cache_dir) = cache_dir else {
        let listed = listing.entries.len();
        let mut set = streamed(listing, want, fail)?;
        source += &format!(
            " (streamed: decoded as batches need them{})",
            skipped_note(listed - set.len)
        );
        set.source = source;
        return Ok(set);
    };
    let path = cache::path_for(cache_dir, dir, want);
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let rebuilt = match cache::open(&path, &listing, want) {
        Lookup::Valid(mut set, header) => {
            source += &format!(
                " (cache {name}, opened in {:.2} s{})",
                started.elapsed().as_secs_f64(),
                skipped_note(header.skipped)
            );
            set.source = source;
            return Ok(*set);
        }
        Lookup::Missing => String::new(),
        Lookup::Stale(why) | Lookup::Damaged(why) => format!(", rebuilt: {why}"),
    };
    let header = cache::build(&path, &listing, want, fail, progress)?;
    match cache::open(&path, &listing, want) {
        Lookup::Valid(mut set, _) => {
            source += &format!(
                " (decoded in {:.1} s, {:.0} images/s, into cache {name}{rebuilt}{})",
                header.build_seconds,
                header.listed as f64 / header.build_seconds.max(1e-9),
                skipped_note(header.skipped)
            );
            set.source = source;
            Ok(*set)
        }
        // Changed while it was being built, or replaced by a build of another process.
        Lookup::Stale(why) | Lookup::Damaged(why) => Err(Error::Data(format!(
            "the cache {} just built for {} cannot be used: {why}; if the folder is being written to, wait until it is complete",
            path.display(),
            dir.display()
        ))),
        Lookup::Missing => Err(Error::Data(format!(
            "the cache {} just built disappeared (gankit cache clear?): run again",
            path.display()
        ))),
    }
}

fn skipped_note(skipped: usize) -> String {
    if skipped > 0 {
        format!(", {skipped} unreadable files skipped")
    } else {
        String::new()
    }
}

/// The error for `skipped` of the listing's files that cannot be read (`first` says why for
/// one): with `fail`, or when none can.
pub fn refuse_unreadable(listing: &Listing, skipped: usize, first: &str, fail: bool) -> Result<()> {
    let listed = listing.entries.len();
    if fail {
        return Err(Error::Data(format!(
            "{skipped} of {listed} image files cannot be read, the first: {first} (remove them, or set data.unreadable = \"skip\")"
        )));
    }
    if skipped == listed {
        return Err(Error::Data(format!(
            "none of the {listed} image files under {} could be decoded, the first: {first}",
            listing.root.display()
        )));
    }
    Ok(())
}

/// A set streamed from the listing's files (`stream`).
fn streamed(listing: Listing, want: Want, fail: bool) -> Result<ImageSet> {
    let classes = want.labels.then(|| listing.folder_classes()).transpose()?;
    let (streamer, kept) = Streamer::new(listing, want, fail)?;
    Ok(ImageSet {
        len: streamer.len(),
        pixels: Pixels::Streamed(Arc::new(streamer)),
        channels: want.channels,
        size: want.size,
        labels: classes.map(|(_, all)| kept.iter().map(|&i| all[i as usize]).collect()),
        source: String::new(),
    })
}

/// Decode every image of `listing` into its slot of `out` (listed × image bytes), in
/// parallel, reporting (decoded, listed) to `progress` a few times a second; then move the
/// decoded ones together at the front. Their listing positions, in order. Unreadable files
/// are left out, or with `fail` refused, naming the first; none decoded is an error.
pub fn decode_all(
    listing: &Listing,
    want: Want,
    fail: bool,
    out: &mut [u8],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u32>> {
    let listed = listing.entries.len();
    let image_len = want.channels * want.size * want.size;
    let done = AtomicUsize::new(0);
    let outcomes: Vec<std::result::Result<(), String>> = std::thread::scope(|s| {
        let work = s.spawn(|| {
            out.par_chunks_mut(image_len)
                .enumerate()
                .map(|(i, slot)| {
                    let r = listing
                        .read(i)
                        .and_then(|bytes| decode(&bytes, want.size, want.channels))
                        .map(|img| slot.copy_from_slice(&img))
                        .map_err(|e| format!("{}: {e}", listing.name(i)));
                    done.fetch_add(1, Ordering::Relaxed);
                    r
                })
                .collect()
        });
        while !work.is_finished() {
            progress(done.load(Ordering::Relaxed), listed);
            std::thread::sleep(Duration::from_millis(50));
        }
        work.join().expect("decoding does not panic")
    });
    progress(listed, listed);
    let skipped = outcomes.iter().filter(|o| o.is_err()).count();
    if let Some(Err(first)) = outcomes.iter().find(|o| o.is_err()) {
        refuse_unreadable(listing, skipped, first, fail)?;
    }
    let mut kept = Vec::with_capacity(listed - skipped);
    for (i, o) in outcomes.iter().enumerate() {
        if o.is_ok() {
            let w = kept.len();
            if w != i {
                out.copy_within(i * image_len..(i + 1) * image_len, w * image_len);
            }
            kept.push(i as u32);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through a cache in a fresh temporary folder (kept alive by the caller's handle).
    fn cached(dir: &Path, size: usize, channels: usize, fail: bool) -> Result<ImageSet> {
        let cache = tempfile::tempdir().unwrap();
        let want = Want {
            size,
            channels,
            labels: false,
        };
        load(dir, want, fail, Some(cache.path()), &mut |_, _| {})
    }

    /// Streamed from the files.
    fn streamed(dir: &Path, size: usize, fail: bool) -> Result<ImageSet> {
        let want = Want {
            size,
            channels: 3,
            labels: false,
        };
        load(dir, want, fail, None, &mut |_, _| {})
    }

    #[test]
    fn loads_nested_images_of_mixed_sizes_and_skips_broken_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        image::RgbImage::from_pixel(40, 30, image::Rgb([200, 0, 0]))
            .save(dir.path().join("a.png"))
            .unwrap();
        image::GrayImage::from_pixel(64, 64, image::Luma([50]))
            .save(dir.path().join("sub/b.JPG"))
            .unwrap();
        std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        // A truncated PNG, and a file that cannot be read at all (a dangling link).
        let png = std::fs::read(dir.path().join("a.png")).unwrap();
        std::fs::write(dir.path().join("cut.png"), &png[..png.len() / 2]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("dangling.png"))
            .unwrap();
        let set = cached(dir.path(), 16, 3, false).unwrap();
        assert_eq!((set.len, set.channels, set.size), (2, 3, 16));
        assert_eq!(set.pixels.bytes().unwrap().len(), 2 * 3 * 16 * 16);
        let bad = if cfg!(unix) { 3 } else { 2 };
        assert!(
            set.source.contains(&format!("{bad} unreadable")),
            "{}",
            set.source
        );
        let e = cached(dir.path(), 16, 3, true).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bad} of")) && e.contains("data.unreadable"),
            "{e}"
        );
    }

    #[test]
    fn empty_and_missing_folders_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = cached(dir.path(), 16, 1, false).unwrap_err().to_string();
        assert!(e.contains("no .png"), "{e}");
        let e = cached(&dir.path().join("nope"), 16, 1, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn streaming_skips_what_is_no_image_and_stops_at_a_truncated_one() {
        let dir = tempfile::tempdir().unwrap();
        image::RgbImage::from_pixel(40, 30, image::Rgb([200, 0, 0]))
            .save(dir.path().join("a.png"))
            .unwrap();
        std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
        let set = streamed(dir.path(), 16, false).unwrap();
        assert_eq!(set.len, 1);
        assert!(set.source.contains("streamed") && set.source.contains("1 unreadable"));
        let e = streamed(dir.path(), 16, true).unwrap_err().to_string();
        assert!(
            e.contains("broken.png") && e.contains("data.unreadable"),
            "{e}"
        );
        // A truncated PNG passes the header check; decoding it is an error naming it.
        let png = std::fs::read(dir.path().join("a.png")).unwrap();
        std::fs::write(dir.path().join("cut.png"), &png[..png.len() / 2]).unwrap();
        let set = streamed(dir.path(), 16, false).unwrap();
        assert_eq!(set.len, 2);
        let mut out = vec![0f32; set.image_len()];
        set.write_scaled(0, &mut out).unwrap();
        let e = set.write_scaled(1, &mut out).unwrap_err().to_string();
        assert!(e.contains("cut.png") && e.contains("data.cache"), "{e}");
    }
}
