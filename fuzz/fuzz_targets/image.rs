//! The image-folder decoding path (PNG / JPEG told by content, crop, resize, planes).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gankit::data::folder::decode(data, 16, 3);
    let _ = gankit::data::folder::decode(data, 8, 1);
});
