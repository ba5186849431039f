//! Where an [`ImageSet`](super::ImageSet)'s bytes live: in memory (decoded at start), in a
//! memory-mapped data cache (`data::cache`), whose pages the kernel loads on demand and may
//! drop again, or nowhere: streamed, each image decoded from its file when a batch needs it
//! (`data::stream`). Mapped and streamed sets larger than memory cost no process memory.

use std::borrow::Cow;
use std::sync::Arc;

use super::stream::Streamer;
use crate::Result;

/// The (N, C, H, W) bytes of a set of images.
#[derive(Clone, Debug)]
pub enum Pixels {
    /// Decoded into memory.
    Owned(Vec<u8>),
    /// `len` bytes from `start` of a mapped cache file.
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
    /// Decoded from the files on demand.
    Streamed(Arc<Streamer>),
}

impl Pixels {
    /// All the bytes, when they are in memory or mapped.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Pixels::Owned(v) => Some(v),
            Pixels::Mapped { map, start, len } => Some(&map[*start..*start + *len]),
            Pixels::Streamed(_) => None,
        }
    }

    /// Image `i` of `image_len` bytes.
    pub fn image(&self, i: usize, image_len: usize) -> Result<Cow<'_, [u8]>> {
        match (self, self.bytes()) {
            (_, Some(b)) => Ok(Cow::Borrowed(&b[i * image_len..(i + 1) * image_len])),
            (Pixels::Streamed(s), None) => Ok(Cow::Owned(s.decode(i)?)),
            _ => unreachable!("only streamed sets have no bytes"),
        }
    }

    /// Keep the first `len` bytes of an in-memory or mapped set.
    pub fn truncate(&mut self, len: usize) {
        match self {
            Pixels::Owned(v) => v.truncate(len),
            Pixels::Mapped { len: l, .. } => *l = (*l).min(len),
            Pixels::Streamed(_) => {}
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self, Pixels::Mapped { .. })
    }

    pub fn is_streamed(&self) -> bool {
        matches!(self, Pixels::Streamed(_))
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Pixels {
        Pixels::Owned(v)
    }
}

impl FromIterator<u8> for Pixels {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Pixels {
        Pixels::Owned(iter.into_iter().collect())
    }
}
