//! Escaping for display: what a spec, a state file or a provider says may hold bytes that a
//! terminal obeys (ESC sequences that clear the screen or retitle the window, BEL, a carriage
//! return or line break that forges a plan line, C1 controls, the bidirectional overrides of
//! "Trojan Source"). Values arrive decoded (TOML's `"\u001b"` is one ESC), so they are escaped
//! where they are rendered, by these functions, and never on the raw file.
//!
//! Pure and dependency-free, so that `spec` (diagnostics) and `output` (everything else) share
//! it. The common case, a value with nothing to escape, borrows and allocates nothing.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` must not reach a terminal raw: every C0 control (line break and tab included:
/// inside a value they forge lines and columns), DEL, every C1 control, Unicode's line and
/// paragraph separators (line breaks to a browser showing a CI log), and every bidirectional
/// control (Unicode's `Bidi_Control`: the embeddings, overrides, isolates and the three marks)
/// that reorders what a reader sees.
pub(crate) fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// Whether `text` may hold an unsafe character other than those `kept`, by its bytes: the C0
/// controls and DEL are single bytes, C1 controls are encoded from 0xC2, the Arabic letter mark
/// from 0xD8, and the other bidirectional controls and the separators from 0xE2. A byte loop is several times faster than decoding characters, and plans
/// of a hundred thousand organizations pass through here whole; a possible hit is confirmed
/// character by character.
fn may_hold_unsafe(text: &str, kept: impl Fn(char) -> bool) -> bool {
    let suspect = text
        .bytes()
        .any(|b| (b < 0x20 && !kept(char::from(b))) || matches!(b, 0x7f | 0xc2 | 0xd8 | 0xe2));
    suspect && text.chars().any(|c| is_unsafe(c) && !kept(c))
}

/// Writes the escape of one unsafe character: `\n`, `\r`, `\t`, or `\u{1b}` as Rust writes it.
fn write_escape(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        _ => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// `text` with every unsafe character escaped (`\n`, `\t`, `\u{1b}`), for one value shown on
/// a terminal, in a log line or in an error message. Borrowed when there is nothing to escape.
pub(crate) fn controls(text: &str) -> Cow<'_, str> {
    if !may_hold_unsafe(text, |_| false) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A value that displays escaped (see [`controls`]), for `format!` arguments: nothing is
/// allocated, and its width is that of the escaped text.
pub(crate) struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| is_unsafe(*c)) {
            f.write_str(&rest[..at])?;
            write_escape(f, c)?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// A path that displays escaped, as [`Shown`] does a value: a file name is text whoever made
/// the file chose (a pull request's spec file, a state path), and may hold a line break.
pub(crate) struct ShownPath<'a>(pub &'a std::path::Path);

impl fmt::Display for ShownPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.to_str() {
            Some(text) => Shown(text).fmt(f),
            None => Shown(&self.0.to_string_lossy()).fmt(f),
        }
    }
}

/// Characters of `text` once escaped: what it takes on a terminal, for alignment.
pub(crate) fn shown_width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if !is_unsafe(c) {
                1
            } else if matches!(c, '\n' | '\r' | '\t') {
                2
            } else {
                // `\u{` + hex digits + `}`
                4 + (u32::from(c).max(1).ilog(16) as usize + 1)
            }
        })
        .sum()
}

/// Text orgform composed, with its own line breaks kept and every other unsafe
/// character escaped: the last guard before stdout or stderr, for what a value-level escape
/// missed. With `keep_colour`, SGR sequences (`ESC [ digits ; ... m`, colours and bold, which
/// neither move the cursor nor talk to the terminal) are kept too, for a coloured error report.
pub(crate) fn keeping_lines(text: &str, keep_colour: bool) -> Cow<'_, str> {
    escape_except(text, true, keep_colour)
}

/// Like [`keeping_lines`], for text that must stay one line (a log line without its final line
/// break): line breaks and tabs are escaped too.
pub(crate) fn one_line(text: &str, keep_colour: bool) -> Cow<'_, str> {
    escape_except(text, false, keep_colour)
}

