//! Spec problems with their place: file, line and column, a label under the offending text and a
//! hint where one helps. Rendered as `file:line:col: message` in plain output and as an annotated
//! snippet by miette on a terminal.

use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::escape;
use crate::text::plural;

/// One spec file's text, kept so that errors can quote it; or a piece of a large file, cut at a
/// table header so that it parses on its own (see [`SourceFile::pieces`]).
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user would write it (relative to where orgform runs), shared with the
    /// origin of every table declared in the file.
    pub(crate) path: Arc<str>,
    /// The whole file's text, even in a piece: error snippets quote the file.
    pub(crate) text: Arc<str>,
    /// Byte offset of the start of each line, so that a position costs a binary search rather
    /// than a scan of the file (a spec file may hold thousands of organizations).
    line_starts: Arc<[usize]>,
    /// The part of `text` this value stands for: all of it, or a piece. Spans in what
    /// [`SourceFile::source`] parses to are relative to its start.
    range: Range<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        // Counted first, so that a file of a million lines fills one allocation of the right size.
        let lines = text.bytes().filter(|&b| b == b'\n').count();
        let mut line_starts = Vec::with_capacity(lines + 1);
        line_starts.push(0);
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path: path.into(),
            range: 0..text.len(),
            text,
            line_starts: line_starts.into(),
        }
    }

    /// A spec file's bytes as text, or an error at the first place where they stop being text
    /// that TOML can hold: bytes that are not UTF-8, or a control character TOML allows nowhere
    /// (below U+0020 but tab, line feed and carriage return; U+007F). Such a file is not a spec
    /// and may be anything (`/proc/self/environ` is NUL-separated), so the error quotes nothing
    /// of it: the parser's snippets would.
    pub(crate) fn from_bytes(
        path: impl Into<Arc<str>>,
        bytes: Vec<u8>,
    ) -> Result<SourceFile, Box<SpecError>> {
        let path = path.into();
        // The file refused, pointing at the 1-based line and column (in characters) of the end
        // of `before`, valid UTF-8.
        let refuse = |before: &[u8], message: String| {
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            Box::new(
                SpecError::unquoted(path.clone(), line, column, message)
                    .with_help("check what this path is: a spec file is TOML text"),
            )
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                return Err(refuse(
                    &e.as_bytes()[..at],
                    "the file is not UTF-8 text, as TOML must be; nothing of it is shown".into(),
                ));
            }
        };
        // Every byte of a multi-byte character is 0x80 or above, so a byte scan is exact.
        let control = text
            .bytes()
            .position(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f);
        if let Some(at) = control {
            return Err(refuse(
                &text.as_bytes()[..at],
                format!(
                    "the file holds the control character U+{:04X}, which TOML allows nowhere; nothing of it is shown",
                    text.as_bytes()[at]
                ),
            ));
        }
        Ok(SourceFile::new(path, text))
    }

    /// The text to parse: the whole file, or this piece of it.
    pub(crate) fn source(&self) -> &str {
        &self.text[self.range.clone()]
    }

    /// The text at `range` of [`SourceFile::source`] standing alone, as a piece does: what it
    /// parses to is told at its place in the whole file. For a caller that knows where the
    /// file's tables start (`discover`, which wrote it), to check its parts at the same time.
    pub(crate) fn part(&self, range: Range<usize>) -> SourceFile {
        let end = self
            .range
            .end
            .min(self.range.start.saturating_add(range.end));
        let start = end.min(self.range.start.saturating_add(range.start));
        SourceFile {
            path: self.path.clone(),
            text: self.text.clone(),
            line_starts: self.line_starts.clone(),
            range: start..end,
        }
    }

    /// Where a span of [`SourceFile::source`] lies in the whole file.
    pub(crate) fn in_file(&self, span: Range<usize>) -> Range<usize> {
        span.start + self.range.start..span.end + self.range.start
    }

    /// The file cut into pieces of about `size` bytes, each starting at a line that begins with
    /// `[org.`, so that a file of thousands of organizations is parsed a cache-sized piece at a
    /// time rather than into one tree larger than the processor's cache. One piece, the whole
    /// file, if it is small. Whether the pieces parse to what the whole file would is for the
    /// parser's caller to check: a cut inside a multi-line string or array leaves the piece
    /// before it unterminated, and tables split across pieces show as names in two of them.
    pub(crate) fn pieces(&self, size: usize) -> Vec<SourceFile> {
        const CUT: &str = "\n[org.";
        let text = self.source();
        let mut starts = vec![0];
        let mut from = size;
        while from < text.len() {
            let at = floor_char_boundary(text, from - 1);
            let Some(found) = text[at..].find(CUT) else {
                break;
            };
            let start = at + found + 1;
            starts.push(start);
            from = start + size;
        }
        starts.push(text.len());
        let base = self.range.start;
        starts
            .windows(2)
            .map(|w| SourceFile {
                path: self.path.clone(),
                text: self.text.clone(),
                line_starts: self.line_starts.clone(),
                range: base + w[0]..base + w[1],
            })
            .collect()
    }

    /// 1-based line and column (in characters) of a byte offset into
    /// [`SourceFile::source`].
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.saturating_add(self.range.start);
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

