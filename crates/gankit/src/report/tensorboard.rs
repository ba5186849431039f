//! TensorBoard event files (`log.tensorboard = true`): a run's scalars, sample grids and
//! weight histograms in `RUN/tensorboard/`, for `tensorboard --logdir RUN/tensorboard`.
//!
//! No maintained Rust writer exists, and the format is small, so it is written here:
//! - the file is a sequence of TFRecords: the data's length (u64, little-endian), the
//!   masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data;
//! - each record is one `tensorflow.Event` protocol buffer (wall time, step, and either the
//!   file version or a `Summary` of tagged values), encoded by hand below: only the fields
//!   gankit writes, numbered as in TensorFlow's `event.proto`, `summary.proto`.
//!
//! A resumed run cuts the file back after the events of steps up to its checkpoint (the
//! later ones are about to be written again), as metrics.csv is cut, so the curves never
//! hold two values for one step. `scripts/read_tensorboard.py` reads a file back with the
//! `tensorboard` package's own reader; the CLI test `tensorboard_files_read_back` runs it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::report::histogram::Histogram;
use crate::{Error, Result};

/// The event file's name inside the run's `tensorboard/` folder. TensorBoard reads every
/// file whose name contains `tfevents`; one fixed name lets a resume find it.
pub const FILE_NAME: &str = "events.out.tfevents.gankit";

/// The CRC-32C TFRecord stores: rotated right by 15 bits, plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Frame `data` as one TFRecord.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Protocol-buffer encoding of the few wire types the event messages use.
mod proto {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire));
    }

    pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
        key(out, field, 0);
        varint(out, v);
    }

    pub fn double(out: &mut Vec<u8>, field: u32, v: f64) {
        key(out, field, 1);
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn float(out: &mut Vec<u8>, field: u32, v: f32) {
        key(out, field, 5);
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
        key(out, field, 2);
        varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }

    pub fn packed_doubles(out: &mut Vec<u8>, field: u32, v: &[f64]) {
        let body: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bytes(out, field, &body);
    }

    /// Read a varint at `*at`, moving past it; None when the buffer ends inside it.
    pub fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *buf.get(*at)?;
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
}

/// One value of a summary, in the `Summary.Value` oneof.
pub enum Value<'a> {
    Scalar(f32),
    /// An encoded PNG of `height`×`width` with `channels` (1 or 3).
    Image {
        png: &'a [u8],
        height: u32,
        width: u32,
        channels: u32,
    },
    Histogram(&'a Histogram),
}

fn encode_value(tag: &str, value: &Value) -> Vec<u8> {
    let mut v = Vec::new();
    proto::bytes(&mut v, 1, tag.as_bytes());
    match value {
        Value::Scalar(x) => proto::float(&mut v, 2, *x),
        Value::Image {
            png,
            height,
            width,
            channels,
        } => {
            let mut img = Vec::new();
            proto::uint(&mut img, 1, u64::from(*height));
            proto::uint(&mut img, 2, u64::from(*width));
            proto::uint(&mut img, 3, u64::from(*channels));
            proto::bytes(&mut img, 4, png);
            proto::bytes(&mut v, 4, &img);
        }
        Value::Histogram(h) => {
            let mut m = Vec::new();
            proto::double(&mut m, 1, h.min);
            proto::double(&mut m, 2, h.max);
            proto::double(&mut m, 3, h.count() as f64);
            proto::double(&mut m, 4, h.sum);
            proto::double(&mut m, 5, h.sum_squares);
            // A bucket's limit is its right edge; the first bucket starts at `min`.
            proto::packed_doubles(&mut m, 6, &h.edges[1..]);
            let counts: Vec<f64> = h.counts.iter().map(|&c| c as f64).collect();
            proto::packed_doubles(&mut m, 7, &counts);
            proto::bytes(&mut v, 5, &m);
        }
    }
    v
}

/// A `tensorflow.Event`: wall time (field 1), step (2) and the file version (3) or a
/// summary (5).
fn event(
    wall_time: f64,
    step: u64,
    file_version: Option<&str>,
    values: &[(&str, Value)],
) -> Vec<u8> {
    let mut e = Vec::new();
    proto::double(&mut e, 1, wall_time);
    if step > 0 {
        proto::uint(&mut e, 2, step);
    }
    if let Some(v) = file_version {
        proto::bytes(&mut e, 3, v.as_bytes());
    } else {
        let mut summary = Vec::new();
        for (tag, value) in values {
            proto::bytes(&mut summary, 1, &encode_value(tag, value));
        }
        proto::bytes(&mut e, 5, &summary);
    }
    e
}

/// The step of an encoded event (field 2; 0 when absent), or None if it does not parse.
fn event_step(data: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at < data.len() {
        let key = proto::read_varint(data, &mut at)?;
        match (key >> 3, key & 7) {
            (2, 0) => return proto::read_varint(data, &mut at),
            (_, 0) => {
                proto::read_varint(data, &mut at)?;
            }
            (_, 1) => at += 8,
            (_, 5) => at += 4,
            (_, 2) => {
                let n = proto::read_varint(data, &mut at)?;
                at = at.checked_add(usize::try_from(n).ok()?)?;
            }
            _ => return None,
        }
    }
    (at == data.len()).then_some(0)
}

