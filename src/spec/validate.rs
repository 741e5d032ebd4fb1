//! The walk from parsed TOML (with byte spans) to validated values, driven by the schema.
//!
//! Errors are collected, never returned early: one run shows every problem. A value that fails
//! its own check is left out, and rules across fields only run on tables whose fields all passed,
//! so one mistake yields one message rather than a cascade.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{SourceFile, SpecError, SpecErrors, did_you_mean};
use super::schema::{
    BaseUrl, COMMON_INSTANCE_FIELDS, Field, Format, Kind, ORG_KEYS, ProviderSchema, Rule,
    STATE_FIELDS, provider_schema,
};
use super::{
    DEFAULT_MAX_CONCURRENCY, Endpoint, Limits, OrgSpec, Origin, ProviderInstance, Spec,
    StateSettings, attributes_digest,
};
use crate::model::packed::PackedTable;
use crate::model::{ProviderType, SecretRef, Table, Value};

type TomlTable<'i> = DeTable<'i>;

/// A table found in some file, with the span of its header key for messages about it as a whole.
struct Found<'a, 'i> {
    file: &'a SourceFile,
    name: String,
    key_span: Range<usize>,
    value: &'a Spanned<DeValue<'i>>,
}

#[derive(Default)]
struct Errors(Vec<SpecError>);

impl Errors {
    fn push(&mut self, e: SpecError) {
        self.0.push(e);
    }
}

/// A table declared under `[provider]`, `[org]` or `[state]`, by name and place.
struct Declared<'a> {
    file: &'a SourceFile,
    key_span: Range<usize>,
}

/// What the first pass keeps of one file (or piece of one): its provider and state tables (small,
/// kept whole, with the piece they were found in) and only the number of its organizations, so
/// that the parse tree of a file holding thousands of organizations is dropped as soon as the
/// file is read.
#[derive(Default)]
struct Outline<'a> {
    errors: Vec<SpecError>,
    providers: Vec<(String, Declared<'a>, Spanned<DeValue<'a>>)>,
    state: Option<(Declared<'a>, Spanned<DeValue<'a>>)>,
    orgs: usize,
}

impl<'a> Outline<'a> {
    /// Adds the outline of the next piece of the same file.
    fn extend(&mut self, piece: Outline<'a>) {
        self.errors.extend(piece.errors);
        self.providers.extend(piece.providers);
        // Pieces share no top-level key (see `PieceKeys`), so at most one has a `[state]`.
        self.state = self.state.take().or(piece.state);
        self.orgs += piece.orgs;
    }
}

/// Bytes of spec text parsed at a time. A parse tree is several times the size of its text; a
/// piece of this size keeps it within the processor's cache, where a file of a thousand
/// organizations parsed whole does not (the plan of 100,000 organizations in files of 1,000
/// took 7% longer at best and a fifth longer in the median; 4 to 32 KiB pieces did as well).
const PIECE_BYTES: usize = 16 * 1024;

pub(super) fn load(files: &[SourceFile]) -> Result<Spec, SpecErrors> {
    let pieces: Vec<Vec<SourceFile>> = files.iter().map(|f| f.pieces(PIECE_BYTES)).collect();
    // Most spec files hold organizations only. A look at their text says which may also declare
    // providers or `[state]`; only those are read ahead, so every other file is parsed once. If
    // a file turns out to declare a provider after all, load again, reading every file ahead.
    let ahead: Vec<bool> = files
        .iter()
        .map(|f| may_declare_providers(&f.text))
        .collect();
    match load_with(files, &pieces, &ahead) {
        Some(loaded) => loaded,
        None => load_with(files, &pieces, &vec![true; files.len()])
            .unwrap_or_else(|| Err(SpecErrors { errors: Vec::new() })),
    }
}

/// Whether a file's text may declare `[provider.*]` or `[state]` tables: a quick line scan that
/// may say yes wrongly (costing one more parse) but whose "no" is checked in pass 2.
fn may_declare_providers(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        let (rest, header) = match line.strip_prefix('[') {
            Some(r) => (r.trim_start_matches(['[', ' ', '\t']), true),
            None => (line, false),
        };
        let rest = rest.trim_start_matches(['"', '\'']);
        ["provider", "state"].iter().any(|word| {
            rest.strip_prefix(word).is_some_and(|after| {
                let after = after.trim_start_matches(['"', '\'']).trim_start();
                header
                    || after.starts_with('.')
                    || (after.starts_with('=') && after[1..].trim_start().starts_with('{'))
            })
        })
    })
}

/// One organization table as pass 2 found and checked it, in the piece of its file it is in.
struct CheckedOrg<'a> {
    name: String,
    declared: Declared<'a>,
    errors: Vec<SpecError>,
    org: Option<OrgSpec>,
}

