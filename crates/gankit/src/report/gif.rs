//! The animated GIF of a run's fixed-noise sample grids over training (report 000 shows
//! training as GIFs): one frame per grid, appended as each grid is written, so the file is
//! complete whenever the run stops. A resumed run cuts it back to the frames of the grids up
//! to its checkpoint (later ones are about to be drawn again), walking the file's blocks
//! without decoding them; only a file that does not hold those frames is re-encoded.

use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::{Error, Result};

/// How long each frame shows, in hundredths of a second.
pub const FRAME_DELAY_CS: u16 = 40;

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Run(format!("cannot write the GIF {}: {e}", path.display()))
}

/// A whole GIF file of `frames` (all of the first frame's size), looping forever.
fn encode(frames: &[RgbImage], path: &Path, repeat: bool) -> Result<Vec<u8>> {
    let (w, h) = frames[0].dimensions();
    let (w16, h16) = (
        u16::try_from(w).map_err(|e| err(path, e))?,
        u16::try_from(h).map_err(|e| err(path, e))?,
    );
    let mut buf = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut buf, w16, h16, &[]).map_err(|e| err(path, e))?;
        if repeat {
            enc.set_repeat(gif::Repeat::Infinite)
                .map_err(|e| err(path, e))?;
        }
        for img in frames {
            let img = fit(img, w, h);
            let mut frame = gif::Frame::from_rgb_speed(w16, h16, img.as_raw(), 10);
            frame.delay = FRAME_DELAY_CS;
            enc.write_frame(&frame).map_err(|e| err(path, e))?;
        }
    }
    Ok(buf)
}

/// `img` at `w`×`h` (a grid of another size is scaled to the animation's).
fn fit(img: &RgbImage, w: u32, h: u32) -> std::borrow::Cow<'_, RgbImage> {
    if img.dimensions() == (w, h) {
        std::borrow::Cow::Borrowed(img)
    } else {
        std::borrow::Cow::Owned(image::imageops::resize(
            img,
            w,
            h,
            image::imageops::FilterType::Nearest,
        ))
    }
}

/// The length of a GIF's header: the signature (6 bytes), the logical screen descriptor
/// (7) and the global colour table its flags announce.
fn header_len(gif: &[u8]) -> usize {
    let flags = gif[10];
    13 + if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    }
}

/// Append `img` as a frame of the GIF at `path`, creating the file when it is missing.
pub fn append(path: &Path, img: &RgbImage) -> Result<()> {
    let old = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = encode(std::slice::from_ref(img), path, true)?;
            return crate::fsutil::write_atomic(path, &bytes);
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let whole = old.len() > 13
        && old.starts_with(b"GIF89a")
        && old.len() > header_len(&old)
        && old.last() == Some(&0x3B);
    if !whole {
        return Err(err(path, "not a GIF gankit wrote; remove it"));
    }
    let screen = (
        u16::from_le_bytes([old[6], old[7]]) as u32,
        u16::from_le_bytes([old[8], old[9]]) as u32,
    );
    let one = encode(&[fit(img, screen.0, screen.1).into_owned()], path, false)?;
    // The new frame's blocks: after its header, before its trailer.
    let mut bytes = old;
    bytes.pop();
    bytes.extend_from_slice(&one[header_len(&one)..one.len() - 1]);
    bytes.push(0x3B);
    crate::fsutil::write_atomic(path, &bytes)
}

/// The byte offset just past the first `frames` frames of `gif` (after its header, each
/// frame's extensions and image data, walked block by block), or `None` when the bytes do
/// not hold that many well-formed frames.
fn end_of_frames(gif: &[u8], frames: usize) -> Option<usize> {
    // Data sub-blocks from `i`: a length byte and that many bytes, until a zero length.
    let sub_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let n = *gif.get(i)? as usize;
            i += 1 + n;
            if n == 0 {
                return Some(i);
            }
        }
    };
    if gif.len() <= 13 || !gif.starts_with(b"GIF89a") {
        return None;
    }
    let mut i = header_len(gif);
    for _ in 0..frames {
        // Extensions (0x21, label, sub-blocks) up to the frame's image descriptor (0x2C).
        while *gif.get(i)? == 0x21 {
            i = sub_blocks(i + 2)?;
        }
        if gif[i] != 0x2C {
            return None;
        }
        let flags = *gif.get(i + 9)?;
        i += 10;
        if flags & 0x80 != 0 {
            i += 3 << ((flags & 7) + 1); // the local colour table
        }
        i = sub_blocks(i + 1)?; // after the LZW minimum code size
    }
    (i <= gif.len()).then_some(i)
}

