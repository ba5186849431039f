//! The IDX format of MNIST, Fashion-MNIST, KMNIST and EMNIST (raw or gzip-compressed).
//!
//! A file is a 4-byte magic (0, 0, type 0x08 = u8, number of dimensions), one big-endian u32
//! per dimension, then the values. Images are 3-D (n, rows, cols), labels 1-D (n).

use std::io::Read;
use std::path::Path;

use crate::error::IoContext;
use crate::{Error, Result};

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Decompress when the bytes start with the gzip magic; otherwise return them as they are.
/// Decompression stops one byte past what the IDX header announces, so a small file that
/// inflates without end (a "gzip bomb") costs no more memory than the data it claims.
pub fn maybe_gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let corrupt = |e: std::io::Error| Error::Data(format!("{what}: corrupt gzip data ({e})"));
    let mut z = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = vec![0u8; 4];
    if z.read_exact(&mut out).is_err() {
        // Too short to be IDX: let the parser say so.
        out.clear();
        z.read_to_end(&mut out).map_err(corrupt)?;
        return Ok(out);
    }
    let ndim = out[3] as usize;
    let mut dims = vec![0u8; 4 * ndim];
    let got = read_up_to(&mut z, &mut dims).map_err(corrupt)?;
    out.extend_from_slice(&dims[..got]);
    let count = dims[..got]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64)
        .try_fold(1u64, |a, d| a.checked_mul(d))
        .unwrap_or(u64::MAX);
    // One byte more than announced, so trailing data is still reported by the parser.
    z.take(count.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    Ok(out)
}

/// Fill `buf` as far as the reader goes; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Parse an IDX file's bytes (already decompressed). `what` names the file in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<IdxArray> {
    let bad = |m: String| Error::Data(format!("{what}: {m}"));
    if bytes.len() < 4 {
        return Err(bad(format!(
            "{} bytes is too short for an IDX file",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "not an IDX file (magic {:02x} {:02x} {:02x} {:02x})",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX value type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(bad(format!(
            "IDX file with {ndim} dimensions (expected 1 to 4)"
        )));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let body = bytes.len() - header;
    if body < count {
        return Err(bad(format!(
            "truncated: the header announces {dims:?} = {count} values but {body} bytes follow"
        )));
    }
    if body > count {
        return Err(bad(format!(
            "{} bytes of trailing data after the {dims:?} values",
            body - count
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Read an IDX file from disk (gzip detected by content).
pub fn read(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).at(path)?;
    let what = path.display().to_string();
    parse(&maybe_gunzip(&raw, &what)?, &what)
}

/// Check that an IDX array is a stack of images (n, rows, cols).
pub fn as_images(a: &IdxArray, what: &str) -> Result<(usize, usize, usize)> {
    match a.dims[..] {
        [n, h, w] if n > 0 && h > 0 && w > 0 => Ok((n, h, w)),
        _ => Err(Error::Data(format!(
            "{what}: expected images (n, rows, cols), found dimensions {:?}",
            a.dims
        ))),
    }
}

/// Check that an IDX array holds `n` labels.
pub fn as_labels(a: &IdxArray, n: usize, what: &str) -> Result<Vec<u8>> {
    match a.dims[..] {
        [m] if m == n => Ok(a.data.clone()),
        [m] => Err(Error::Data(format!(
            "{what}: {m} labels for {n} images; use the label file that belongs to the image file"
        ))),
        _ => Err(Error::Data(format!(
            "{what}: expected labels (n), found dimensions {:?}",
            a.dims
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_bomb_inflates_only_as_far_as_the_header_claims() {
        use std::io::Write;
        // Announces 2 × 2 × 2 bytes, then a megabyte of zeros follows.
        let mut raw = idx(&[2, 2, 2], 8);
        raw.extend(vec![0u8; 1 << 20]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 4096);
        let out = maybe_gunzip(&gz, "bomb").unwrap();
        assert_eq!(
            out.len(),
            16 + 8 + 1,
            "stops one byte past the announced data"
        );
        let e = parse(&out, "bomb").unwrap_err().to_string();
        assert!(e.contains("trailing"), "{e}");
        // A well-formed gzip IDX file comes back whole.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(&[3], 3)).unwrap();
        let good = maybe_gunzip(&gz.finish().unwrap(), "ok").unwrap();
        assert_eq!(parse(&good, "ok").unwrap().data, vec![0, 1, 2]);
    }

    fn idx(dims: &[u32], body: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend((0..body).map(|i| i as u8));
        v
    }

    #[test]
    fn parses_images_and_labels() {
        let a = parse(&idx(&[2, 3, 4], 24), "x").unwrap();
        assert_eq!(as_images(&a, "x").unwrap(), (2, 3, 4));
        assert_eq!(a.data[23], 23);
        let l = parse(&idx(&[2], 2), "y").unwrap();
        assert_eq!(as_labels(&l, 2, "y").unwrap(), vec![0, 1]);
    }

    #[test]
    fn truncated_files_are_clear_errors() {
        let e = parse(&idx(&[2, 3, 4], 23), "img").unwrap_err().to_string();
        assert!(e.contains("img") && e.contains("truncated"), "{e}");
        let e = parse(&[0, 0, 8, 3, 0, 0], "img").unwrap_err().to_string();
        assert!(e.contains("truncated IDX header"), "{e}");
        let e = parse(&[0, 0], "img").unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
    }

    #[test]
    fn wrong_magic_and_types_are_refused() {
        let e = parse(b"\x89PNG\r\n\x1a\n", "a.png")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an IDX file"), "{e}");
        let mut f = idx(&[1], 1);
        f[2] = 0x0D;
        assert!(
            parse(&f, "f")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
    }

    #[test]
    fn label_count_mismatch_is_refused() {
        let l = parse(&idx(&[3], 3), "labels").unwrap();
        let e = as_labels(&l, 2, "labels").unwrap_err().to_string();
        assert!(e.contains("3 labels for 2 images"), "{e}");
        let img = parse(&idx(&[4], 4), "i").unwrap();
        assert!(as_images(&img, "i").is_err());
    }

    #[test]
    fn gzip_is_detected_and_corrupt_gzip_refused() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&idx(&[1, 2, 2], 4)).unwrap();
        let gz = enc.finish().unwrap();
        let a = parse(&maybe_gunzip(&gz, "g").unwrap(), "g").unwrap();
        assert_eq!(a.dims, vec![1, 2, 2]);
        let e = maybe_gunzip(&gz[..gz.len() / 2], "g")
            .unwrap_err()
            .to_string();
        assert!(e.contains("corrupt gzip"), "{e}");
    }
}