/// Loads with the files marked in `ahead` read in a first pass. `None` if a file not read
/// ahead declares a provider or `[state]` after all.
fn load_with<'a>(
    files: &'a [SourceFile],
    pieces: &'a [Vec<SourceFile>],
    ahead: &[bool],
) -> Option<Result<Spec, SpecErrors>> {
    let mut errors = Errors::default();

    // Pass 1: the outlines of the files read ahead, in parallel.
    let outlines = in_parallel(files, |i, file| {
        ahead[i].then(|| {
            let mut whole = Outline::default();
            for piece in each_piece(file, &pieces[i], outline) {
                whole.extend(piece);
            }
            whole
        })
    });

    // Names are unique across the directory: the first declaration (in file order) wins.
    let mut instances: BTreeMap<String, (Declared<'_>, Spanned<DeValue<'_>>)> = BTreeMap::new();
    let mut state: Option<(Declared<'_>, Spanned<DeValue<'_>>)> = None;
    for outline in outlines.into_iter().flatten() {
        errors.0.extend(outline.errors);
        for (name, declared, value) in outline.providers {
            if let Some((first, _)) = instances.get(&name) {
                errors.push(declared_twice(&declared, "provider", &name, first));
                continue;
            }
            instances.insert(name, (declared, value));
        }
        if let Some((declared, value)) = outline.state {
            if let Some((first, _)) = &state {
                let (line, _) = first.file.line_col(first.key_span.start);
                errors.push(
                    SpecError::new(
                        declared.file,
                        declared.key_span,
                        "`[state]` is declared twice",
                        "again here",
                    )
                    .with_help(format!(
                        "it is first declared at {}:{line}",
                        first.file.path
                    )),
                );
            } else {
                state = Some((declared, value));
            }
        }
    }

    let mut providers = BTreeMap::new();
    let mut declared_types: BTreeMap<String, Option<ProviderType>> = BTreeMap::new();
    for (name, (declared, value)) in &instances {
        let found = Found {
            file: declared.file,
            name: name.clone(),
            key_span: declared.key_span.clone(),
            value,
        };
        declared_types.insert(name.clone(), declared_type(value));
        if let Some(instance) = check_instance(&mut errors, &found) {
            providers.insert(instance.name.clone(), instance);
        }
    }
    let state = state
        .map(|(declared, value)| {
            let found = Found {
                file: declared.file,
                name: "state".into(),
                key_span: declared.key_span.clone(),
                value: &value,
            };
            check_state(&mut errors, &found)
        })
        .unwrap_or_default();

    // Pass 2: parse each file (again, if it was read ahead) and check its organizations, in
    // parallel. A file not read ahead is outlined here, from the same parse.
    let context = OrgContext {
        declared_types: &declared_types,
        providers: &providers,
    };
    let checked = in_parallel(files, |i, file| {
        let mut file_errors = Vec::new();
        let mut orgs = Vec::new();
        for piece in each_piece(file, &pieces[i], |piece, parsed| {
            check_piece(piece, parsed, ahead[i], &context)
        }) {
            let (piece_errors, piece_orgs) = piece?;
            file_errors.extend(piece_errors);
            orgs.extend(piece_orgs);
        }
        Some((file_errors, orgs))
    });

    // Every declaration sorted by name: the declarations of one name end up side by side, the
    // first (in file order, the sort being stable) ahead. Files in name order are sorted
    // already, which the sort sees in one pass; no look-up per organization in a map of all.
    let mut per_file = Vec::with_capacity(files.len());
    for result in checked {
        let (file_errors, orgs) = result?;
        errors.0.extend(file_errors);
        per_file.push(orgs);
    }
    let mut declared: Vec<CheckedOrg<'_>> = Vec::with_capacity(per_file.iter().map(Vec::len).sum());
    for orgs in per_file {
        declared.extend(orgs);
    }
    declared.sort_by(|a, b| a.name.cmp(&b.name));
    let mut orgs = Vec::with_capacity(declared.len());
    let mut places = Vec::with_capacity(declared.len());
    let mut declared = declared.into_iter().peekable();
    while let Some(first) = declared.next() {
        while let Some(again) = declared.next_if(|c| c.name == first.name) {
            errors.push(declared_twice(
                &again.declared,
                "organization",
                &again.name,
                &first.declared,
            ));
        }
        errors.0.extend(first.errors);
        if let Some(org) = first.org {
            orgs.push((first.name, org));
            places.push(first.declared);
        }
    }
    natural_keys_unique(&mut errors, &orgs, &places);

    Some(if errors.0.is_empty() {
        Ok(Spec {
            providers,
            // In address order already: built in bulk, in one pass.
            orgs: orgs.into_iter().collect(),
            state,
        })
    } else {
        Err(SpecErrors::new(errors.0))
    })
}

