//! The decoded-image cache reader (`gankit cache verify`, and every run that maps a
//! cache): any file, no panic, and a file it accepts has sizes that add up. The footer's
//! hash is made to match, so the fuzzer reaches the header, index and block checks behind
//! it. Input: two bytes giving the data region's length, the data region, then the meta
//! region (header length, header JSON, index, block checksums).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([input[0], input[1]]) as usize).min(input.len() - 2);
    let (data, meta) = input[2..].split_at(split);
    let mut file = data.to_vec();
    file.extend_from_slice(meta);
    file.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    file.extend_from_slice(&Sha256::digest(meta));
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(b"GKDCACHE");
    let path = std::env::temp_dir().join(format!("gankit-fuzz-cache-{}.gkdata", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    if let Ok(h) = gankit::data::cache::verify(&path) {
        assert!(h.count * h.channels * h.size * h.size <= data.len());
    }
});
