//! NumPy's .npy format: written as version 1.0, little-endian float32 (or float64), C order; read in
//! versions 1–3 as float32, float64 or uint8, C order.
//!
//! Reading is for files gankit did not write (another framework's samples), so the header
//! is parsed strictly and nothing is allocated from what it claims: the data must be in
//! the file, and its length must match the shape exactly.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result};

/// The element types gankit reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    U8,
}

impl Dtype {
    pub fn width(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::U8 => 1,
        }
    }
}

/// The header of an array of `shape` with element type `descr` ('<f4', '<f8'), padded so
/// the data starts at a multiple of 64.
fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Encode `data` with `shape` as an .npy file's bytes.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Vec<u8> {
    encode("<f4", data, shape, |v| v.to_le_bytes())
}

/// Encode `data` with `shape` as a float64 .npy file's bytes.
pub fn encode_f64(data: &[f64], shape: &[usize]) -> Vec<u8> {
    encode("<f8", data, shape, |v| v.to_le_bytes())
}

fn encode<T: Copy, const W: usize>(
    descr: &str,
    data: &[T],
    shape: &[usize],
    bytes: impl Fn(T) -> [u8; W],
) -> Vec<u8> {
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "shape matches data"
    );
    let mut out = header(descr, shape);
    out.reserve(W * data.len());
    for &v in data {
        out.extend_from_slice(&bytes(v));
    }
    out
}

/// A decoded .npy array: its shape, element type and the raw little-endian values.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    /// The values' bytes, `shape.product() * dtype.width()` of them.
    body: Vec<u8>,
}

impl NpyArray {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.body.len() / self.dtype.width()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The values as f64.
    pub fn to_f64(&self) -> Vec<f64> {
        match self.dtype {
            Dtype::F64 => self
                .body
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            _ => self.to_f32().into_iter().map(f64::from).collect(),
        }
    }

    /// The values as f32 (float64 rounded to nearest).
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            Dtype::F32 => self
                .body
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
            Dtype::F64 => self
                .body
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            Dtype::U8 => self.body.iter().map(|&b| f32::from(b)).collect(),
        }
    }
}

/// The value of `key` in a header dict `{'descr': '<f4', 'fortran_order': False, ...}`:
/// the text after `'key':`, up to the end of the header.
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let i = header.find(&pat)? + pat.len();
    Some(header[i..].trim_start())
}

/// Decode an .npy file's bytes: little-endian float32, float64 or uint8, C order, version
/// 1–3. `what` names the file in errors. Takes the bytes, so the values are not copied.
pub fn decode(mut bytes: Vec<u8>, what: &str) -> Result<NpyArray> {
    let bad = |m: &str| Error::Data(format!("{what}: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a NumPy .npy file"));
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text"))?;
    let descr = field(header, "descr").ok_or_else(|| bad("header has no descr"))?;
    let dtype = if descr.starts_with("'<f8'") {
        Dtype::F64
    } else if descr.starts_with("'<f4'") {
        Dtype::F32
    } else if descr.starts_with("'|u1'") || descr.starts_with("'<u1'") {
        Dtype::U8
    } else {
        return Err(bad(
            "only little-endian float32 / float64 and uint8 arrays are supported",
        ));
    };
    match field(header, "fortran_order") {
        Some(f) if f.starts_with("False") => {}
        Some(f) if f.starts_with("True") => {
            return Err(bad(
                "Fortran-ordered arrays are not supported; save with np.ascontiguousarray",
            ));
        }
        _ => return Err(bad("header has no fortran_order")),
    }
    let shape_txt = field(header, "shape").ok_or_else(|| bad("header has no shape"))?;
    let inner = shape_txt
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| bad("malformed shape"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("malformed shape")))
        .collect::<Result<Vec<_>>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let body_len = bytes.len() - end;
    if count.checked_mul(dtype.width()) != Some(body_len) {
        return Err(bad(&format!(
            "shape {shape:?} needs {} values, the file holds {body_len} bytes of data",
            count
        )));
    }
    bytes.drain(..end);
    Ok(NpyArray {
        shape,
        dtype,
        body: bytes,
    })
}

/// Read an .npy file (see [`decode`]).
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).at(path)?;
    decode(bytes, &path.display().to_string())
}

/// Write an .npy file (atomically).
pub fn write_f32(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    crate::fsutil::write_atomic(path, &encode_f32(data, shape))
}

/// Writes a float32 .npy file of a known shape in pieces, so an array larger than memory
/// can be produced batch by batch. The file appears (renamed from a temporary one) only
/// when [`NpyWriter::finish`] has written every value.
pub struct NpyWriter {
    /// `None` once finished.
    file: Option<std::io::BufWriter<std::fs::File>>,
    tmp: PathBuf,
    path: PathBuf,
    left: usize,
}

