//! Hostile inputs for the three loaders, kept as files (`tests/fuzz_regressions/`): what the fuzz
//! targets found, and the shapes they are pointed at (deep nesting, truncation, huge values,
//! NUL bytes, invalid UTF-8, other format versions). Each must load or fail with a clear error:
//! no panic, no stack overflow.

use std::path::Path;

fn inputs(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("regression folder")
        .flatten()
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no cases in {}", dir.display());
    out
}

/// Runs `check` on a thread with a small stack: deep input must be refused, not recursed into.
fn on_small_stack(name: &str, check: impl FnOnce() + Send + 'static) {
    let joined = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(check)
        .expect("thread")
        .join();
    assert!(joined.is_ok(), "{name} panicked");
}

#[test]
fn spec_loader_survives_hostile_input() {
    for (name, bytes) in inputs("spec") {
        let shown = name.clone();
        on_small_stack(&name, move || {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            match orgform::spec::Spec::load(&[orgform::spec::SourceFile::new(shown, text)]) {
                Ok(_) => {}
                Err(errors) => {
                    assert!(!errors.errors.is_empty());
                    for e in &errors.errors {
                        assert!(e.line >= 1 && e.column >= 1, "{e}");
                    }
                }
            }
        });
    }
}

#[test]
fn state_loader_survives_hostile_input() {
    for (name, bytes) in inputs("state") {
        let shown = name.clone();
        on_small_stack(&name, move || {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Err(e) = orgform::state::parse(&shown, &text) {
                assert!(!e.to_string().is_empty());
            }
        });
    }
}

#[test]
fn plan_loader_survives_hostile_input() {
    for (name, bytes) in inputs("plan") {
        on_small_stack(&name, move || {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            assert!(
                orgform::plan::parse_saved(&text).is_err(),
                "none of these is a plan"
            );
        });
    }
}
