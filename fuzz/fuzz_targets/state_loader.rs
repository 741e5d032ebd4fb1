//! Arbitrary bytes as a state file: a state or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = orgform::state::parse("state.json", text);
    }
});
