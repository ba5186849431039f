//! The decoded-image cache of a folder source: the first run decodes every image once, in
//! parallel, at the target size and channels, into one file; later runs, resumes and
//! evaluations memory-map it, so they start in seconds and the images cost no anonymous
//! memory (the kernel pages them in and out).
//!
//! One file per (folder, size, channels, labels), under `<home>/data-cache/`:
//!
//! ```text
//! [pixels: count × C × S × S bytes][labels: count bytes, when labelled]   the data region
//! [header length u32][header JSON][index: count × u32][CRC-32 of each 1 MiB of data]
//! [footer: meta length u64, SHA-256 of the meta region, version u32, magic "GKDCACHE"]
//! ```
//!
//! The header holds the listing's fingerprint (`listing::Listing::fingerprint`: relative
//! paths, sizes and modification times), so a changed folder is detected without reading
//! an image; the index maps each cached image to its listing position (unreadable files are
//! left out). The footer's hash covers the header, index and block checksums; on opening,
//! the file length, that hash and the checksums of 16 blocks spread over the data are
//! checked (all blocks for caches up to 64 MiB; `gankit cache verify` checks every block
//! of any). A cache that fails any check is rebuilt, never used. A cache is written to a
//! temporary file and renamed into place, so a killed build leaves no cache and two
//! processes building the same one at once each write a whole file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::images::ImageSet;
use super::listing::Listing;
use super::pixels::Pixels;
use crate::error::IoContext;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"GKDCACHE";
const VERSION: u32 = 1;
/// Bytes per checksummed block of the data region.
const BLOCK: usize = 1 << 20;
/// meta length (8) + SHA-256 (32) + version (4) + magic (8).
const FOOTER: usize = 52;
/// Blocks checked on every opening (all of them below this count).
const SAMPLED_BLOCKS: usize = 16;
const FULL_CHECK_BLOCKS: usize = 64;
/// Caches' file extension.
pub const EXTENSION: &str = "gkdata";

/// What a cache holds, stored as JSON in its header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The folder it was built from, as given.
    pub source: String,
    /// The listing's fingerprint at build time.
    pub fingerprint: String,
    pub size: usize,
    pub channels: usize,
    /// Images in the cache.
    pub count: usize,
    /// Image files listed (count + skipped).
    pub listed: usize,
    /// Files that could not be decoded, left out.
    pub skipped: usize,
    /// Class names (sub-folders) when the cache holds labels.
    pub classes: Option<Vec<String>>,
    /// Seconds the build took.
    pub build_seconds: f64,
}

impl Header {
    fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Bytes of the data region; `None` when a header read from a file claims sizes whose
    /// product does not fit a `usize` (it is then damaged).
    fn data_len(&self) -> Option<usize> {
        let image = self
            .channels
            .checked_mul(self.size)?
            .checked_mul(self.size)?;
        let labels = if self.classes.is_some() {
            self.count
        } else {
            0
        };
        self.count.checked_mul(image)?.checked_add(labels)
    }
}

/// What a run asks of a folder: the decoded size, channels, and whether labels come from
/// the class sub-folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub size: usize,
    pub channels: usize,
    pub labels: bool,
}

/// The result of looking for a usable cache.
#[derive(Debug)]
pub enum Lookup {
    Valid(Box<ImageSet>, Header),
    /// No cache file yet.
    Missing,
    /// A whole cache of another state of the folder (or other settings): rebuilt.
    Stale(String),
    /// A file that fails a check: rebuilt.
    Damaged(String),
}

/// Where caches are kept: `<home>/data-cache`.
pub fn dir() -> PathBuf {
    crate::fsutil::home().join("data-cache")
}

/// The cache file of `folder` at `want`, in `cache_dir`: readable (the folder's name and
/// the settings) and unique (a hash of its absolute path and the settings).
pub fn path_for(cache_dir: &Path, folder: &Path, want: Want) -> PathBuf {
    let abs = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let key = format!(
        "{}\0{}\0{}\0{}",
        abs.display(),
        want.size,
        want.channels,
        want.labels
    );
    let hash = crate::config::hex(&Sha256::digest(key.as_bytes()));
    let name: String = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let labels = if want.labels { "-labels" } else { "" };
    cache_dir.join(format!(
        "{name}-{}px-{}ch{labels}-{}.{EXTENSION}",
        want.size,
        want.channels,
        &hash[..12]
    ))
}