/// Natural keys are unique per provider instance: two organizations with one key would be one
/// organization at the provider (adopted twice, or created twice where the provider allows
/// duplicates). Keys are already folded by each provider's case rule (`NaturalKey::new`), so
/// Commvault names that differ only in case collide here. One sort of indices, no look-up per
/// organization: cheap at a hundred thousand. `places[i]` is where `orgs[i]` is declared.
fn natural_keys_unique(errors: &mut Errors, orgs: &[(String, OrgSpec)], places: &[Declared<'_>]) {
    // Where a declaration is, comparable across files and pieces: the first in file order is
    // the one the others are reported against.
    let at = |i: usize| {
        let p = &places[i];
        (&p.file.path, p.file.in_file(p.key_span.clone()).start)
    };
    let mut order: Vec<usize> = (0..orgs.len().min(places.len())).collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (&orgs[a].1, &orgs[b].1);
        (&x.instance, &x.natural_key)
            .cmp(&(&y.instance, &y.natural_key))
            .then_with(|| at(a).cmp(&at(b)))
    });
    for group in order.chunk_by(|&a, &b| {
        let (x, y) = (&orgs[a].1, &orgs[b].1);
        x.instance == y.instance && x.natural_key == y.natural_key
    }) {
        let Some((&first, again)) = group.split_first() else {
            continue;
        };
        let (first_name, first_org) = &orgs[first];
        let first_place = &places[first];
        let (line, column) = first_place.file.line_col(first_place.key_span.start);
        let case_rule = if first_org.provider_type.capabilities().key_case_insensitive {
            format!(
                " (compared regardless of case, as {} does)",
                first_org.provider_type
            )
        } else {
            String::new()
        };
        for &i in again {
            let (name, _) = &orgs[i];
            let place = &places[i];
            errors.push(
                SpecError::new(
                    place.file,
                    place.key_span.clone(),
                    format!(
                        "organizations `{name}` and `{first_name}` on provider `{}` have the same natural key `{}`{case_rule}",
                        first_org.instance, first_org.natural_key
                    ),
                    "same natural key",
                )
                .with_help(format!(
                    "`{first_name}` is declared at {}:{line}:{column}; at the provider they would be one organization. Give each its own key, or keep one of them",
                    first_place.file.path
                )),
            );
        }
    }
}

/// Runs `work` on every file on all cores, returning results in file order.
fn in_parallel<'a, R, F>(files: &'a [SourceFile], work: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, &'a SourceFile) -> R + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads <= 1 || files.len() <= 1 {
        return files.iter().enumerate().map(|(i, f)| work(i, f)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(files.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        done.push((i, work(i, file)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Pass 2 for one piece of a file: its organizations checked, and (for a file not read ahead)
/// the problems with its layout. `None` if a file not read ahead declares a provider or
/// `[state]` after all.
fn check_piece<'a>(
    piece: &'a SourceFile,
    parsed: Result<&Spanned<TomlTable<'a>>, &toml::de::Error>,
    ahead: bool,
    context: &OrgContext<'_>,
) -> Option<(Vec<SpecError>, Vec<CheckedOrg<'a>>)> {
    let doc = match parsed {
        Ok(doc) => doc,
        // Reported by the outline, in either pass.
        Err(_) if ahead => return Some((Vec::new(), Vec::new())),
        Err(e) => return Some((outline(piece, Err(e)).errors, Vec::new())),
    };
    let outline = outline(piece, Ok(doc));
    if !ahead && (!outline.providers.is_empty() || outline.state.is_some()) {
        return None;
    }
    let piece_errors = if ahead { Vec::new() } else { outline.errors };
    let Some(DeValue::Table(tables)) = doc.get_ref().get("org").map(Spanned::get_ref) else {
        return Some((piece_errors, Vec::new()));
    };
    let mut orgs = Vec::with_capacity(outline.orgs);
    for (key, value) in tables {
        let name = key.get_ref().as_ref();
        if !valid_name(name) {
            continue; // reported by the outline
        }
        let mut org_errors = Errors::default();
        let found = Found {
            file: piece,
            name: name.to_string(),
            key_span: key.span(),
            value,
        };
        let org = check_org(&mut org_errors, &found, context);
        orgs.push(CheckedOrg {
            name: found.name,
            declared: Declared {
                file: piece,
                key_span: found.key_span,
            },
            errors: org_errors.0,
            org,
        });
    }
    Some((piece_errors, orgs))
}

/// Parses a file piece by piece (see [`SourceFile::pieces`]) and hands each piece with its tree
/// to `visit`. When the pieces can't stand for the whole file (one does not parse, or a table's
/// parts are in two of them), what they gave is dropped and the whole file is visited instead,
/// with its tree or its parse error: the result is always what one parse of the file means.
fn each_piece<'a, R>(
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
    seen: std::collections::HashSet<(bool, u64)>,
}

impl PieceKeys {
    /// Records the keys of the next piece: false if it shares one with an earlier piece, or
    /// writes `org` whole (a `[org]` header or `org = { ... }`, which no other piece may add to).
    fn add(&mut self, piece: &SourceFile, doc: &Spanned<TomlTable<'_>>) -> bool {
        use std::hash::BuildHasher as _;
        for (key, value) in doc.get_ref() {
            let name = key.get_ref().as_ref();
            if name != "org" {
                if !self.seen.insert((false, self.hasher.hash_one(name))) {
                    return false;
                }
                continue;
            }
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
                if !self.seen.insert((true, self.hasher.hash_one(name))) {
                    return false;
                }
            }
        }
        true
    }
}

/// Pass 1 for one file or piece: its outline, or its parse error.
fn outline<'a>(
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
            "provider" | "org" => {
                let Some(tables) = expect_table(&mut errors, file, name, value) else {
                    continue;
                };
                let what = if name == "provider" {
                    "provider"
                } else {
                    "organization"
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
                    if name == "provider" {
                        let declared = Declared {
                            file,
                            key_span: sub_key.span(),
                        };
                        out.providers.push((sub_name, declared, sub_value.clone()));
                    } else {
                        out.orgs += 1;
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
                e = match did_you_mean(other, ["provider", "org", "state"]) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(
                        "specs hold `[provider.NAME]`, `[org.NAME]` and `[state]` tables",
                    ),
                };
                errors.push(e);
            }
        }
    }
    out.errors.extend(errors.0);
    out
}

