//! Golden-file comparison shared by the data-driven tests: compare whole outputs, and rewrite
//! the expected files when `BLESS=1` is set.

use std::path::Path;

/// Compares `actual` with the file at `expected`; with `BLESS=1`, writes it instead.
pub fn check(expected: &Path, actual: &str) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(expected, actual).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run with BLESS=1 to create it",
            expected.display()
        )
    });
    if want != actual {
        let diff = similar::TextDiff::from_lines(&want, actual);
        panic!(
            "{} differs from the output (BLESS=1 rewrites it):\n{}",
            expected.display(),
            diff.unified_diff().header("expected", "actual")
        );
    }
}

/// The spec files of a folder, read in path order, as the CLI reads them.
pub fn spec_files(dir: &Path) -> Vec<orgform::spec::SourceFile> {
    let mut paths = Vec::new();
    collect(dir, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read spec");
            let shown = p
                .strip_prefix(dir)
                .map_or_else(|_| p.display().to_string(), |r| r.display().to_string());
            orgform::spec::SourceFile::new(shown, text)
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// Sub-folders of `dir`, sorted: one test case each.
pub fn cases(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", dir.display());
    cases
}