/// Make the GIF at `path` hold the frames of `grids` (the run's grids up to a checkpoint,
/// in order), as when it was first written: the file cut after that many frames when it
/// holds them, else written afresh from the PNGs.
pub fn keep_through(path: &Path, grids: &[PathBuf]) -> Result<()> {
    if !grids.is_empty()
        && let Ok(mut bytes) = std::fs::read(path)
        && let Some(end) = end_of_frames(&bytes, grids.len())
    {
        if end + 1 == bytes.len() && bytes[end] == 0x3B {
            return Ok(()); // already exactly those frames
        }
        bytes.truncate(end);
        bytes.push(0x3B);
        return crate::fsutil::write_atomic(path, &bytes);
    }
    rebuild(path, grids)
}

/// Write the GIF at `path` afresh from the grid PNGs `grids`, in order (nothing when empty).
pub fn rebuild(path: &Path, grids: &[PathBuf]) -> Result<()> {
    let frames: Vec<RgbImage> = grids
        .iter()
        .map(|g| {
            image::open(g)
                .map(|i| i.to_rgb8())
                .map_err(|e| Error::Data(format!("{}: not a readable PNG ({e})", g.display())))
        })
        .collect::<Result<_>>()?;
    if frames.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        };
    }
    crate::fsutil::write_atomic(path, &encode(&frames, path, true)?)
}

/// The frames of the GIF at `path` (for tests).
#[cfg(test)]
pub(crate) fn frame_count(path: &Path) -> usize {
    let mut d = gif::DecodeOptions::new()
        .read_info(std::fs::File::open(path).unwrap())
        .unwrap();
    let mut n = 0;
    while d.read_next_frame().unwrap().is_some() {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(path: &Path) -> Vec<(u16, u16, Vec<u8>)> {
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut d = opts.read_info(std::fs::File::open(path).unwrap()).unwrap();
        let mut out = Vec::new();
        while let Some(f) = d.read_next_frame().unwrap() {
            out.push((f.width, f.height, f.buffer.to_vec()));
        }
        out
    }

    fn plain(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, image::Rgb([v, v, v]))
    }

    #[test]
    fn frames_are_appended_one_by_one_and_decode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.gif");
        for v in [0u8, 128, 255] {
            append(&p, &plain(6, 4, v)).unwrap();
        }
        // A grid of another size is scaled to the first one's.
        append(&p, &plain(12, 8, 255)).unwrap();
        let frames = frames_of(&p);
        assert_eq!(frames.len(), 4);
        for (i, v) in [0u8, 128, 255, 255].into_iter().enumerate() {
            assert_eq!((frames[i].0, frames[i].1), (6, 4));
            // RGBA pixels of one grey.
            assert!(frames[i].2.chunks(4).all(|px| px[..3] == [v, v, v]), "{i}");
        }
    }

    /// Three 5×5 grid PNGs in `dir`, of greys 0, 100 and 200.
    fn grid_files(dir: &Path) -> Vec<PathBuf> {
        (0..3)
            .map(|i| {
                let g = dir.join(format!("g{i}.png"));
                plain(5, 5, 100 * i as u8).save(&g).unwrap();
                g
            })
            .collect()
    }

    #[test]
    fn a_rebuild_keeps_only_the_grids_given_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let grids = grid_files(dir.path());
        let p = dir.path().join("t.gif");
        rebuild(&p, &grids[..2]).unwrap();
        assert_eq!(frames_of(&p).len(), 2);
        append(&p, &plain(5, 5, 200)).unwrap();
        assert_eq!(frames_of(&p).len(), 3);
        rebuild(&p, &[]).unwrap();
        assert!(!p.exists());
        std::fs::write(&p, b"GIF89a not really").unwrap();
        assert!(append(&p, &plain(5, 5, 1)).is_err());
    }

    #[test]
    fn keeping_the_first_frames_cuts_the_file_as_if_only_they_were_appended() {
        let dir = tempfile::tempdir().unwrap();
        let grids = grid_files(dir.path());
        let (all, two) = (dir.path().join("all.gif"), dir.path().join("two.gif"));
        for g in &grids {
            append(&all, &image::open(g).unwrap().to_rgb8()).unwrap();
        }
        for g in &grids[..2] {
            append(&two, &image::open(g).unwrap().to_rgb8()).unwrap();
        }
        keep_through(&all, &grids[..2]).unwrap();
        assert_eq!(std::fs::read(&all).unwrap(), std::fs::read(&two).unwrap());
        keep_through(&all, &grids[..2]).unwrap();
        assert_eq!(frames_of(&all).len(), 2);
        // Fewer frames than grids, or a foreign file: written afresh from the PNGs.
        keep_through(&two, &grids).unwrap();
        assert_eq!(frames_of(&two).len(), 3);
        std::fs::write(&two, b"GIF89a not really").unwrap();
        keep_through(&two, &grids[..1]).unwrap();
        assert_eq!(frames_of(&two).len(), 1);
        keep_through(&two, &[]).unwrap();
        assert!(!two.exists());
    }
}
