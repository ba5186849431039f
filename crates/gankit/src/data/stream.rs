//! Streaming a folder (`data.cache = false`): nothing is decoded at start; each image is
//! read and decoded from its file when a batch needs it, the batcher decoding a batch's
//! images in parallel a few batches ahead of the step. Memory stays at a few batches
//! whatever the folder's size; the images are the cache's, bit for bit.
//!
//! At start every listed file's header is read (not its pixels): files that are not images
//! at all are skipped and counted, as the cache does, or refused with
//! `data.unreadable = "fail"`. A file whose pixels turn out undecodable when a batch needs
//! it (a truncated JPEG) stops the run with an error naming it.

use rayon::prelude::*;

use super::cache::Want;
use super::listing::Listing;
use crate::{Error, Result};

/// Decodes the images of a listing on demand.
#[derive(Debug)]
pub struct Streamer {
    listing: Listing,
    want: Want,
}

impl Streamer {
    /// A streamer over the files of `listing` whose headers read as an image (all of them
    /// with `fail`, else an error naming the first that does not); with the listing
    /// positions it kept.
    pub fn new(listing: Listing, want: Want, fail: bool) -> Result<(Streamer, Vec<u32>)> {
        let readable: Vec<std::result::Result<(), String>> = (0..listing.entries.len())
            .into_par_iter()
            .map(|i| {
                listing
                    .header_ok(i)
                    .map_err(|e| format!("{}: {e}", listing.name(i)))
            })
            .collect();
        let bad = readable.iter().filter(|r| r.is_err()).count();
        if let Some(Err(first)) = readable.iter().find(|r| r.is_err()) {
            super::folder::refuse_unreadable(&listing, bad, first, fail)?;
        }
        let kept: Vec<u32> = (0..readable.len() as u32)
            .filter(|&i| readable[i as usize].is_ok())
            .collect();
        let listing = listing.subset(&kept);
        Ok((Streamer { listing, want }, kept))
    }

    /// Images it streams.
    pub fn len(&self) -> usize {
        self.listing.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listing.entries.is_empty()
    }

    /// Image `i`, decoded from its file at the set's size and channels.
    pub fn decode(&self, i: usize) -> Result<Vec<u8>> {
        self.listing
            .read(i)
            .and_then(|b| super::folder::decode(&b, self.want.size, self.want.channels))
            .map_err(|e| {
                Error::Data(format!(
                    "{} cannot be decoded ({e}): with data.cache = false every image must decode; remove it, or train with the cache (data.cache = true), which skips such files",
                    self.listing.name(i)
                ))
            })
    }
}