/// Open the cache at `path` if it is whole and built from `listing` at `want`.
pub fn open(path: &Path, listing: &Listing, want: Want) -> Lookup {
    if !path.exists() {
        return Lookup::Missing;
    }
    let (header, map) = match read(path, false) {
        Ok(v) => v,
        Err(why) => return Lookup::Damaged(why),
    };
    if header.size != want.size
        || header.channels != want.channels
        || header.classes.is_some() != want.labels
    {
        return Lookup::Stale("it was built with other settings".into());
    }
    if header.fingerprint != listing.fingerprint() {
        return Lookup::Stale("the folder changed since it was built".into());
    }
    let pixels = header.count * header.image_len();
    let labels = header
        .classes
        .as_ref()
        .map(|_| map[pixels..pixels + header.count].to_vec());
    let set = ImageSet {
        pixels: Pixels::Mapped {
            map: Arc::new(map),
            start: 0,
            len: pixels,
        },
        len: header.count,
        channels: header.channels,
        size: header.size,
        labels,
        source: String::new(),
    };
    Lookup::Valid(Box::new(set), header)
}

/// Check every block of the cache at `path` (`gankit cache verify`); its header if whole.
pub fn verify(path: &Path) -> std::result::Result<Header, String> {
    read(path, true).map(|(h, _)| h)
}

/// Read and check a cache file: its footer, meta hash, header, sizes and block checksums
/// (`all_blocks`, or a spread sample). The error says what is wrong.
fn read(path: &Path, all_blocks: bool) -> std::result::Result<(Header, memmap2::Mmap), String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let file_len = f.metadata().map_err(|e| e.to_string())?.len() as usize;
    if file_len < FOOTER {
        return Err(format!("{file_len} bytes, shorter than its footer"));
    }
    let mut footer = [0u8; FOOTER];
    f.seek(SeekFrom::Start((file_len - FOOTER) as u64))
        .and_then(|_| f.read_exact(&mut footer))
        .map_err(|e| e.to_string())?;
    if &footer[44..52] != MAGIC {
        return Err("no cache footer (an unfinished or foreign file)".into());
    }
    let version = u32::from_le_bytes(footer[40..44].try_into().unwrap());
    if version != VERSION {
        return Err(format!(
            "format version {version}, this gankit reads {VERSION}"
        ));
    }
    let meta_len = u64::from_le_bytes(footer[..8].try_into().unwrap()) as usize;
    if meta_len < 4 || meta_len > file_len - FOOTER {
        return Err(format!("meta length {meta_len} does not fit the file"));
    }
    let data_len = file_len - FOOTER - meta_len;
    let mut meta = vec![0u8; meta_len];
    f.seek(SeekFrom::Start(data_len as u64))
        .and_then(|_| f.read_exact(&mut meta))
        .map_err(|e| e.to_string())?;
    if Sha256::digest(&meta)[..] != footer[8..40] {
        return Err("its header or index does not match its checksum".into());
    }
    let header_len = u32::from_le_bytes(meta[..4].try_into().unwrap()) as usize;
    let json = meta
        .get(4..4 + header_len)
        .ok_or("header length past the meta region")?;
    let header: Header = serde_json::from_slice(json).map_err(|e| format!("header: {e}"))?;
    let blocks = data_len.div_ceil(BLOCK);
    let meta_needed = header
        .count
        .checked_add(blocks)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(4 + header_len));
    if header.data_len() != Some(data_len) || meta_needed != Some(meta_len) {
        return Err("its sizes do not add up".into());
    }
    let crcs = &meta[4 + header_len + 4 * header.count..];
    // SAFETY: the file is opened read-only and only read through the map. A cache is
    // replaced by renaming a new file over it, never rewritten in place, so the mapped
    // file does not change under us.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| e.to_string())?;
    let check = |b: usize| -> std::result::Result<(), String> {
        let want = u32::from_le_bytes(crcs[4 * b..4 * b + 4].try_into().unwrap());
        let end = ((b + 1) * BLOCK).min(data_len);
        if crc32fast::hash(&map[b * BLOCK..end]) != want {
            return Err(format!(
                "block {b} of its images does not match its checksum"
            ));
        }
        Ok(())
    };
    if all_blocks || blocks <= FULL_CHECK_BLOCKS {
        (0..blocks).into_par_iter().try_for_each(check)?;
    } else {
        (0..SAMPLED_BLOCKS)
            .map(|k| k * (blocks - 1) / (SAMPLED_BLOCKS - 1))
            .try_for_each(check)?;
    }
    Ok((header, map))
}