fn declared_twice(again: &Declared<'_>, what: &str, name: &str, first: &Declared<'_>) -> SpecError {
    let (line, _) = first.file.line_col(first.key_span.start);
    SpecError::new(
        again.file,
        again.key_span.clone(),
        format!("{what} `{name}` is declared twice"),
        "declared again here",
    )
    .with_help(format!(
        "it is first declared at {}:{line}; {what} names must be unique across the specs",
        first.file.path
    ))
}

/// The type a provider table names, if it names a known one (even if the table has other
/// problems), so that its organizations can still be checked.
fn declared_type(value: &Spanned<DeValue<'_>>) -> Option<ProviderType> {
    let DeValue::Table(t) = value.get_ref() else {
        return None;
    };
    let (_, v) = t.iter().find(|(k, _)| k.get_ref() == "type")?;
    ProviderType::from_name(v.get_ref().as_str()?)
}

/// What checking an organization needs to know about the provider instances.
struct OrgContext<'a> {
    declared_types: &'a BTreeMap<String, Option<ProviderType>>,
    providers: &'a BTreeMap<String, ProviderInstance>,
}

/// The longest address or provider instance name. Terraform-style names are short words; a
/// limit keeps plans, tables and state readable and bounds what every output has to show.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// The rule for addresses and provider instance names, as the help of its error states it.
const NAME_RULE: &str = "a name has at most 64 characters, all ASCII letters, digits, `_` and `-`, and must start with a letter or `_` (as in Terraform)";

