//! Zip and tar archives read in place (CelebA ships as `img_align_celeba.zip`): the archive
//! is indexed once (the `zip` crate reads the zip's central directory, the `tar` crate walks
//! the tar's headers), then each image is read at its offset — inflated with `flate2` when
//! deflated — without extracting anything. Compressed tars (`.tar.gz`) have no offsets to
//! read at and are refused.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::listing::{Entry, Listing, Origin, Stored, has_image_extension};
use crate::{Error, Result};

/// The image members of the zip at `path`.
pub fn zip(path: &Path) -> Result<Listing> {
    let bad = |e: zip::result::ZipError| {
        Error::Data(format!("{} is not a readable zip: {e}", path.display()))
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive =
        zip::ZipArchive::new(file.try_clone().map_err(|e| Error::io(path, e))?).map_err(bad)?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i).map_err(bad)?;
        let name = f.name().map_err(bad)?.into_owned();
        if f.is_dir() || !has_image_extension(Path::new(&name)) {
            continue;
        }
        let deflated = match f.compression() {
            zip::CompressionMethod::Stored => false,
            zip::CompressionMethod::Deflated => true,
            other => {
                return Err(Error::Data(format!(
                    "{}: {name} is compressed with {other}; gankit reads stored and deflated members (re-zip it with zip -r)",
                    path.display()
                )));
            }
        };
        let offset = f
            .data_start()
            .ok_or_else(|| Error::Data(format!("{}: {name} has no data offset", path.display())))?;
        entries.push(Entry {
            rel: name.trim_start_matches('/').to_string(),
            size: f.size(),
            mtime_ns: f.crc32() as i128,
            stored: Some(Stored {
                offset,
                len: f.compressed_size(),
                deflated,
            }),
        });
    }
    Ok(finish(path, file, entries))
}

/// The image members (regular files) of the uncompressed tar at `path`.
pub fn tar(path: &Path) -> Result<Listing> {
    let bad =
        |e: std::io::Error| Error::Data(format!("{} is not a readable tar: {e}", path.display()));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = tar::Archive::new(file.try_clone().map_err(|e| Error::io(path, e))?);
    let mut entries = Vec::new();
    for entry in archive.entries_with_seek().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(bad)?
            .to_string_lossy()
            .replace('\\', "/");
        if !has_image_extension(Path::new(&name)) {
            continue;
        }
        let size = entry.size();
        entries.push(Entry {
            rel: name
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string(),
            size,
            mtime_ns: entry.header().mtime().unwrap_or(0) as i128 * 1_000_000_000,
            stored: Some(Stored {
                offset: entry.raw_file_position(),
                len: size,
                deflated: false,
            }),
        });
    }
    Ok(finish(path, file, entries))
}

/// Sorted, with a top folder that holds every entry stripped (so an archive of a folder
/// lists as the folder does).
fn finish(path: &Path, file: File, mut entries: Vec<Entry>) -> Listing {
    let top = entries
        .first()
        .and_then(|e| e.rel.split_once('/'))
        .map(|(t, _)| format!("{t}/"));
    if let Some(top) = top
        && entries.iter().all(|e| e.rel.starts_with(&top))
    {
        for e in &mut entries {
            e.rel = e.rel[top.len()..].to_string();
        }
    }
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    Listing {
        root: path.to_path_buf(),
        origin: Origin::Archive(Arc::new(file)),
        entries,
    }
}

