//! `orgform fmt`: canonical key order with comments kept, idempotent, and `--check` for CI.

use std::path::Path;

use crate::e2e::orgform;
use crate::golden::check;

#[test]
fn fmt_orders_keys_and_keeps_comments() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let spec = dir.path().join("specs/a.toml");
    std::fs::copy(root.join("tests/fmt/input.toml"), &spec).expect("copy");

    let check_run = orgform(dir.path(), &["fmt", "--check"]).expect(1);
    assert!(
        check_run.stderr.contains("specs/a.toml"),
        "{}",
        check_run.stderr
    );
    orgform(dir.path(), &["fmt"]).expect(0);
    let formatted = std::fs::read_to_string(&spec).expect("read");
    check(&root.join("tests/fmt/expected.toml"), &formatted);
    orgform(dir.path(), &["fmt", "--check"]).expect(0);
    orgform(dir.path(), &["fmt"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(&spec).expect("read"),
        formatted,
        "idempotent"
    );
    orgform(dir.path(), &["validate"]).expect(0);
}

#[test]
fn the_example_specs_are_in_canonical_form() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = orgform(root, &["fmt", "--check"]);
    assert_eq!(run.code, 0, "run `orgform fmt` on specs/: {}", run.stderr);
}
