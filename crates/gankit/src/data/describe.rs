//! `gankit datasets PATH`: what an image source holds, read from its listing and the
//! images' headers, without decoding or training: the count, the image sizes, the classes
//! its sub-folders would give, and the files that are not readable images.

use rayon::prelude::*;

use super::listing::{Listing, Origin};
use crate::Result;

/// A description of an image source.
#[derive(Clone, Debug)]
pub struct SourceReport {
    /// "folder" or "archive".
    pub kind: &'static str,
    /// Image files listed (by extension).
    pub listed: usize,
    /// Bytes of the listed files (as stored).
    pub bytes: u64,
    /// Image sizes (width, height) with their counts, most common first.
    pub sizes: Vec<((u32, u32), usize)>,
    /// Class folder names and their image counts, when every image is in one.
    pub classes: Option<Vec<(String, usize)>>,
    /// Files whose header does not read as an image, with why (`name: reason`).
    pub unreadable: Vec<String>,
}

/// Describe the folder, zip or tar at `path`.
pub fn describe(path: &std::path::Path) -> Result<SourceReport> {
    let listing = Listing::open(path)?;
    let dims: Vec<std::result::Result<(u32, u32), String>> = (0..listing.entries.len())
        .into_par_iter()
        .map(|i| {
            listing
                .dimensions(i)
                .map_err(|e| format!("{}: {e}", listing.name(i)))
        })
        .collect();
    let mut sizes: Vec<((u32, u32), usize)> = Vec::new();
    let mut ok: Vec<(u32, u32)> = dims
        .iter()
        .filter_map(|d| d.as_ref().ok().copied())
        .collect();
    ok.sort_unstable();
    for d in ok {
        match sizes.last_mut() {
            Some((s, n)) if *s == d => *n += 1,
            _ => sizes.push((d, 1)),
        }
    }
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let classes = listing.folder_classes().ok().map(|(names, labels)| {
        let mut counts = vec![0usize; names.len()];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        names.into_iter().zip(counts).collect()
    });
    Ok(SourceReport {
        kind: match listing.origin {
            Origin::Folder => "folder",
            Origin::Archive(_) => "archive",
        },
        listed: listing.entries.len(),
        bytes: listing.entries.iter().map(|e| e.size).sum(),
        sizes,
        classes,
        unreadable: dims.into_iter().filter_map(|d| d.err()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sizes_classes_and_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        for (rel, w, h) in [("a/1.png", 10, 8), ("a/2.png", 10, 8), ("b/3.jpg", 5, 5)] {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::RgbImage::new(w, h).save(p).unwrap();
        }
        std::fs::write(dir.path().join("b/bad.png"), b"no").unwrap();
        let r = describe(dir.path()).unwrap();
        assert_eq!((r.kind, r.listed), ("folder", 4));
        assert_eq!(r.sizes, [((10, 8), 2), ((5, 5), 1)]);
        assert_eq!(
            r.classes.unwrap(),
            [("a".to_string(), 2), ("b".to_string(), 2)]
        );
        assert_eq!(r.unreadable.len(), 1);
        assert!(r.unreadable[0].contains("bad.png"), "{:?}", r.unreadable);
    }
}
