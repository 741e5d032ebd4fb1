//! Arbitrary bytes as spec files: loading must return specs or errors, never panic or hang.
//! The input is split in two at the first NUL, so cross-file checks run too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orgform::spec::{SourceFile, Spec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, second) = text.split_once('\0').unwrap_or((text, ""));
    let files = [
        SourceFile::new("a.toml", first.to_string()),
        SourceFile::new("b.toml", second.to_string()),
    ];
    if let Err(errors) = Spec::load(&files) {
        // Rendering every error (line and column included) must not panic either.
        for e in &errors.errors {
            let _ = e.to_string();
        }
    }
});