/// Whether `name` may be an address (`[org.NAME]`) or a provider instance name
/// (`[provider.NAME]`): see [`NAME_RULE`].
fn valid_name(name: &str) -> bool {
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

fn expect_table<'a, 'i>(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    value: &'a Spanned<DeValue<'i>>,
) -> Option<&'a TomlTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            errors.push(SpecError::new(
                file,
                value.span(),
                format!("`{path}` must be a table, found {}", type_name(other)),
                "expected a table",
            ));
            None
        }
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn check_instance(errors: &mut Errors, found: &Found<'_, '_>) -> Option<ProviderInstance> {
    let file = found.file;
    let path = format!("provider.{}", found.name);
    let table = expect_table(errors, file, &path, found.value)?;

    let type_entry = table.iter().find(|(k, _)| k.get_ref() == "type");
    let Some((_, type_value)) = type_entry else {
        errors.push(
            SpecError::new(
                file,
                found.key_span.clone(),
                format!("provider `{}` has no `type`", found.name),
                "this provider",
            )
            .with_help(format!("add `type = \"...\"`, one of: {}", type_names())),
        );
        return None;
    };
    let provider_type = match type_value.get_ref().as_str() {
        Some(name) => match ProviderType::from_name(name) {
            Some(t) => t,
            None => {
                let mut e = SpecError::new(
                    file,
                    type_value.span(),
                    format!("unknown provider type `{name}`"),
                    "not a provider type",
                );
                e = match did_you_mean(name, ProviderType::ALL.iter().map(|t| t.name())) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(format!("the types are: {}", type_names())),
                };
                errors.push(e);
                return None;
            }
        },
        None => {
            errors.push(SpecError::new(
                file,
                type_value.span(),
                format!(
                    "`{path}.type` must be a string, found {}",
                    type_name(type_value.get_ref())
                ),
                "expected a string",
            ));
            return None;
        }
    };
    let schema = provider_schema(provider_type);

    let before = errors.0.len();
    let checked = check_table(
        errors,
        file,
        &path,
        &[COMMON_INSTANCE_FIELDS, schema.instance],
        table,
        found.key_span.clone(),
    );
    if errors.0.len() == before {
        if let BaseUrl::Required { why } = schema.base_url
            && !checked.contains_key("base_url")
        {
            errors.push(SpecError::new(
                file,
                found.key_span.clone(),
                format!("`{path}.base_url` is required for {provider_type}: {why}"),
                "in this table",
            ));
        }
        plain_http_to_loopback_only(errors, file, &path, schema, table);
        check_rules(
            errors,
            file,
            &path,
            schema.instance_rules,
            &checked,
            None,
            found.key_span.clone(),
        );
    }
    if errors.0.len() != before {
        return None;
    }

    let int = |key: &str| match checked.get(key) {
        Some(Value::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    };
    let requests_per_second = match checked.get("requests_per_second") {
        Some(Value::Float(x)) if *x > 0.0 && x.is_finite() => Some(*x),
        Some(_) => {
            let span = table
                .iter()
                .find(|(k, _)| k.get_ref() == "requests_per_second")
                .map_or(found.key_span.clone(), |(_, v)| v.span());
            errors.push(SpecError::new(
                file,
                span,
                format!("`{path}.requests_per_second` must be a positive number"),
                "not positive",
            ));
            return None;
        }
        None => None,
    };
    let limits = Limits {
        max_concurrency: int("max_concurrency").unwrap_or(DEFAULT_MAX_CONCURRENCY),
        requests_per_second,
        creates_per_day: int("creates_per_day").or(provider_type.capabilities().daily_quota),
        max_creates: int("max_creates"),
    };
    let default_base_url = match schema.base_url {
        BaseUrl::Default(url) => url,
        // Required, so declared: checked above.
        BaseUrl::Required { .. } => "",
    };
    let base_url = checked
        .get("base_url")
        .and_then(Value::as_str)
        .unwrap_or(default_base_url)
        .trim_end_matches('/')
        .to_string();
    let endpoints = endpoints(file, found, table, schema, &base_url);
    let settings = checked
        .into_iter()
        .filter(|(k, _)| !COMMON_INSTANCE_FIELDS.iter().any(|f| f.name == k))
        .collect();
    Some(ProviderInstance {
        name: found.name.clone(),
        provider_type,
        base_url,
        settings,
        limits,
        origin: origin(file, &found.key_span),
        endpoints,
    })
}

/// Plain `http://` sends the login's credentials in the clear: the clients refuse it except to
/// loopback (the sandbox), so `validate` refuses it too, for every URL setting of an instance
/// (`base_url`, Oracle's `store_url`), rather than letting `plan` be the first to say so.
fn plain_http_to_loopback_only(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    schema: &ProviderSchema,
    table: &TomlTable<'_>,
) {
    for field in COMMON_INSTANCE_FIELDS.iter().chain(schema.instance) {
        if !matches!(&field.kind, Kind::String(text) if text.format == Some(Format::Url)) {
            continue;
        }
        let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref() == field.name) else {
            continue;
        };
        let Some(url) = value.get_ref().as_str() else {
            continue;
        };
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        let loopback = parsed.host_str().is_some_and(super::endpoints::is_loopback);
        if parsed.scheme() == "http" && !loopback {
            errors.push(
                SpecError::new(
                    file,
                    value.span(),
                    format!(
                        "`{path}.{}` is plain HTTP (\"{url}\"): orgform sends credentials over HTTPS only",
                        field.name
                    ),
                    "not HTTPS",
                )
                .with_help("use https://; plain http:// is allowed to loopback addresses only (127.0.0.1, [::1], localhost)"),
            );
        }
    }
}

/// Every URL setting of an instance (any field of URL format: `base_url`, `store_url`), with the
/// span of its value in the whole file; `base_url` even when it is the vendor's default.
fn endpoints(
    file: &SourceFile,
    found: &Found<'_, '_>,
    table: &TomlTable<'_>,
    schema: &ProviderSchema,
    base_url: &str,
) -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for field in COMMON_INSTANCE_FIELDS.iter().chain(schema.instance) {
        let Kind::String(text) = &field.kind else {
            continue;
        };
        if text.format != Some(Format::Url) {
            continue;
        }
        let declared = table.iter().find(|(k, _)| k.get_ref() == field.name);
        let (url, span) = match declared {
            Some((_, value)) => match value.get_ref().as_str() {
                Some(url) => (url.trim_end_matches('/').to_string(), value.span()),
                None => continue,
            },
            None if field.name == "base_url" => (base_url.to_string(), found.key_span.clone()),
            None => continue,
        };
        endpoints.push(Endpoint {
            setting: field.name,
            url,
            span: file.in_file(span),
        });
    }
    endpoints
}

