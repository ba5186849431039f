//! The IDX parser and the image / label views on top of it: any bytes, no panic.
#![no_main]

use gankit::data::idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = idx::parse(data, "fuzz") {
        if let Ok((n, _, _)) = idx::as_images(&a, "fuzz") {
            let _ = idx::as_labels(&a, n, "fuzz");
        }
    }
});
