//! The listing of an image folder: every PNG / JPEG below it in one canonical order (sorted
//! relative paths, `/`-separated), with each file's size and modification time. The order
//! fixes which image is image i; the sizes and times give a fingerprint that tells a
//! changed folder from the one a data cache was built from without reading any image.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// Deeper folders are not searched (a symbolic link to a parent would loop).
const MAX_DEPTH: usize = 32;

/// One image file of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path below the root, `/`-separated.
    pub rel: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when unknown).
    pub mtime_ns: i128,
}

/// The image files of a folder, in canonical order.
#[derive(Clone, Debug)]
pub struct Listing {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
}

impl Listing {
    /// Every file with an image extension (any case) below `dir`, recursively.
    pub fn of_folder(dir: &Path) -> Result<Listing> {
        if !dir.is_dir() {
            return Err(Error::Data(format!(
                "{} is not a directory: set data.path to a folder of PNG / JPEG images",
                dir.display()
            )));
        }
        let mut entries = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), 0usize)];
        while let Some((d, depth)) = stack.pop() {
            let listed = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
            for e in listed {
                let p = e.map_err(|e| Error::io(&d, e))?.path();
                if p.is_dir() {
                    if depth < MAX_DEPTH {
                        stack.push((p, depth + 1));
                    }
                } else if has_image_extension(&p) {
                    entries.push(entry(dir, &p));
                }
            }
        }
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Listing {
            root: dir.to_path_buf(),
            entries,
        })
    }

    /// The full path of entry `i`.
    pub fn path(&self, i: usize) -> PathBuf {
        self.root.join(&self.entries[i].rel)
    }

    /// SHA-256 (hex) of the relative paths, sizes and modification times, in order.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for e in &self.entries {
            h.update(e.rel.as_bytes());
            h.update([0]);
            h.update(e.size.to_le_bytes());
            h.update(e.mtime_ns.to_le_bytes());
        }
        crate::config::hex(&h.finalize())
    }

    /// Class labels from the first folder below the root (torchvision's ImageFolder
    /// convention): the sorted folder names, and each entry's index among them. Every image
    /// must be inside a class folder; at most 256 classes.
    pub fn folder_classes(&self) -> Result<(Vec<String>, Vec<u8>)> {
        let mut names: Vec<&str> = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let Some((class, _)) = e.rel.split_once('/') else {
                return Err(Error::Data(format!(
                    "data.labels = \"folders\" takes each image's class from its sub-folder, but {} is directly in {}: move it into a class folder or set data.labels = \"none\"",
                    e.rel,
                    self.root.display()
                )));
            };
            names.push(class);
        }
        names.sort_unstable();
        names.dedup();
        if names.len() > 256 {
            return Err(Error::Data(format!(
                "{} has {} class folders; gankit takes at most 256 classes",
                self.root.display(),
                names.len()
            )));
        }
        let labels = self
            .entries
            .iter()
            .map(|e| {
                let class = e.rel.split_once('/').map_or("", |(c, _)| c);
                names.binary_search(&class).expect("listed above") as u8
            })
            .collect();
        Ok((names.into_iter().map(String::from).collect(), labels))
    }
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
}

/// A listed file; one whose metadata cannot be read (a dangling link) is listed with size
/// and time 0 and counted as unreadable when decoded.
fn entry(root: &Path, p: &Path) -> Entry {
    let rel = p
        .strip_prefix(root)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let (size, mtime_ns) = match std::fs::metadata(p) {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            (m.len(), t)
        }
        Err(_) => (0, 0),
    };
    Entry {
        rel,
        size,
        mtime_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn lists_images_in_sorted_relative_order_and_fingerprints_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["b/2.png", "a/1.JPG", "a/0.jpeg", "c.png", "notes.txt"] {
            touch(dir.path(), rel, b"x");
        }
        let l = Listing::of_folder(dir.path()).unwrap();
        let rels: Vec<&str> = l.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(rels, ["a/0.jpeg", "a/1.JPG", "b/2.png", "c.png"]);
        let before = l.fingerprint();
        assert_eq!(
            Listing::of_folder(dir.path()).unwrap().fingerprint(),
            before
        );
        touch(dir.path(), "b/2.png", b"xy");
        assert_ne!(
            Listing::of_folder(dir.path()).unwrap().fingerprint(),
            before
        );
    }

    #[test]
    fn classes_come_from_the_first_sub_folder() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["dog/x/1.png", "cat/2.png", "dog/3.png", "ant/4.png"] {
            touch(dir.path(), rel, b"x");
        }
        let l = Listing::of_folder(dir.path()).unwrap();
        let (names, labels) = l.folder_classes().unwrap();
        assert_eq!(names, ["ant", "cat", "dog"]);
        // Entries: ant/4, cat/2, dog/3, dog/x/1.
        assert_eq!(labels, [0, 1, 2, 2]);
        touch(dir.path(), "top.png", b"x");
        let e = Listing::of_folder(dir.path())
            .unwrap()
            .folder_classes()
            .unwrap_err()
            .to_string();
        assert!(e.contains("top.png") && e.contains("data.labels"), "{e}");
    }
}
