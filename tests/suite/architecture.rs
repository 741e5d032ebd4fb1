//! The architecture's invariants, checked: the planner and the spec layer stay pure.

use std::path::Path;

/// What a pure module must not name: async runtimes, HTTP, the file system, the clock, and
/// the I/O edges of the crate.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "std::fs",
    "std::net",
    "SystemTime",
    "Instant::now",
    "std::env",
    "crate::providers",
    "crate::apply",
    "crate::commands",
    "crate::sandbox",
    "crate::secrets",
    "crate::output",
    "state::file",
    "time::now",
];

fn check_pure(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(check_pure(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!("{}:{}: uses `{word}`", path.display(), n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn planner_and_spec_layer_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = check_pure(&root.join("plan"));
    found.extend(check_pure(&root.join("spec")));
    assert!(
        found.is_empty(),
        "the pure core reaches for I/O:\n{}",
        found.join("\n")
    );
}