fn type_names() -> String {
    ProviderType::ALL
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn origin(file: &SourceFile, span: &Range<usize>) -> Origin {
    Origin {
        path: file.path.clone(),
        line: file.line_col(span.start).0,
    }
}

fn check_org(
    errors: &mut Errors,
    found: &Found<'_, '_>,
    context: &OrgContext<'_>,
) -> Option<OrgSpec> {
    let file = found.file;
    let path = format!("org.{}", found.name);
    let table = expect_table(errors, file, &path, found.value)?;

    let Some((_, provider_value)) = table.iter().find(|(k, _)| k.get_ref() == "provider") else {
        errors.push(
            SpecError::new(
                file,
                found.key_span.clone(),
                format!("organization `{}` has no `provider`", found.name),
                "this organization",
            )
            .with_help("add `provider = \"NAME\"`, naming a `[provider.NAME]` table"),
        );
        return None;
    };
    let Some(instance_name) = provider_value.get_ref().as_str() else {
        errors.push(SpecError::new(
            file,
            provider_value.span(),
            format!("`{path}.provider` must be a string naming a `[provider.NAME]` table"),
            "expected a string",
        ));
        return None;
    };
    let instance = context.providers.get(instance_name);
    // The type of the named provider, even if that table has problems of its own: the
    // organization's fields are still checked, so one pass shows every mistake.
    let provider_type = instance
        .map(|i| i.provider_type)
        .or_else(|| context.declared_types.get(instance_name).copied().flatten());
    let Some(provider_type) = provider_type else {
        if !context.declared_types.contains_key(instance_name) {
            let mut e = SpecError::new(
                file,
                provider_value.span(),
                format!(
                    "organization `{}` names provider `{instance_name}`, which is not declared",
                    found.name
                ),
                "no such provider",
            );
            e = match did_you_mean(
                instance_name,
                context.declared_types.keys().map(String::as_str),
            ) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help(format!("declare it with `[provider.{instance_name}]`")),
            };
            errors.push(e);
        }
        // A declared provider without a usable type has its own errors already.
        return None;
    };
    let schema = provider_schema(provider_type);

    let before = errors.0.len();
    let mut attrs = check_table(
        errors,
        file,
        &path,
        &[ORG_KEYS, schema.org],
        table,
        found.key_span.clone(),
    );
    // orgform's own key, checked above; what remains is the organization's declaration.
    attrs.remove("provider");
    if errors.0.len() == before {
        check_rules(
            errors,
            file,
            &path,
            schema.org_rules,
            &attrs,
            instance.map(|i| &i.settings),
            found.key_span.clone(),
        );
    }
    if errors.0.len() != before {
        return None;
    }
    Some(org_spec(schema, instance?, found, file, attrs))
}

fn org_spec(
    schema: &ProviderSchema,
    instance: &ProviderInstance,
    found: &Found<'_, '_>,
    file: &SourceFile,
    attrs: Table,
) -> OrgSpec {
    OrgSpec {
        address: found.name.clone(),
        instance: instance.name.clone(),
        provider_type: instance.provider_type,
        natural_key: (schema.natural_key)(&attrs, &instance.settings),
        digest: attributes_digest(&attrs),
        attrs: PackedTable::pack(&attrs),
        origin: origin(file, &found.key_span),
    }
}

fn check_state(errors: &mut Errors, found: &Found<'_, '_>) -> StateSettings {
    let Some(table) = expect_table(errors, found.file, "state", found.value) else {
        return StateSettings::default();
    };
    let checked = check_table(
        errors,
        found.file,
        "state",
        &[STATE_FIELDS],
        table,
        found.key_span.clone(),
    );
    let text = |k: &str| checked.get(k).and_then(Value::as_str).map(str::to_string);
    StateSettings {
        backend: text("backend"),
        path: text("path"),
        url: match checked.get("url") {
            Some(Value::Secret(r)) => Some(r.clone()),
            _ => None,
        },
        workspace: text("workspace"),
    }
}

