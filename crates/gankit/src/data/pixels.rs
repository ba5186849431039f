//! Where an [`ImageSet`](super::ImageSet)'s bytes live: in memory (decoded at start) or in a
//! memory-mapped data cache (`data::cache`), whose pages the kernel loads on demand and may
//! drop again, so a set larger than memory costs no anonymous memory.

use std::ops::Deref;
use std::sync::Arc;

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
}

impl Pixels {
    /// Keep the first `len` bytes (no-op when there are fewer).
    pub fn truncate(&mut self, len: usize) {
        match self {
            Pixels::Owned(v) => v.truncate(len),
            Pixels::Mapped { len: l, .. } => *l = (*l).min(len),
        }
    }

    /// Whether the bytes come from a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Pixels::Mapped { .. })
    }
}

impl Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped { map, start, len } => &map[*start..*start + *len],
        }
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
