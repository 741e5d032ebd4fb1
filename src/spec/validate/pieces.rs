//! Reading spec files for validation: on all cores, a file at a time, and a large file a piece
//! at a time (cut at `[org.` lines, or whole when the pieces could mean something else); and
//! pass 1's outline of each, its provider, template and `[state]` tables and the problems with
//! its top-level layout and names.
//!
//! Nothing here checks a value against the schema: that is [`super::values`].

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::values::expect_table;
use super::{Declared, Errors, TomlTable};
use crate::spec::diagnostic::{SourceFile, SpecError, did_you_mean};

/// What the first pass keeps of one file (or piece of one): its provider, template and state
/// tables (small, kept whole, with the piece they were found in) and only the number of its
/// organizations, so
/// that the parse tree of a file holding thousands of organizations is dropped as soon as the
/// file is read.
#[derive(Default)]
pub(super) struct Outline<'a> {
    pub(super) errors: Vec<SpecError>,
    pub(super) providers: Vec<(String, Declared<'a>, Spanned<DeValue<'a>>)>,
    /// `[template.NAME]` tables: read ahead like providers, so that every piece of every file
    /// sees them whichever piece declares them.
    pub(super) templates: Vec<(String, Declared<'a>, Spanned<DeValue<'a>>)>,
    pub(super) state: Option<(Declared<'a>, Spanned<DeValue<'a>>)>,
    pub(super) orgs: usize,
}

impl<'a> Outline<'a> {
    /// Adds the outline of the next piece of the same file.
    pub(super) fn extend(&mut self, piece: Outline<'a>) {
        self.errors.extend(piece.errors);
        self.providers.extend(piece.providers);
        self.templates.extend(piece.templates);
        // Pieces share no top-level key (see `PieceKeys`), so at most one has a `[state]`.
        self.state = self.state.take().or(piece.state);
        self.orgs += piece.orgs;
    }
}

/// Bytes of spec text parsed at a time. A parse tree is several times the size of its text; a
/// piece of this size keeps it within the processor's cache, where a file of a thousand
/// organizations parsed whole does not (the plan of 100,000 organizations in files of 1,000
/// took 7% longer at best and a fifth longer in the median; 4 to 32 KiB pieces did as well).
pub(super) const PIECE_BYTES: usize = 16 * 1024;

/// Whether a file's text may declare `[provider.*]`, `[template.*]` or `[state]` tables: a quick
/// line scan that may say yes wrongly (costing one more parse, and the file is never kept by
/// the spec cache) but whose "no" is checked in pass 2. A table header anywhere counts; a key
/// (`provider.p.type = ...`, `state = { ... }`) only before the first header, where it is a
/// top-level key: after one, `state = { code = "OK" }` is a NeonCRM address's field. Over
/// bytes, so that the spec cache can ask before the bytes are judged as text (only ASCII
/// matters here; a line that starts otherwise is not TOML that declares anything).
pub(crate) fn may_declare_providers(text: &[u8]) -> bool {
    // The lines up to the first header, one by one; after it only a header line can declare,
    // and it starts with `[`: only those are looked at, found a `[` at a time (a hundred
    // thousand organizations are 65 MB, asked about on every run).
    let line_end =
        |from: usize| memchr::memchr(b'\n', &text[from..]).map_or(text.len(), |n| from + n);
    let mut at = 0;
    while at < text.len() {
        let end = line_end(at);
        let (declares, header) = judge_line(&text[at..end], true);
        if declares {
            return true;
        }
        at = end + 1;
        if header {
            break;
        }
    }
    let Some(rest) = text.get(at..) else {
        return false;
    };
    memchr::memchr_iter(b'[', rest).any(|p| {
        let p = at + p;
        let start = memchr::memrchr(b'\n', &text[..p]).map_or(0, |n| n + 1);
        text[start..p].iter().all(|b| matches!(b, b' ' | b'\t'))
            && judge_line(&text[start..line_end(p)], false).0
    })
}

/// Whether one line may declare a provider, a template or `[state]` (see
/// [`may_declare_providers`]), and whether it is a table header; `top_level` while no header
/// came before it.
fn judge_line(line: &[u8], top_level: bool) -> (bool, bool) {
    let trim = |s: &[u8]| -> usize { s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count() };
    let line = &line[trim(line)..];
    let (rest, header) = match line.split_first() {
        Some((b'[', r)) => {
            let skip = r
                .iter()
                .take_while(|b| matches!(b, b'[' | b' ' | b'\t'))
                .count();
            (&r[skip..], true)
        }
        _ if top_level => (line, false),
        _ => return (false, false),
    };
    let quotes = |s: &[u8]| s.iter().take_while(|b| matches!(b, b'"' | b'\'')).count();
    let rest = &rest[quotes(rest)..];
    let declares = [&b"provider"[..], b"template", b"state"]
        .iter()
        .any(|word| {
            rest.strip_prefix(*word).is_some_and(|after| {
                let after = &after[quotes(after)..];
                let after = &after[trim(after)..];
                header
                    || after.first() == Some(&b'.')
                    || after
                        .strip_prefix(b"=")
                        .is_some_and(|value| value[trim(value)..].first() == Some(&b'{'))
            })
        });
    (declares, header)
}