impl NpyWriter {
    pub fn create(path: &Path, shape: &[usize]) -> Result<NpyWriter> {
        let tmp = crate::fsutil::temp_path(path);
        let file = std::fs::File::create(&tmp).at(&tmp)?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        file.write_all(&header("<f4", shape)).at(&tmp)?;
        Ok(NpyWriter {
            file: Some(file),
            tmp,
            path: path.to_path_buf(),
            left: shape.iter().product(),
        })
    }

    /// Append values (in C order).
    pub fn write(&mut self, values: &[f32]) -> Result<()> {
        assert!(
            values.len() <= self.left,
            "more values than the shape holds"
        );
        self.left -= values.len();
        let mut bytes = Vec::with_capacity(4 * values.len());
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let file = self.file.as_mut().expect("not finished");
        file.write_all(&bytes).at(&self.tmp)
    }

    /// Flush, sync and move the file into place.
    pub fn finish(mut self) -> Result<()> {
        assert_eq!(self.left, 0, "every value written");
        let file = self
            .file
            .take()
            .expect("not finished")
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().at(&self.tmp)?;
        std::fs::rename(&self.tmp, &self.path).at(&self.path)
    }
}

impl Drop for NpyWriter {
    fn drop(&mut self) {
        // Unfinished (an error on the way): leave no partial file. After `finish` the
        // temporary name is gone (renamed), or the rename failed and it is garbage too.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_readable() {
        let b = encode_f32(&[1.0, -1.0, 0.5, 0.25, 0.0, 2.0], &[1, 2, 3]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (1, 2, 3)"), "{header}");
        assert_eq!(b.len(), 10 + hlen + 24);
        let a = decode(b, "t").unwrap();
        assert_eq!(a.shape, vec![1, 2, 3]);
        assert_eq!(a.to_f32(), vec![1.0, -1.0, 0.5, 0.25, 0.0, 2.0]);
    }

    /// NumPy's own header for `np.arange(6, dtype=np.uint8).reshape(2, 3)`.
    #[test]
    fn reads_uint8_and_float64() {
        let mut b =
            b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }"
                .to_vec();
        b.resize(10 + 0x76 - 1, b' ');
        b.push(b'\n');
        b.extend([0, 1, 2, 3, 4, 255]);
        let a = decode(b, "t").unwrap();
        assert_eq!((a.dtype, a.shape.clone()), (Dtype::U8, vec![2, 3]));
        assert_eq!(a.to_f64(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 255.0]);
        let mut b = encode_f32(&[0.0], &[1]);
        let h = String::from_utf8_lossy(&b[10..b.len() - 4]).replace("<f4", "<f8");
        b.truncate(10);
        b.extend(h.as_bytes());
        b.extend(0.1f64.to_le_bytes());
        assert_eq!(decode(b, "t").unwrap().to_f64(), vec![0.1]);
    }

    /// An .npy file (version 1.0) with this header dict and body.
    fn raw(dict: &str, body: &[u8]) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((dict.len() as u16).to_le_bytes());
        b.extend(dict.as_bytes());
        b.extend(body);
        b
    }

    #[test]
    fn bad_files_are_errors_never_panics_or_huge_allocations() {
        let dict = |descr: &str, shape: &str| {
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n")
        };
        let good = encode_f32(&[1.0, 2.0], &[2]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\x93NUMPY".to_vec(), "not a NumPy"),
            (good[..good.len() - 1].to_vec(), "holds 7 bytes"),
            (
                {
                    let mut b = good.clone();
                    b[8] = 0xff;
                    b[9] = 0xff;
                    b
                },
                "truncated header",
            ),
            (
                raw(&dict("<f4", "(99999999999,)"), &[0; 8]),
                "needs 99999999999 values",
            ),
            (
                raw(&dict("<f4", "(4294967296, 4294967296, 4294967296)"), &[]),
                "overflows",
            ),
            (raw(&dict(">f4", "(2,)"), &[0; 8]), "little-endian"),
            (raw(&dict("<f4", "(2, x)"), &[0; 8]), "malformed shape"),
            (raw(&dict("<f4", "2"), &[0; 8]), "malformed shape"),
            (
                raw("{'descr': '<f4', 'shape': (2,), }", &[0; 8]),
                "fortran_order",
            ),
            (raw("{}", &[0; 8]), "no descr"),
        ];
        for (bytes, needle) in cases {
            let e = decode(bytes, "t").unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn the_streaming_writer_matches_the_whole_array_encoder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
        let mut w = NpyWriter::create(&p, &[2, 3, 4]).unwrap();
        w.write(&data[..10]).unwrap();
        w.write(&data[10..]).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), encode_f32(&data, &[2, 3, 4]));
        // An abandoned writer leaves nothing.
        let q = dir.path().join("b.npy");
        drop(NpyWriter::create(&q, &[5]).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
