//! The strict config parser with `--set` overrides and validation: any text, no panic.
#![no_main]

use gankit::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line doubles as a `--set` override of the rest.
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(cfg) = Config::from_toml_str(rest, "fuzz", &[first.to_string()]) {
        let back = Config::from_toml_str(&cfg.to_toml(), "fuzz", &[]).expect("round trip");
        assert_eq!(back, cfg);
    }
    let _ = Config::from_toml_str(text, "fuzz", &[]);
});