/// Checks a table's keys against `fields` (several slices, searched in order).
fn check_table(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    fields: &[&'static [Field]],
    table: &TomlTable<'_>,
    table_span: Range<usize>,
) -> Table {
    let all = || fields.iter().flat_map(|f| f.iter());
    let mut out = Table::with_capacity(table.len());
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let Some(field) = all().find(|f| f.name == name) else {
            let mut e = SpecError::new(
                file,
                key.span(),
                format!("unknown key `{name}` in `{path}`"),
                "unknown key",
            );
            e = match did_you_mean(name, all().map(|f| f.name)) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help(format!(
                    "the keys here are: {}",
                    all()
                        .map(|f| format!("`{}`", f.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            errors.push(e);
            continue;
        };
        let field_path = format!("{path}.{name}");
        if let Some(v) = check_value(errors, file, &field_path, &field.kind, value) {
            out.insert(name.to_string(), v);
        }
    }
    for field in all().filter(|f| f.required) {
        if !table.iter().any(|(k, _)| k.get_ref() == field.name) {
            let mut e = SpecError::new(
                file,
                table_span.clone(),
                format!("missing required field `{path}.{}`", field.name),
                format!("`{}` is required here", field.name),
            );
            if !field.doc.is_empty() {
                e = e.with_help(field.doc);
            }
            errors.push(e);
        }
    }
    out
}

fn check_value(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    kind: &Kind,
    value: &Spanned<DeValue<'_>>,
) -> Option<Value> {
    let span = value.span();
    let wrong_type = |errors: &mut Errors, expected: &str| {
        errors.push(SpecError::new(
            file,
            span.clone(),
            format!(
                "`{path}` must be {expected}, found {}",
                type_name(value.get_ref())
            ),
            format!("expected {expected}"),
        ));
        None
    };
    match (kind, value.get_ref()) {
        (Kind::String(text), DeValue::String(s)) => {
            let s: &str = s;
            let mut problem = None;
            if let Some(min) = text.min_len
                && s.chars().count() < min
            {
                problem = Some(if min == 1 {
                    "must not be empty".to_string()
                } else {
                    format!("must be at least {min} characters long")
                });
            }
            if let Some(max) = text.max_len
                && s.chars().count() > max
            {
                problem = Some(format!(
                    "must be at most {max} characters long (it is {})",
                    s.chars().count()
                ));
            }
            if problem.is_none()
                && let Some(format) = text.format
                && let Err(expected) = format.check(s)
            {
                problem = Some(format!("must be {expected}"));
            }
            match problem {
                Some(p) => {
                    errors.push(SpecError::new(
                        file,
                        span,
                        format!("`{path}` {p}"),
                        "invalid value",
                    ));
                    None
                }
                None => Some(Value::String(s.to_string())),
            }
        }
        (Kind::String(text), DeValue::Datetime(d)) if text.format == Some(Format::Date) => {
            let s = d.to_string();
            match Format::Date.check(&s) {
                Ok(()) => Some(Value::String(s)),
                Err(expected) => {
                    errors.push(SpecError::new(
                        file,
                        span,
                        format!("`{path}`: {expected}"),
                        "not a date",
                    ));
                    None
                }
            }
        }
        (Kind::String(_), _) => wrong_type(errors, "a string"),
        (Kind::Integer { min, max }, DeValue::Integer(i)) => {
            let Ok(n) = i64::from_str_radix(i.as_str(), i.radix()) else {
                errors.push(SpecError::new(
                    file,
                    span,
                    format!("`{path}` is out of range"),
                    "too large",
                ));
                return None;
            };
            let below = min.is_some_and(|m| n < m);
            let above = max.is_some_and(|m| n > m);
            if below || above {
                let range = match (min, max) {
                    (Some(a), Some(b)) => format!("between {a} and {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => String::new(),
                };
                errors.push(SpecError::new(
                    file,
                    span,
                    format!("`{path}` must be {range}, found {n}"),
                    "out of range",
                ));
                return None;
            }
            Some(Value::Int(n))
        }
        (Kind::Integer { .. }, _) => wrong_type(errors, "an integer"),
        (Kind::Float, DeValue::Float(x)) => match x.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Some(Value::Float(x)),
            Err(_) => wrong_type(errors, "a number"),
        },
        (Kind::Float, DeValue::Integer(i)) => match i64::from_str_radix(i.as_str(), i.radix()) {
            #[allow(clippy::cast_precision_loss)] // limits are small numbers
            Ok(n) => Some(Value::Float(n as f64)),
            Err(_) => wrong_type(errors, "a number"),
        },
        (Kind::Float, _) => wrong_type(errors, "a number"),
        (Kind::Bool, DeValue::Boolean(b)) => Some(Value::Bool(*b)),
        (Kind::Bool, _) => wrong_type(errors, "a boolean (true or false)"),
        (Kind::Enum(allowed), DeValue::String(s)) => {
            let s: &str = s;
            if allowed.contains(&s) {
                Some(Value::String(s.to_string()))
            } else {
                let list = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut e = SpecError::new(
                    file,
                    span,
                    format!("`{path}` must be one of {list}, found `{s}`"),
                    "not an allowed value",
                );
                if let Some(m) = did_you_mean(s, allowed.iter().copied()) {
                    e = e.with_help(format!("did you mean `{m}`?"));
                }
                errors.push(e);
                None
            }
        }
        (Kind::Enum(_), _) => wrong_type(errors, "a string"),
        (Kind::IntEnum(allowed), DeValue::Integer(i)) => {
            match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if allowed.contains(&n) => Some(Value::Int(n)),
                _ => {
                    let list = allowed
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ");
                    errors.push(SpecError::new(
                        file,
                        span,
                        format!("`{path}` must be {list}, found {}", i.as_str()),
                        "not an allowed value",
                    ));
                    None
                }
            }
        }
        (Kind::IntEnum(_), _) => wrong_type(errors, "an integer"),
        (Kind::Secret, DeValue::Table(t)) => check_secret(errors, file, path, t, span),
        (Kind::Secret, DeValue::String(_) | DeValue::Integer(_)) => {
            errors.push(
                SpecError::literal_secret(
                    file,
                    span,
                    format!("`{path}` is a secret and must not be written in the specs"),
                )
                .with_help("refer to it instead: `{ env = \"NAME\" }` or `{ file = \"PATH\" }`"),
            );
            None
        }
        (Kind::Secret, _) => wrong_type(errors, "a secret reference like `{ env = \"NAME\" }`"),
        (Kind::Object(fields), DeValue::Table(t)) => Some(Value::Table(check_table(
            errors,
            file,
            path,
            &[fields],
            t,
            span,
        ))),
        (Kind::Object(_), _) => wrong_type(errors, "a table"),
        (Kind::Array(inner), DeValue::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match check_value(errors, file, &format!("{path}[{i}]"), inner, item) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            ok.then_some(Value::Array(out))
        }
        (Kind::Array(_), _) => wrong_type(errors, "an array"),
        (Kind::Map(inner), DeValue::Table(t)) => {
            let mut out = Table::with_capacity(t.len());
            let mut ok = true;
            for (k, v) in t {
                match check_value(errors, file, &format!("{path}.{}", k.get_ref()), inner, v) {
                    Some(v) => {
                        out.insert(k.get_ref().to_string(), v);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(Value::Table(out))
        }
        (Kind::Map(_), _) => wrong_type(errors, "a table"),
        (Kind::Any, v) => Some(any_value(v)),
    }
}

fn check_secret(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    table: &TomlTable<'_>,
    span: Range<usize>,
) -> Option<Value> {
    let mut entries = table.iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        errors.push(
            SpecError::new(
                file,
                span,
                format!("`{path}` must be exactly one of `env` or `file`"),
                "not a secret reference",
            )
            .with_help("write `{ env = \"NAME\" }` or `{ file = \"PATH\" }`"),
        );
        return None;
    };
    let Some(target) = value.get_ref().as_str().filter(|s| !s.is_empty()) else {
        errors.push(SpecError::new(
            file,
            value.span(),
            format!("`{path}.{}` must be a non-empty string", key.get_ref()),
            "expected a name or path",
        ));
        return None;
    };
    match key.get_ref().as_ref() {
        "env" => Some(Value::Secret(SecretRef::Env(target.to_string()))),
        "file" => Some(Value::Secret(SecretRef::File(target.to_string()))),
        other => {
            let mut e = SpecError::new(
                file,
                key.span(),
                format!("`{path}` has unknown key `{other}`: a secret is `env` or `file`"),
                "unknown key",
            );
            if let Some(m) = did_you_mean(other, ["env", "file"]) {
                e = e.with_help(format!("did you mean `{m}`?"));
            }
            errors.push(e);
            None
        }
    }
}

fn any_value(value: &DeValue<'_>) -> Value {
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or_else(|_| Value::String(i.as_str().to_string()), Value::Int),
        DeValue::Float(x) => x
            .as_str()
            .replace('_', "")
            .parse()
            .map_or_else(|_| Value::String(x.as_str().to_string()), Value::Float),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => {
            Value::Array(items.iter().map(|v| any_value(v.get_ref())).collect())
        }
        DeValue::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), any_value(v.get_ref())))
                .collect(),
        ),
    }
}