/// Decode every image of `listing` at `want` into a new cache at `path` (replacing any),
/// reporting (decoded, listed) to `progress` a few times a second. Unreadable files are
/// left out and counted, or with `fail` refused, naming the first.
pub fn build(
    path: &Path,
    listing: &Listing,
    want: Want,
    fail: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Header> {
    let started = Instant::now();
    let listed = listing.entries.len();
    let classes = want.labels.then(|| listing.folder_classes()).transpose()?;
    let image_len = want.channels * want.size * want.size;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let tmp = crate::fsutil::temp_path(path);
    let result = (|| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .at(&tmp)?;
        file.set_len((listed * image_len) as u64).at(&tmp)?;
        let kept = decode_into(&file, &tmp, listing, want, fail, progress)?;
        finish(file, &tmp, listing, want, classes, kept, started)
    })();
    match result {
        Ok(header) => {
            std::fs::rename(&tmp, path).at(path)?;
            Ok(header)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Decode the listing's images into their slots of `file`, then move the decoded ones
/// together (`folder::decode_all`); their listing positions, in order.
fn decode_into(
    file: &std::fs::File,
    tmp: &Path,
    listing: &Listing,
    want: Want,
    fail: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u32>> {
    // SAFETY: a file this process just created under a unique temporary name.
    let mut map = unsafe { memmap2::MmapMut::map_mut(file) }.at(tmp)?;
    let kept = super::folder::decode_all(listing, want, fail, &mut map, progress)?;
    map.flush().at(tmp)?;
    Ok(kept)
}

/// Cut `file` to the kept images, append labels, the meta region and the footer, and sync.
fn finish(
    mut file: std::fs::File,
    tmp: &Path,
    listing: &Listing,
    want: Want,
    classes: Option<(Vec<String>, Vec<u8>)>,
    kept: Vec<u32>,
    started: Instant,
) -> Result<Header> {
    let image_len = want.channels * want.size * want.size;
    let count = kept.len();
    file.set_len((count * image_len) as u64).at(tmp)?;
    file.seek(SeekFrom::End(0)).at(tmp)?;
    let names = match classes {
        Some((names, all)) => {
            let labels: Vec<u8> = kept.iter().map(|&i| all[i as usize]).collect();
            file.write_all(&labels).at(tmp)?;
            Some(names)
        }
        None => None,
    };
    let header = Header {
        source: listing.root.display().to_string(),
        fingerprint: listing.fingerprint(),
        size: want.size,
        channels: want.channels,
        count,
        listed: listing.entries.len(),
        skipped: listing.entries.len() - count,
        classes: names,
        build_seconds: started.elapsed().as_secs_f64(),
    };
    let data_len = header
        .data_len()
        .expect("the sizes of images just decoded fit");
    // SAFETY: as in `decode_into`; mapped read-only to checksum what was written.
    let crcs: Vec<u32> = {
        let map = unsafe { memmap2::Mmap::map(&file) }.at(tmp)?;
        map[..data_len]
            .par_chunks(BLOCK)
            .map(crc32fast::hash)
            .collect()
    };
    let json = serde_json::to_vec(&header).expect("a header serialises");
    let mut meta = Vec::with_capacity(4 + json.len() + 4 * (count + crcs.len()));
    meta.extend_from_slice(&(json.len() as u32).to_le_bytes());
    meta.extend_from_slice(&json);
    kept.iter()
        .for_each(|i| meta.extend_from_slice(&i.to_le_bytes()));
    crcs.iter()
        .for_each(|c| meta.extend_from_slice(&c.to_le_bytes()));
    let mut footer = Vec::with_capacity(FOOTER);
    footer.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    footer.extend_from_slice(&Sha256::digest(&meta));
    footer.extend_from_slice(&VERSION.to_le_bytes());
    footer.extend_from_slice(MAGIC);
    let mut w = std::io::BufWriter::new(&mut file);
    w.write_all(&meta)
        .and_then(|_| w.write_all(&footer))
        .at(tmp)?;
    w.flush().at(tmp)?;
    drop(w);
    file.sync_all().at(tmp)?;
    Ok(header)
}

/// One cache file, for `gankit cache list`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: PathBuf,
    pub bytes: u64,
    /// Its header, or why it cannot be read.
    pub header: std::result::Result<Header, String>,
}

/// Every cache file in `cache_dir` (and unfinished temporaries, as damaged), by name.
pub fn list(cache_dir: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(cache_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(cache_dir, e)),
    };
    for e in entries {
        let p = e.map_err(|e| Error::io(cache_dir, e))?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        let ours = name.ends_with(&format!(".{EXTENSION}"));
        let temporary = name.starts_with('.') && name.contains(&format!(".{EXTENSION}."));
        if !(ours || temporary) {
            continue;
        }
        let bytes = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        let header = if temporary {
            Err("an unfinished build (removed by gankit cache clear)".into())
        } else {
            read(&p, false).map(|(h, _)| h)
        };
        out.push(Entry {
            path: p,
            bytes,
            header,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Remove a listed cache file.
pub fn remove(entry: &Entry) -> Result<()> {
    std::fs::remove_file(&entry.path).at(&entry.path)
}

#[cfg(test)]
mod tests;