/// The length of the leading part of `buf` made of whole, valid records whose events are
/// at steps ≤ `step`.
fn keep_len(buf: &[u8], step: u64) -> usize {
    let mut at = 0;
    while let Some(header) = buf.get(at..at + 12) {
        let len_bytes = &header[..8];
        if masked_crc(len_bytes).to_le_bytes() != header[8..12] {
            break;
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|n| (at + 12).checked_add(n))
        else {
            break;
        };
        let (Some(data), Some(crc)) = (buf.get(at + 12..end), buf.get(end..end + 4)) else {
            break;
        };
        if masked_crc(data).to_le_bytes() != crc {
            break;
        }
        match event_step(data) {
            Some(s) if s <= step => at = end + 4,
            _ => break,
        }
    }
    at
}

/// An open event file.
pub struct EventWriter {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl EventWriter {
    /// Open `dir/FILE_NAME` for a run at `step`: a new file (or any at step 0) starts with
    /// the file-version event; an existing one is cut back after the events of steps ≤
    /// `step` (a damaged tail is dropped with them) and appended to.
    pub fn open(dir: &Path, step: u64) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).at(dir)?;
        let path = dir.join(FILE_NAME);
        let existing = match std::fs::read(&path) {
            Ok(buf) => Some(buf),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).at(&path),
        };
        // A run at iteration 0 writes everything again (its first grid too).
        let kept = match existing.as_deref() {
            Some(b) if step > 0 => keep_len(b, step),
            _ => 0,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        file.set_len(kept as u64).at(&path)?;
        let mut file = std::io::BufWriter::new(file);
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0)).at(&path)?;
        let mut w = EventWriter { path, file };
        if kept == 0 {
            let e = event(wall_time(), 0, Some("brain.Event:2"), &[]);
            w.write_record(&e)?;
        }
        Ok(w)
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        self.file.write_all(&record(data)).at(&self.path)
    }

    /// One event at `step` holding `values`.
    pub fn write(&mut self, step: u64, values: &[(&str, Value)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let e = event(wall_time(), step, None, values);
        self.write_record(&e)
    }

    /// Push what is buffered to the file (TensorBoard shows it from then on).
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().at(&self.path)
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.file.flush();
    }
}

fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Encode `img` as PNG bytes for an image summary.
pub fn png_bytes(img: &image::DynamicImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Run(format!("cannot encode a TensorBoard image: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::manual_rotate)]
    fn crc32c_is_the_castagnoli_checksum_and_the_mask_is_tensorflows() {
        // The check value of CRC-32C (RFC 3720 appendix B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // TensorFlow's MaskedCrc of the 8 zero bytes of an empty record's length, as
        // crc32c.mask(crc32c.value(b"\0" * 8)) in TensorFlow's Python helpers.
        let crc = crc32c::crc32c(&[0u8; 8]);
        // Written out as TensorFlow's crc32c::Mask does, apart from the code under test.
        assert_eq!(
            masked_crc(&[0u8; 8]),
            ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let enc = |v| {
            let mut o = Vec::new();
            proto::varint(&mut o, v);
            o
        };
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(150), [0x96, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        let mut at = 0;
        assert_eq!(proto::read_varint(&enc(1 << 40), &mut at), Some(1 << 40));
    }

    #[test]
    fn a_scalar_event_has_the_protobuf_bytes_of_tensorflows_event() {
        // Event(wall_time=1.5, step=3, summary=Summary(value=[Value(tag="a",
        // simple_value=2.0)])).SerializeToString(), worked out field by field.
        let e = event(1.5, 3, None, &[("a", Value::Scalar(2.0))]);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x03, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15]);
        want.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(e, want);
        assert_eq!(event_step(&e), Some(3));
    }

    #[test]
    fn a_resume_cuts_the_file_after_its_checkpoint_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = EventWriter::open(dir.path(), 0).unwrap();
            for step in 1..=6 {
                w.write(step, &[("loss", Value::Scalar(step as f32))])
                    .unwrap();
            }
        }
        let path = dir.path().join(FILE_NAME);
        let full = std::fs::read(&path).unwrap();
        let one = record(&event(0.0, 1, None, &[("loss", Value::Scalar(1.0))])).len();
        // Tear the last record.
        std::fs::write(&path, &full[..full.len() - 3]).unwrap();
        {
            let mut w = EventWriter::open(dir.path(), 4).unwrap();
            w.write(5, &[("loss", Value::Scalar(50.0))]).unwrap();
        }
        let after = std::fs::read(&path).unwrap();
        // The version event, steps 1-4, then the new step 5; all records whole.
        assert_eq!(keep_len(&after, u64::MAX), after.len());
        assert_eq!(after.len(), full.len() - one);
        assert_eq!(keep_len(&after, 4), full.len() - 2 * one);
        assert_eq!(&after[..keep_len(&after, 4)], &full[..full.len() - 2 * one]);
    }
}
