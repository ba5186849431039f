//! Folders of PNG / JPEG images (CelebA's img_align_celeba, CUFS), searched recursively.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::images::{ImageSet, square_planes};
use crate::{Error, Result};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Every image file under `dir`, sorted so runs are reproducible.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::Data(format!(
            "{} is not a directory: set data.path to a folder of PNG / JPEG images",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for e in entries {
            let p = e.map_err(|e| Error::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

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

/// Decode every image under `dir`: centre crop, resize to `size`, `channels` planes.
/// Files that cannot be read or decoded are skipped and counted in the set's `source`, or
/// with `fail` refused, naming the first.
pub fn load(dir: &Path, size: usize, channels: usize, fail: bool) -> Result<ImageSet> {
    let files = image_files(dir)?;
    if files.is_empty() {
        return Err(Error::Data(format!(
            "no .png, .jpg or .jpeg files under {}: point data.path at the image folder",
            dir.display()
        )));
    }
    let decoded: Vec<std::result::Result<Vec<u8>, String>> = files
        .par_iter()
        .map(|p| {
            std::fs::read(p)
                .map_err(|e| e.to_string())
                .and_then(|bytes| decode(&bytes, size, channels))
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    let skipped = decoded.iter().filter(|d| d.is_err()).count();
    if let (true, Some(Err(first))) = (fail, decoded.iter().find(|d| d.is_err())) {
        return Err(Error::Data(format!(
            "{skipped} of {} image files cannot be read, the first: {first} (remove them, or set data.unreadable = \"skip\")",
            files.len()
        )));
    }
    let good: Vec<Vec<u8>> = decoded.into_iter().filter_map(|d| d.ok()).collect();
    if good.is_empty() {
        return Err(Error::Data(format!(
            "none of the {} image files under {} could be decoded",
            files.len(),
            dir.display()
        )));
    }
    let len = good.len();
    // The image count is the set's `len`; the source names only what is not counted there.
    let mut source = format!("folder {}", dir.display());
    if skipped > 0 {
        source += &format!(" ({skipped} unreadable files skipped)");
    }
    Ok(ImageSet {
        pixels: good.concat(),
        len,
        channels,
        size,
        labels: None,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let set = load(dir.path(), 16, 3, false).unwrap();
        assert_eq!((set.len, set.channels, set.size), (2, 3, 16));
        assert_eq!(set.pixels.len(), 2 * 3 * 16 * 16);
        let bad = if cfg!(unix) { 3 } else { 2 };
        assert!(
            set.source.contains(&format!("{bad} unreadable")),
            "{}",
            set.source
        );
        let e = load(dir.path(), 16, 3, true).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bad} of")) && e.contains("data.unreadable"),
            "{e}"
        );
    }

    #[test]
    fn empty_and_missing_folders_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path(), 16, 1, false).unwrap_err().to_string();
        assert!(e.contains("no .png"), "{e}");
        let e = load(&dir.path().join("nope"), 16, 1, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}
