//! The listing of an image source: every PNG / JPEG of a folder (recursively), a `.zip` or
//! an uncompressed `.tar` archive (read in place: the archive is indexed once, then each
//! image is read at its offset), in one canonical order (sorted relative paths,
//! `/`-separated), with each file's size and modification time (for zip entries their
//! CRC-32). The order fixes which image is image i, so a folder, a zip and a tar of the same
//! images give the same run (an archive whose entries all sit in one top folder is read as
//! that folder); the sizes and times give a fingerprint that tells a changed source from the
//! one a data cache was built from without reading any image.

use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// Modification time in nanoseconds since the epoch (0 when unknown; a zip entry's
    /// CRC-32).
    pub mtime_ns: i128,
    /// Where an archive holds it.
    pub stored: Option<Stored>,
}

/// An archive member's bytes: `len` bytes at `offset`, raw or deflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub offset: u64,
    pub len: u64,
    pub deflated: bool,
}

/// What a listing reads from.
#[derive(Clone, Debug)]
pub enum Origin {
    Folder,
    /// A zip or tar archive, open for reading at offsets.
    Archive(Arc<std::fs::File>),
}

/// The image files of a source, in canonical order.
#[derive(Clone, Debug)]
pub struct Listing {
    /// The folder or the archive file.
    pub root: PathBuf,
    pub origin: Origin,
    pub entries: Vec<Entry>,
}

impl Listing {
    /// The source at `path`: a folder, a `.zip` or a `.tar` archive.
    pub fn open(path: &Path) -> Result<Listing> {
        if path.is_dir() {
            return Listing::of_folder(path);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !path.is_file() {
            return Err(Error::Data(format!(
                "{} does not exist: set data.path to a folder of PNG / JPEG images, a .zip or a .tar of them",
                path.display()
            )));
        }
        if name.ends_with(".zip") {
            super::archive::zip(path)
        } else if name.ends_with(".tar") {
            super::archive::tar(path)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Err(Error::Data(format!(
                "{} is a compressed tar, which cannot be read at random places: decompress it to a .tar (gunzip) or extract it",
                path.display()
            )))
        } else {
            Err(Error::Data(format!(
                "{} is not a folder, a .zip or a .tar: set data.path to one of them",
                path.display()
            )))
        }
    }

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
            origin: Origin::Folder,
            entries,
        })
    }

    /// Entry `i` for messages: its path, or `archive:member`.
    pub fn name(&self, i: usize) -> String {
        match self.origin {
            Origin::Folder => self.root.join(&self.entries[i].rel).display().to_string(),
            Origin::Archive(_) => format!("{}:{}", self.root.display(), self.entries[i].rel),
        }
    }

    /// The bytes of entry `i`.
    pub fn read(&self, i: usize) -> std::result::Result<Vec<u8>, String> {
        let e = &self.entries[i];
        match (&self.origin, e.stored) {
            (Origin::Archive(file), Some(at)) => super::archive::read(file, at, e.size),
            _ => std::fs::read(self.root.join(&e.rel)).map_err(|e| e.to_string()),
        }
    }

    /// Whether entry `i` reads as a PNG or JPEG image from its header (a folder's file is
    /// read only as far as its header).
    pub fn header_ok(&self, i: usize) -> std::result::Result<(), String> {
        self.dimensions(i).map(|_| ())
    }

    /// Entry `i`'s width and height, from its header.
    pub fn dimensions(&self, i: usize) -> std::result::Result<(u32, u32), String> {
        let dims = match self.origin {
            Origin::Folder => image::ImageReader::open(self.root.join(&self.entries[i].rel))
                .and_then(|r| r.with_guessed_format())
                .map_err(|e| e.to_string())?
                .into_dimensions(),
            Origin::Archive(_) => image::ImageReader::new(std::io::Cursor::new(self.read(i)?))
                .with_guessed_format()
                .map_err(|e| e.to_string())?
                .into_dimensions(),
        };
        dims.map_err(|e| e.to_string())
    }

    /// Keep the entries at `positions` (ascending).
    pub fn subset(&self, positions: &[u32]) -> Listing {
        Listing {
            root: self.root.clone(),
            origin: self.origin.clone(),
            entries: positions
                .iter()
                .map(|&i| self.entries[i as usize].clone())
                .collect(),
        }
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

pub(super) fn has_image_extension(p: &Path) -> bool {
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
        stored: None,
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
