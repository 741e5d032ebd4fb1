//! Spec problems with their place: file, line and column, a label under the offending text and a
//! hint where one helps. Rendered as `file:line:col: message` in plain output and as an annotated
//! snippet by miette on a terminal.

use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One spec file's text, kept so that errors can quote it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user would write it (relative to where orgform runs).
    pub path: String,
    pub text: Arc<str>,
    /// Byte offset of the start of each line, so that a position costs a binary search rather
    /// than a scan of the file (a spec file may hold thousands of organizations).
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line.saturating_sub(1)];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line.max(1), column)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A problem in the specs, at a place in one file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{path}:{line}:{column}: {message}")]
pub struct SpecError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[source_code]
    source_code: NamedSource<Arc<str>>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    pub help: Option<String>,
    /// The file's text, and whether the span is a secret written out (never to be quoted).
    text: Arc<str>,
    secret: bool,
}

impl SpecError {
    pub fn new(
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> SpecError {
        let (line, column) = file.line_col(span.start);
        let len = span.end.saturating_sub(span.start);
        SpecError {
            path: file.path.clone(),
            line,
            column,
            message: message.into(),
            source_code: NamedSource::new(file.path.clone(), file.text.clone()),
            span: SourceSpan::new(span.start.into(), len),
            label: label.into(),
            help: None,
            text: file.text.clone(),
            secret: false,
        }
    }

    /// A secret written out in the specs at `span`: the error points at it, and no snippet of
    /// the file (this one's or another error's) quotes it.
    pub fn literal_secret(
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> SpecError {
        SpecError {
            secret: true,
            ..SpecError::new(file, span, message, "literal secret")
        }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> SpecError {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in the specs, in file order. Validation collects them all so that a user
/// fixes the specs in one pass.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} in the specs", plural(.errors.len(), "problem"))]
pub struct SpecErrors {
    #[related]
    pub errors: Vec<SpecError>,
}

impl SpecErrors {
    /// The errors in a stable order (by file, then position), with every secret written out in
    /// a file masked in all the snippets that quote that file: the message names the key, and
    /// the value stays out of terminals and CI logs.
    pub fn new(mut errors: Vec<SpecError>) -> SpecErrors {
        errors.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        let mut secrets: std::collections::BTreeMap<String, Vec<Range<usize>>> =
            std::collections::BTreeMap::new();
        for e in errors.iter().filter(|e| e.secret) {
            let start = e.span.offset();
            secrets
                .entry(e.path.clone())
                .or_default()
                .push(start..start + e.span.len());
        }
        let mut masked: std::collections::BTreeMap<String, Arc<str>> =
            std::collections::BTreeMap::new();
        for e in &mut errors {
            let Some(spans) = secrets.get(&e.path) else {
                continue;
            };
            let text = masked
                .entry(e.path.clone())
                .or_insert_with(|| mask(&e.text, spans).into())
                .clone();
            e.source_code = NamedSource::new(e.path.clone(), text.clone());
            e.text = text;
        }
        SpecErrors { errors }
    }
}

/// `text` with each span's characters replaced by `*`, byte for byte, so that every other
/// span still points where it did.
fn mask(text: &str, spans: &[Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for span in spans {
        let end = span.end.min(bytes.len());
        let start = span.start.min(end);
        let last = end.saturating_sub(1);
        for (i, byte) in bytes.iter_mut().enumerate().take(end).skip(start) {
            // Quotes and line breaks stay, so the snippet keeps its shape.
            let quote = matches!(*byte, b'"' | b'\'') && (i == start || i == last);
            if !quote && !matches!(*byte, b'\n' | b'\r') {
                *byte = b'*';
            }
        }
    }
    // Whole characters were replaced by ASCII bytes, so this is UTF-8 still; if a span ever
    // cut a character, the lossy form keeps it readable and still masked.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `1 problem`, `3 problems`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The closest known name to an unknown one, for "did you mean" hints.
pub fn did_you_mean<'a>(
    unknown: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&unknown.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