/// A member's bytes: read at its offset, inflated when deflated, `size` bytes in all.
pub fn read(file: &File, at: Stored, size: u64) -> std::result::Result<Vec<u8>, String> {
    let mut raw = vec![0u8; at.len as usize];
    read_exact_at(file, &mut raw, at.offset).map_err(|e| e.to_string())?;
    if !at.deflated {
        return Ok(raw);
    }
    use std::io::Read;
    let mut out = Vec::with_capacity(size as usize);
    // One byte past the declared size tells a member that inflates to more than it says.
    flate2::read::DeflateDecoder::new(&raw[..])
        .take(size + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 != size {
        return Err(format!(
            "inflates to {} bytes, its header says {size}",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::data::cache::Want;
    use crate::data::folder;

    /// A folder `root/faces` of small PNG and JPEG images in class folders, with a zip and a
    /// tar of it (the zip's members alternately deflated and stored), and a text file.
    fn sources(root: &Path) -> [std::path::PathBuf; 3] {
        let dir = root.join("faces");
        let mut files = Vec::new();
        for i in 0..14u32 {
            let rel = format!(
                "c{}/{i:02}.{}",
                i % 2,
                if i % 3 == 0 { "jpg" } else { "png" }
            );
            let img = image::RgbImage::from_fn(9 + i % 4, 11, |x, y| {
                image::Rgb([(x * 25) as u8, (y * 20 + i) as u8, (i * 17) as u8])
            });
            std::fs::create_dir_all(dir.join(format!("c{}", i % 2))).unwrap();
            img.save(dir.join(&rel)).unwrap();
            files.push(rel);
        }
        std::fs::write(dir.join("README.txt"), b"not an image").unwrap();
        let zip_path = root.join("faces.zip");
        let mut z = zip::ZipWriter::new(File::create(&zip_path).unwrap());
        for (k, rel) in files.iter().enumerate().rev() {
            let method = if k % 2 == 0 {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            let opts = zip::write::SimpleFileOptions::default().compression_method(method);
            z.start_file(format!("faces/{rel}"), opts).unwrap();
            z.write_all(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
        }
        z.finish().unwrap();
        let tar_path = root.join("faces.tar");
        let mut t = tar::Builder::new(File::create(&tar_path).unwrap());
        t.append_dir_all("faces", &dir).unwrap();
        t.finish().unwrap();
        [dir, zip_path, tar_path]
    }

    fn all_bytes(set: &crate::data::ImageSet) -> Vec<u8> {
        let n = set.image_len();
        (0..set.len)
            .flat_map(|i| set.pixels.image(i, n).unwrap().into_owned())
            .collect()
    }

    #[test]
    fn a_folder_its_zip_and_its_tar_give_the_same_images_and_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let want = Want {
            size: 8,
            channels: 3,
            labels: true,
        };
        let mut seen = Vec::new();
        for src in sources(tmp.path()) {
            let listing = Listing::open(&src).unwrap();
            assert_eq!(listing.entries.len(), 14, "{}", src.display());
            assert_eq!(listing.entries[0].rel, "c0/00.jpg");
            for cache in [None, Some(tmp.path().join("cache"))] {
                let set = folder::load(&src, want, true, cache.as_deref(), &mut |_, _| {}).unwrap();
                seen.push((all_bytes(&set), set.labels.clone()));
            }
        }
        assert!(seen.iter().all(|s| *s == seen[0]));
        let labels = seen[0].1.as_deref().unwrap();
        assert_eq!((&labels[..7], labels[7]), (&[0; 7][..], 1));
    }

    #[test]
    fn compressed_tars_foreign_files_and_damaged_members_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let [_, zip_path, _] = sources(tmp.path());
        let tgz = tmp.path().join("faces.tar.gz");
        std::fs::write(&tgz, b"\x1f\x8b").unwrap();
        let e = Listing::open(&tgz).unwrap_err().to_string();
        assert!(e.contains("decompress"), "{e}");
        let other = tmp.path().join("faces.rar");
        std::fs::write(&other, b"x").unwrap();
        let e = Listing::open(&other).unwrap_err().to_string();
        assert!(e.contains("not a folder, a .zip or a .tar"), "{e}");
        let fake = tmp.path().join("fake.zip");
        std::fs::write(&fake, b"PK not really").unwrap();
        let e = Listing::open(&fake).unwrap_err().to_string();
        assert!(e.contains("not a readable zip"), "{e}");
        // A member whose deflated bytes are damaged is unreadable, named as archive:member.
        let listing = Listing::open(&zip_path).unwrap();
        let k = (0..14)
            .find(|&k| listing.entries[k].stored.unwrap().deflated)
            .unwrap();
        let at = listing.entries[k].stored.unwrap();
        let mut bytes = std::fs::read(&zip_path).unwrap();
        for b in &mut bytes[at.offset as usize..(at.offset + at.len) as usize] {
            *b = 0xFF;
        }
        std::fs::write(&zip_path, &bytes).unwrap();
        let listing = Listing::open(&zip_path).unwrap();
        assert!(listing.read(k).is_err());
        assert!(
            listing
                .name(k)
                .starts_with(&format!("{}:c", zip_path.display()))
        );
    }
}