/// A problem in the specs, at a place in one file. Its texts (path, message, label, help) are
/// escaped when it is made, and the snippet's text when the errors are gathered: a name or a
/// value quoted in them reaches a terminal with its control characters escaped.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{path}:{line}:{column}: {message}")]
pub struct SpecError {
    /// The file's path as shown on a terminal (escaped).
    pub(crate) path: String,
    /// The file's path as it is, for JSON (whose own escaping keeps it one safe string).
    file: Arc<str>,
    pub line: usize,
    pub column: usize,
    pub(crate) message: String,
    /// None for a file that is not shown at all (not text): the message gives the place.
    #[source_code]
    source_code: Option<NamedSource<Arc<str>>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    pub help: Option<String>,
    /// The file's text, and whether the span is a secret written out (never to be quoted).
    text: Arc<str>,
    secret: bool,
}

impl SpecError {
    pub(crate) fn new(
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> SpecError {
        let (line, column) = file.line_col(span.start);
        let len = span.end.saturating_sub(span.start);
        let span = file.in_file(span);
        SpecError {
            path: escape::controls(&file.path).into_owned(),
            file: Arc::from(&*file.path),
            line,
            column,
            message: escaped(message.into()),
            source_code: Some(NamedSource::new(
                escape::controls(&file.path),
                file.text.clone(),
            )),
            span: Some(SourceSpan::new(span.start.into(), len)),
            label: escaped(label.into()),
            help: None,
            text: file.text.clone(),
            secret: false,
        }
    }

    /// A secret written out in the specs at `span`: the error points at it, and no snippet of
    /// the file (this one's or another error's) quotes it.
    pub(crate) fn literal_secret(
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> SpecError {
        SpecError {
            secret: true,
            ..SpecError::new(file, span, message, "literal secret")
        }
    }

    /// A problem with a file as a whole that must not be quoted (it is not text TOML can hold,
    /// and may be anything: an environment, a key): its place and no snippet.
    pub(crate) fn unquoted(
        path: Arc<str>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> SpecError {
        SpecError {
            path: escape::controls(&path).into_owned(),
            file: path.clone(),
            line,
            column,
            message: escaped(message.into()),
            source_code: None,
            span: None,
            label: String::new(),
            help: None,
            text: Arc::from(""),
            secret: false,
        }
    }

    #[must_use]
    pub(crate) fn with_help(mut self, help: impl Into<String>) -> SpecError {
        self.help = Some(escaped(help.into()));
        self
    }
}

impl SpecError {
    /// The problem as `validate --format json` lists it: `{"file", "line", "column", "code",
    /// "message", "help"}`, its texts escaped as on a terminal.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": &*self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code(),
            "message": self.message,
            "help": self.help,
        })
    }

    /// A short stable name for the kind of problem, for scripts that sort them. Read from how
    /// the problem was labelled where it was found (each check labels its own kind the same
    /// way); `invalid` for a kind not named here.
    pub fn code(&self) -> &'static str {
        if self.secret {
            return "literal-secret";
        }
        if self.span.is_none() {
            return "not-text";
        }
        match self.label.as_str() {
            "here" => "toml",
            "this name" => "invalid-name",
            "not a spec table" => "unknown-table",
            "unknown key" => "unknown-key",
            "not a provider type" => "unknown-provider-type",
            "no such provider" => "unknown-provider",
            "not an allowed host" => "host-not-allowed",
            "not HTTPS" => "not-https",
            "not a secret reference" | "expected a name or path" => "secret-reference",
            "again here" | "declared again here" => "duplicate",
            "same natural key" => "same-natural-key",
            "not an allowed value"
            | "invalid value"
            | "not a date"
            | "too large"
            | "out of range"
            | "not positive" => "invalid-value",
            "in this table" => "constraint",
            label if label.ends_with("is required here") || label.starts_with("this ") => {
                "missing-field"
            }
            label if label.starts_with("expected ") => "wrong-type",
            _ => "invalid",
        }
    }
}

/// `text` escaped for a terminal, reusing its allocation when there is nothing to escape.
fn escaped(text: String) -> String {
    match escape::controls(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(shown) => shown,
    }
}

/// Every problem found in the specs, in file order. Validation collects them all so that a user
/// fixes the specs in one pass.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error(
    "{} in the specs{}",
    plural(.errors.len() + .more, "problem"),
    if *.more > 0 { format!(" (the first {} shown)", .errors.len()) } else { String::new() }
)]
pub struct SpecErrors {
    #[related]
    pub errors: Vec<SpecError>,
    /// Problems found past the first [`MOST_SHOWN`], counted, not shown.
    pub more: usize,
}