/// Runs `work` on every file on all cores, returning results in file order.
pub(super) fn in_parallel<'a, R: Send>(
    files: &'a [SourceFile],
    work: impl Fn(usize, &'a SourceFile) -> R + Sync,
) -> Vec<R> {
    crate::parallel::each(files, work)
}

/// Parses a file piece by piece (see [`SourceFile::pieces`]) and hands each piece with its tree
/// to `visit`. When the pieces can't stand for the whole file (one does not parse, or a table's
/// parts are in two of them), what they gave is dropped and the whole file is visited instead,
/// with its tree or its parse error: the result is always what one parse of the file means.
pub(super) fn each_piece<'a, R>(
    file: &'a SourceFile,
    pieces: &'a [SourceFile],
    mut visit: impl FnMut(&'a SourceFile, Result<&Spanned<TomlTable<'a>>, &toml::de::Error>) -> R,
) -> Vec<R> {
    if pieces.len() > 1 {
        let mut keys = PieceKeys::default();
        let mut out = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let Ok(doc) = DeTable::parse(piece.source()) else {
                break;
            };
            if !keys.add(piece, &doc) {
                break;
            }
            out.push(visit(piece, Ok(&doc)));
        }
        if out.len() == pieces.len() {
            return out;
        }
    }
    vec![match DeTable::parse(file.source()) {
        Ok(doc) => visit(file, Ok(&doc)),
        Err(e) => visit(file, Err(&e)),
    }]
}

/// The top-level keys and organization names the pieces of one file have declared so far.
/// TOML lets one table be written in parts (`[org.a]`, and further down `[org.a.config]`), and
/// pieces parsed apart would take the parts for two tables; the pieces stand for the file only
/// if each key is in one of them. Names are kept as hashes: a collision costs a parse of the
/// whole file, never a wrong result.
#[derive(Default)]
struct PieceKeys {
    hasher: std::hash::RandomState,
    /// (0 for a top-level key, 1 for an organization, 2 for a template; the name's hash).
    seen: std::collections::HashSet<(u8, u64)>,
}

impl PieceKeys {
    /// Records the keys of the next piece: false if it shares one with an earlier piece, or
    /// writes `org` or `template` whole (a `[org]` header or `org = { ... }`, which no other
    /// piece may add to).
    fn add(&mut self, piece: &SourceFile, doc: &Spanned<TomlTable<'_>>) -> bool {
        use std::hash::BuildHasher as _;
        for (key, value) in doc.get_ref() {
            let name = key.get_ref().as_ref();
            let kind = match name {
                "org" => 1,
                "template" => 2,
                _ => {
                    if !self.seen.insert((0, self.hasher.hash_one(name))) {
                        return false;
                    }
                    continue;
                }
            };
            let DeValue::Table(orgs) = value.get_ref() else {
                return false;
            };
            // A table made by `[org.NAME]` headers or dotted keys has the span of the key `org`;
            // one written whole has the span of its header or its braces.
            let written_whole = piece
                .source()
                .get(value.span().start..)
                .is_none_or(|text| text.starts_with(['[', '{']));
            if written_whole {
                return false;
            }
            for (org, _) in orgs {
                let name = org.get_ref().as_ref();
                if !self.seen.insert((kind, self.hasher.hash_one(name))) {
                    return false;
                }
            }
        }
        true
    }
}

/// Pass 1 for one file or piece: its outline, or its parse error.
pub(super) fn outline<'a>(
    file: &'a SourceFile,
    parsed: Result<&Spanned<TomlTable<'a>>, &toml::de::Error>,
) -> Outline<'a> {
    match parsed {
        Ok(doc) => outline_doc(file, doc),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut out = Outline::default();
            out.errors.push(SpecError::new(
                file,
                span,
                format!("invalid TOML: {}", e.message().trim_end()),
                "here",
            ));
            out
        }
    }
}