fn escape_except(text: &str, keep_lines: bool, keep_colour: bool) -> Cow<'_, str> {
    // Tabs are escaped too: orgform's own text aligns with spaces, so a tab is a value's.
    let kept = |c: char| keep_lines && c == '\n';
    if !may_hold_unsafe(text, kept) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some((at, c)) = rest
        .char_indices()
        .find(|(_, c)| is_unsafe(*c) && !kept(*c))
    {
        out.push_str(&rest[..at]);
        let after = &rest[at + c.len_utf8()..];
        if keep_colour
            && c == '\u{1b}'
            && let Some(len) = sgr_len(after)
        {
            out.push(c);
            out.push_str(&after[..len]);
            rest = &after[len..];
            continue;
        }
        let _ = write_escape(&mut out, c);
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The length of `[` digits/semicolons `m` at the start of `text`, if that is what it holds.
fn sgr_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix('[')?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(params + 2)
}

/// JSON text as serde_json wrote it, with the unsafe characters it leaves raw (DEL, C1 controls,
/// bidirectional controls; it escapes C0 itself) written as `\uXXXX`: the same JSON value,
/// safe to print. They can only stand inside strings, where `\uXXXX` means the same character.
pub(crate) fn json(text: String) -> String {
    // Structure (line breaks, indentation) is kept: only what sits inside strings counts.
    if !may_hold_unsafe(&text, |c| matches!(c, '\n' | '\t' | '\r')) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // serde_json never writes a raw line break inside a string; its own (pretty output)
        // are structure, and stay.
        if is_unsafe(c) && !matches!(c, '\n' | '\t' | '\r') {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_obeys_and_borrows_the_rest() {
        assert!(matches!(controls("Acme Corp é 漢字"), Cow::Borrowed(_)));
        assert_eq!(
            controls("a\u{1b}]0;t\u{7}\n\t\r\u{7f}\u{9b}\u{202e}\u{2066}\u{200f}\0"),
            "a\\u{1b}]0;t\\u{7}\\n\\t\\r\\u{7f}\\u{9b}\\u{202e}\\u{2066}\\u{200f}\\u{0}"
        );
        // Each of Unicode's twelve `Bidi_Control` characters, and the two separators.
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(controls(&text), format!("a\\u{{{:x}}}b", u32::from(c)));
            assert!(!json(format!("\"{text}\"")).contains(c));
            assert!(!one_line(&text, false).contains(c));
        }
        assert_eq!(one_line("a\tb\nc", false), "a\\tb\\nc");
        let hostile = "x\u{1b}[2J\ny\u{202e}";
        assert_eq!(Shown(hostile).to_string(), controls(hostile));
        assert_eq!(shown_width(hostile), controls(hostile).chars().count());
        assert_eq!(
            shown_width("\0\u{9b}\u{202e}"),
            "\\u{0}\\u{9b}\\u{202e}".len()
        );
    }

    #[test]
    fn the_last_guard_keeps_lines_and_colours_only() {
        assert!(matches!(keeping_lines("a\nb", false), Cow::Borrowed(_)));
        assert_eq!(keeping_lines("a\n\tb", false), "a\n\\tb");
        assert_eq!(
            keeping_lines("\u{1b}[31mred\u{1b}[0m\r", true),
            "\u{1b}[31mred\u{1b}[0m\\r"
        );
        assert_eq!(keeping_lines("\u{1b}[31m", false), "\\u{1b}[31m");
        assert_eq!(
            keeping_lines("\u{1b}[2J\u{1b}]0;x\u{7}", true),
            "\\u{1b}[2J\\u{1b}]0;x\\u{7}"
        );
    }

    #[test]
    fn json_stays_the_same_value() {
        let value = serde_json::json!({"k\u{9b}": "a\u{202e}b\u{7f}\u{1b}\n"});
        let text = json(serde_json::to_string_pretty(&value).unwrap_or_default());
        assert!(
            !text.contains(['\u{9b}', '\u{202e}', '\u{7f}', '\u{1b}']),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, value);
    }
}
