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

/// A link out of the specs folder is refused by `fmt` as by `validate`: a pull request that
/// adds `specs/env.toml -> /proc/self/environ` (or `-> ../secret.txt`) must not get the
/// target's text into the errors or the diff a CI job's `fmt --check` prints, and `fmt` must
/// not replace the link with a copy of the outside file.
#[test]
fn fmt_refuses_a_link_out_of_the_specs_folder_and_shows_nothing_of_its_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(
        specs.join("a.toml"),
        "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n",
    )
    .expect("write");
    // Outside text that is TOML (its whole text would be the diff) and text that is not (its
    // first line would be the parse error's snippet).
    std::fs::write(
        dir.path().join("outside.toml"),
        "zzz = \"TOPSECRET-toml\"\naaa = 1\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("secret.txt"), "TOPSECRET hunter2\n").expect("write");
    for target in ["../outside.toml", "../secret.txt", "/proc/self/environ"] {
        let link = specs.join("leak.toml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        for args in [&["fmt", "--check"][..], &["fmt"]] {
            let run = crate::harness::run(dir.path(), args, &[("CI_TOKEN", "ghp_FAKE_SECRET_123")])
                .expect(1);
            let all = format!("{}{}", run.stdout, run.stderr);
            assert!(
                !all.contains("TOPSECRET") && !all.contains("ghp_FAKE") && !all.contains("PATH="),
                "{target}, fmt {args:?} showed the target:\n{all}"
            );
            assert!(all.contains("outside the specs folder"), "{all}");
            assert!(
                std::fs::symlink_metadata(&link)
                    .expect("the link")
                    .file_type()
                    .is_symlink(),
                "{target}: fmt replaced the link"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("outside.toml")).expect("read"),
        "zzz = \"TOPSECRET-toml\"\naaa = 1\n"
    );
}

/// A link within the folder is formatted where it points, and stays a link.
#[test]
fn fmt_formats_a_link_within_the_folder_at_its_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(specs.join("real")).expect("mkdir");
    let unordered = "[provider.h]\napi_key = { env = \"K\" }\ntype = \"heron\"\n";
    std::fs::write(specs.join("real/h.txt"), unordered).expect("write");
    std::os::unix::fs::symlink("real/h.txt", specs.join("h.toml")).expect("symlink");
    orgform(dir.path(), &["fmt", "--check"]).expect(1);
    orgform(dir.path(), &["fmt"]).expect(0);
    assert!(
        std::fs::symlink_metadata(specs.join("h.toml"))
            .expect("the link")
            .file_type()
            .is_symlink()
    );
    let formatted = std::fs::read_to_string(specs.join("real/h.txt")).expect("read");
    assert_ne!(formatted, unordered);
    orgform(dir.path(), &["fmt", "--check"]).expect(0);
}

/// A spec file's name is text a pull request chooses: `fmt --check` shows it escaped in the
/// diff's header and in its messages, so that it can't add lines to either.
#[test]
fn fmt_shows_a_hostile_file_name_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let name = "a\tb\n+provider = \"forged\"\u{1b}[2J\u{202e}.toml";
    std::fs::write(
        specs.join(name),
        "[provider.h]\napi_key = { env = \"K\" }\ntype = \"heron\"\n",
    )
    .expect("write");
    let run = orgform(dir.path(), &["fmt", "--check"]).expect(1);
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(['\t', '\u{1b}', '\u{202e}']),
            "{what}: {text:?}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("+provider = \"forged\"")),
            "{what}: a file name forged a line: {text}"
        );
    }
    assert!(run.stderr.contains(r"a\tb\n+provider"), "{}", run.stderr);
    std::fs::write(specs.join(name), [0xff, 0xfe, b'\n']).expect("write");
    let run = orgform(dir.path(), &["fmt", "--check"]).expect(1);
    assert!(!run.stderr.contains(['\t', '\u{1b}']), "{:?}", run.stderr);
    assert!(run.stderr.contains(r"a\tb\n+provider"), "{}", run.stderr);
}