/// The outline of a parsed file: its provider and state tables, its organizations' names and
/// the problems with its top-level layout.
fn outline_doc<'a>(file: &'a SourceFile, doc: &Spanned<TomlTable<'a>>) -> Outline<'a> {
    let mut out = Outline::default();
    let mut errors = Errors::default();
    for (key, value) in doc.get_ref() {
        let name = key.get_ref().as_ref();
        match name {
            "provider" | "org" | "template" => {
                let Some(tables) = expect_table(&mut errors, file, name, value) else {
                    continue;
                };
                let what = match name {
                    "provider" => "provider",
                    "template" => "template",
                    _ => "organization",
                };
                for (sub_key, sub_value) in tables {
                    let sub_name = sub_key.get_ref().to_string();
                    if !valid_name(&sub_name) {
                        errors.push(
                            SpecError::new(
                                file,
                                sub_key.span(),
                                format!("{} is not a valid {what} name", quoted_name(&sub_name)),
                                "this name",
                            )
                            .with_help(NAME_RULE),
                        );
                        continue;
                    }
                    let declared = Declared {
                        file,
                        key_span: sub_key.span(),
                    };
                    match name {
                        "provider" => out.providers.push((sub_name, declared, sub_value.clone())),
                        "template" => out.templates.push((sub_name, declared, sub_value.clone())),
                        _ => out.orgs += 1,
                    }
                }
            }
            "state" => {
                let declared = Declared {
                    file,
                    key_span: key.span(),
                };
                out.state = Some((declared, value.clone()));
            }
            other => {
                let mut e = SpecError::new(
                    file,
                    key.span(),
                    format!("unknown table `{other}`"),
                    "not a spec table",
                );
                e = match did_you_mean(other, ["provider", "org", "template", "state"]) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(
                        "specs hold `[provider.NAME]`, `[template.NAME]`, `[org.NAME]` and `[state]` tables",
                    ),
                };
                errors.push(e);
            }
        }
    }
    out.errors.extend(errors.0);
    out
}

/// The longest address or provider instance name. Terraform-style names are short words; a
/// limit keeps plans, tables and state readable and bounds what every output has to show.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// The rule for addresses, provider instance and template names, as the help of its error states it.
pub(crate) const NAME_RULE: &str = "a name has at most 64 characters, all ASCII letters, digits, `_` and `-`, and must start with a letter or `_` (as in Terraform)";

/// Whether `name` may be an address (`[org.NAME]`) or a provider instance name
/// (`[provider.NAME]`): see [`NAME_RULE`].
pub(crate) fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME_CHARS
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A name that broke the rule, for its message: escaped, and cut if long (the label points at
/// all of it).
fn quoted_name(name: &str) -> String {
    const SHOWN: usize = 40;
    let cut = name.char_indices().nth(SHOWN).map(|(i, _)| i);
    match cut {
        Some(i) => format!(
            "`{}…` ({} characters)",
            crate::escape::Shown(&name[..i]),
            name.chars().count()
        ),
        None => format!("`{}`", crate::escape::Shown(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::may_declare_providers;

    /// A header anywhere; a key only where it is top-level, before the first header.
    #[test]
    fn the_scan_sees_top_level_declarations_only() {
        for yes in [
            "[provider.p]\ntype = \"heron\"",
            "[org.a]\nx = 1\n[ \"template\" . t ]",
            "[[state]]",
            "provider.p.type = \"heron\"\n[org.a]",
            "state = { backend = \"file\" }",
            "'template' = { t = {} }",
        ] {
            assert!(may_declare_providers(yes.as_bytes()), "{yes}");
        }
        for no in [
            "[org.a]\nprovider = \"p\"\ntemplate = \"t\"",
            "[org.a.address]\nstate = { code = \"OK\" }",
            "[org.a]\nprovider.x = 1",
            "# [provider.p]",
        ] {
            assert!(!may_declare_providers(no.as_bytes()), "{no}");
        }
    }

    /// The line-by-line reading the scan replaced: every line looked at.
    fn line_by_line(text: &[u8]) -> bool {
        let mut top_level = true;
        text.split(|&b| b == b'\n').any(|line| {
            let (declares, header) = super::judge_line(line, top_level);
            top_level &= !header;
            declares
        })
    }

    /// The scan that looks only at lines starting with `[` after the first header answers as
    /// the reading of every line does, over every sequence of three lines from these.
    #[test]
    fn the_scan_answers_as_every_line_read() {
        let lines = [
            "[org.a]",
            "  [provider.p]",
            "provider = \"p\"",
            "x = [1]",
            "[[state]]",
            "state = { a = 1 }",
            "# [template.t]",
            "\t[ 'template' . t ]",
            "a = [",
            "[x]\r",
            "provider.p.type = 1",
            "",
            "x = 1 [provider]",
        ];
        for a in lines {
            for b in lines {
                for c in lines {
                    for text in [format!("{a}\n{b}\n{c}"), format!("{a}\n{b}\n{c}\n")] {
                        assert_eq!(
                            may_declare_providers(text.as_bytes()),
                            line_by_line(text.as_bytes()),
                            "{text:?}"
                        );
                    }
                }
            }
        }
    }
}