fn check_rules(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    rules: &[Rule],
    values: &Table,
    instance: Option<&Table>,
    span: Range<usize>,
) {
    let has = |p: &str| Value::Table(values.clone()).get_path(p).is_some();
    for rule in rules {
        match rule {
            Rule::Pair(a, b) => {
                if has(a) != has(b) {
                    let (set, missing) = if has(a) { (a, b) } else { (b, a) };
                    errors.push(
                        SpecError::new(
                            file,
                            span.clone(),
                            format!("`{path}.{set}` is set but `{path}.{missing}` is not"),
                            "in this table",
                        )
                        .with_help(format!("`{a}` and `{b}` go together: set both or neither")),
                    );
                }
            }
            Rule::AnyOf(keys) => {
                if !keys.iter().any(|k| has(k)) {
                    let list = keys
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" or ");
                    errors.push(SpecError::new(
                        file,
                        span.clone(),
                        format!("`{path}` needs {list}"),
                        "in this table",
                    ));
                }
            }
            Rule::Check(_) | Rule::WithInstance(_) => {
                let problems = match (rule, instance) {
                    (Rule::Check(check), _) => check(values),
                    (Rule::WithInstance(check), Some(instance)) => check(values, instance),
                    // An instance with problems of its own: those are reported already.
                    _ => Vec::new(),
                };
                for (field, message) in problems {
                    errors.push(SpecError::new(
                        file,
                        span.clone(),
                        format!("`{path}.{field}` {message}"),
                        "in this table",
                    ));
                }
            }
        }
    }
}
