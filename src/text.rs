//! Words for people: the small pieces of English that messages, reports and errors share, so
//! that every layer counts things the same way.
//!
//! Pure (no I/O), so the spec layer may use it as freely as `output` does.

/// `1 problem`, `3 problems`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
