//! The .npy reader and the checks on arrays to score (`gankit eval --fake / --real`): any
//! bytes, no panic, and nothing allocated beyond the input's size.
#![no_main]

use gankit::evaluator::input::{self, InputRange};
use gankit::report::npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = npy::decode(data.to_vec(), "fuzz") else {
        return;
    };
    assert!(a.len() <= data.len(), "values come from the input");
    let _ = a.to_f64();
    for range in [InputRange::Signed, InputRange::Unit, InputRange::Byte] {
        if let Ok((values, [n, c, h, w])) = input::images(&a, range, "fuzz") {
            assert_eq!(values.len(), n * c * h * w);
            assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        }
    }
});