/// The most problems a report shows: a small spec can hold thousands (one inline table of
/// unknown keys), and each quotes its line, so a report of all of them grew with the square
/// of the input (26 KB of spec gave 131 MB of errors). Fix these, and the next run shows more.
pub(crate) const MOST_SHOWN: usize = 100;

/// The longest line a snippet quotes: past it, the error gives its file, line and column
/// without the line (a 32 MiB line, quoted once per problem on it, would flood a CI log).
const LONGEST_QUOTED_LINE: usize = 2000;

impl SpecErrors {
    /// The errors in a stable order (by file, then position), with every secret written out in
    /// a file masked in all the snippets that quote that file: the message names the key, and
    /// the value stays out of terminals and CI logs.
    pub(crate) fn new(mut errors: Vec<SpecError>) -> SpecErrors {
        errors.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        let more = errors.len().saturating_sub(MOST_SHOWN);
        errors.truncate(MOST_SHOWN);
        for e in &mut errors {
            if let Some(span) = e.span
                && line_around(&e.text, span.offset()) > LONGEST_QUOTED_LINE
            {
                // The place stays (the message names it, and `code` reads it); no snippet.
                e.source_code = None;
            }
        }
        let mut secrets: std::collections::BTreeMap<String, Vec<Range<usize>>> =
            std::collections::BTreeMap::new();
        for e in errors.iter().filter(|e| e.secret) {
            let Some(span) = e.span else { continue };
            let start = span.offset();
            secrets
                .entry(e.path.clone())
                .or_default()
                .push(start..start + span.len());
        }
        let mut masked: std::collections::BTreeMap<String, Arc<str>> =
            std::collections::BTreeMap::new();
        for e in &mut errors {
            let Some(spans) = secrets.get(&e.path) else {
                continue;
            };
            if e.source_code.is_none() {
                continue; // nothing of the file is shown
            }
            let text = masked
                .entry(e.path.clone())
                .or_insert_with(|| mask(&e.text, spans).into())
                .clone();
            e.source_code = Some(NamedSource::new(e.path.clone(), text.clone()));
            e.text = text;
        }
        // Snippets quote the file as it is, raw bytes and all: each file's text is escaped
        // once, and each span moved to where its text went.
        let mut shown: std::collections::BTreeMap<String, Option<ShownSource>> =
            std::collections::BTreeMap::new();
        for e in &mut errors {
            let (Some(span), Some(_)) = (e.span, &e.source_code) else {
                continue; // nothing of the file is shown
            };
            let Some(source) = shown
                .entry(e.path.clone())
                .or_insert_with(|| ShownSource::of(&e.text))
            else {
                continue;
            };
            let start = source.moved(span.offset());
            let end = source.moved(span.offset() + span.len());
            e.span = Some(SourceSpan::new(start.into(), end - start));
            e.source_code = Some(NamedSource::new(e.path.clone(), source.text.clone()));
        }
        SpecErrors { errors, more }
    }
}

/// The length in bytes of the line of `text` that holds `offset`.
fn line_around(text: &str, offset: usize) -> usize {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let start = memchr::memrchr(b'\n', &bytes[..offset]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &bytes[offset..]).map_or(bytes.len(), |i| offset + i);
    end - start
}

/// A file's text as a snippet shows it: line breaks (and tabs, and the `\r` of a CRLF) kept,
/// every other character a terminal obeys escaped as [`escape::controls`] writes it.
struct ShownSource {
    text: Arc<str>,
    /// For each escaped character, its offset in the file and the bytes added up to and
    /// including it, in order: how far a span after it moves.
    added: Vec<(usize, usize)>,
}

impl ShownSource {
    /// `None` when the text has nothing to escape, the common case.
    fn of(text: &str) -> Option<ShownSource> {
        let bytes = text.as_bytes();
        let unsafe_at = |i: usize, c: char| {
            escape::is_unsafe(c)
                && !matches!(c, '\n' | '\t')
                && !(c == '\r' && bytes.get(i + 1) == Some(&b'\n'))
        };
        if !text.char_indices().any(|(i, c)| unsafe_at(i, c)) {
            return None;
        }
        let mut out = String::with_capacity(text.len() + 64);
        let mut added = Vec::new();
        let mut total = 0;
        for (i, c) in text.char_indices() {
            if unsafe_at(i, c) {
                let shown = escape::controls(c.encode_utf8(&mut [0; 4])).into_owned();
                total += shown.len() - c.len_utf8();
                added.push((i, total));
                out.push_str(&shown);
            } else {
                out.push(c);
            }
        }
        Some(ShownSource {
            text: out.into(),
            added,
        })
    }

    /// Where an offset of the file lies in the shown text.
    fn moved(&self, offset: usize) -> usize {
        let before = self.added.partition_point(|(at, _)| *at < offset);
        offset + before.checked_sub(1).map_or(0, |i| self.added[i].1)
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

/// The closest known name to an unknown one, for "did you mean" hints.
pub(crate) fn did_you_mean<'a>(
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
