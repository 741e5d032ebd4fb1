//! The walk from parsed TOML (with byte spans) to a validated [`Spec`], in two passes over the
//! files: pass 1 outlines the files that may declare providers, templates or `[state]` and
//! checks those tables; pass 2 checks every organization against them (an organization that
//! names a template is checked with the template's fields merged in, see [`values`]). Then what
//! only the whole directory can tell: names declared twice, natural keys shared.
//!
//! How files are read (in parallel, a piece at a time) is [`pieces`]; how a table is checked
//! against the schema is [`values`].
//!
//! Errors are collected, never returned early: one run shows every problem, in every file.

mod pieces;
mod values;

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::model::ProviderType;
use crate::spec::checked::{self, CheckedFile};
use crate::spec::diagnostic::{SourceFile, SpecError, SpecErrors};
use crate::spec::{Input, Loaded, NotLoaded, OrgSpec, Spec};

use pieces::{Outline, PIECE_BYTES, each_piece, in_parallel, may_declare_providers, outline};
// The address rule, for `state mv` to hold a new address to it too; the scan that tells which
// files a cache may keep.
pub(crate) use pieces::{NAME_RULE, may_declare_providers as may_declare_shared, valid_name};
use values::{
    OrgContext, Template, check_instance, check_org, check_state, check_template, declared_type,
};

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

/// A table declared under `[provider]`, `[template]`, `[org]` or `[state]`, by name and place.
struct Declared<'a> {
    file: &'a SourceFile,
    key_span: Range<usize>,
}

pub(super) fn load(files: &[SourceFile]) -> Result<Spec, SpecErrors> {
    match load_texts(files, Vec::new(), false) {
        Ok(loaded) => Ok(loaded.spec),
        Err(NotLoaded::Problems(errors)) => Err(errors),
        // Only with files checked before, and there are none.
        Err(NotLoaded::NeedsText) => Err(SpecErrors {
            errors: Vec::new(),
            more: 0,
        }),
    }
}

/// See [`Spec::load_inputs`].
pub(super) fn load_inputs(inputs: Vec<Input>, keep: bool) -> Result<Loaded, NotLoaded> {
    let mut texts = Vec::with_capacity(inputs.len());
    let mut checked = Vec::new();
    for input in inputs {
        match input {
            Input::Text(file) => texts.push(file),
            Input::Checked(file) => checked.push(file),
        }
    }
    load_texts(&texts, checked, keep)
}

/// Loads the `texts` with the organizations of the files `checked` before (which declare
/// nothing else). Any problem with files checked before among them is `NeedsText`: a problem is
/// told from the text of every file.
fn load_texts(
    texts: &[SourceFile],
    checked: Vec<CheckedFile>,
    keep: bool,
) -> Result<Loaded, NotLoaded> {
    let pieces: Vec<Vec<SourceFile>> = texts.iter().map(|f| f.pieces(PIECE_BYTES)).collect();
    // Most spec files hold organizations only. A look at their text says which may also declare
    // providers or `[state]`; only those are read ahead, so every other file is parsed once. If
    // a file turns out to declare a provider after all, load again, reading every file ahead.
    let ahead: Vec<bool> = texts
        .iter()
        // A piece's own text: a file checked in parts is scanned once in all.
        .map(|f| may_declare_providers(f.source().as_bytes()))
        .collect();
    // A file checked before stands in the cross-file checks by its organizations alone: its
    // place, an empty file, would only be quoted by an error, and an error is told from text.
    let any_checked = !checked.is_empty();
    let placeholders: Vec<SourceFile> = checked
        .iter()
        .map(|f| SourceFile::new(f.path.clone(), ""))
        .collect();
    let mut earlier = Vec::with_capacity(checked.iter().map(|f| f.orgs.len()).sum());
    for (file, placeholder) in checked.into_iter().zip(&placeholders) {
        earlier.extend(file.orgs.into_iter().map(|org| CheckedOrg {
            name: org.address.clone(),
            declared: Declared {
                file: placeholder,
                key_span: 0..0,
            },
            errors: Vec::new(),
            org: Some(org),
        }));
    }
    match load_with(texts, &pieces, &ahead, earlier, keep) {
        Some(Ok(loaded)) => Ok(loaded),
        _ if any_checked => Err(NotLoaded::NeedsText),
        Some(Err(errors)) => Err(NotLoaded::Problems(errors)),
        None => match load_with(texts, &pieces, &vec![true; texts.len()], Vec::new(), keep) {
            Some(Ok(loaded)) => Ok(loaded),
            Some(Err(errors)) => Err(NotLoaded::Problems(errors)),
            None => Err(NotLoaded::Problems(SpecErrors {
                errors: Vec::new(),
                more: 0,
            })),
        },
    }
}

/// One organization table as pass 2 found and checked it, in the piece of its file it is in.
struct CheckedOrg<'a> {
    name: String,
    declared: Declared<'a>,
    errors: Vec<SpecError>,
    org: Option<OrgSpec>,
}

/// Loads with the files marked in `ahead` read in a first pass, and the organizations of files
/// checked before (`earlier`). `None` if a file not read ahead declares a provider or `[state]`
/// after all. With `keep`, each file not read ahead whose organizations all passed is encoded
/// for a cache to keep ([`Loaded::checked`]).
fn load_with<'a>(
    files: &'a [SourceFile],
    pieces: &'a [Vec<SourceFile>],
    ahead: &[bool],
    earlier: Vec<CheckedOrg<'a>>,
    keep: bool,
) -> Option<Result<Loaded, SpecErrors>> {
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
    let mut templates: BTreeMap<String, (Declared<'_>, Spanned<DeValue<'_>>)> = BTreeMap::new();
    let mut state: Option<(Declared<'_>, Spanned<DeValue<'_>>)> = None;
    for outline in outlines.into_iter().flatten() {
        errors.0.extend(outline.errors);
        for (name, declared, value) in outline.templates {
            if let Some((first, _)) = templates.get(&name) {
                errors.push(declared_twice(&declared, "template", &name, first));
                continue;
            }
            templates.insert(name, (declared, value));
        }
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

    // Templates are checked once here for what they are alone (a table, a provider that
    // exists); their fields are checked with each organization that names them, against the
    // schema of that organization's provider.
    let templates: BTreeMap<String, Template<'_>> = templates
        .iter()
        .map(|(name, (declared, value))| {
            let found = Found {
                file: declared.file,
                name: name.clone(),
                key_span: declared.key_span.clone(),
                value,
            };
            let template = check_template(&mut errors, found, &declared_types);
            (name.clone(), template)
        })
        .collect();

    // Pass 2: parse each file (again, if it was read ahead) and check its organizations, in
    // parallel. A file not read ahead is outlined here, from the same parse.
    let context = OrgContext {
        declared_types: &declared_types,
        providers: &providers,
        templates: &templates,
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
        // What a cache may keep: a file of organizations only, every one of them valid (the
        // whole load may still fail, and then nothing is kept).
        let keepable = keep
            && !ahead[i]
            && file_errors.is_empty()
            && orgs.iter().all(|c| c.errors.is_empty() && c.org.is_some());
        let encoded = keepable.then(|| {
            let valid: Vec<&OrgSpec> = orgs.iter().filter_map(|c| c.org.as_ref()).collect();
            checked::encode(valid.into_iter())
        });
        Some((file_errors, orgs, encoded))
    });

    // Every declaration sorted by name: the declarations of one name end up side by side, the
    // first (in file order, the sort being stable) ahead. Files in name order are sorted
    // already, which the sort sees in one pass; no look-up per organization in a map of all.
    let mut per_file = Vec::with_capacity(files.len());
    let mut encoded = Vec::with_capacity(files.len());
    for result in checked {
        let (file_errors, orgs, file_encoded) = result?;
        errors.0.extend(file_errors);
        per_file.push(orgs);
        encoded.push(file_encoded);
    }
    let mut declared: Vec<CheckedOrg<'_>> =
        Vec::with_capacity(per_file.iter().map(Vec::len).sum::<usize>() + earlier.len());
    for orgs in per_file {
        declared.extend(orgs);
    }
    // After the files read now: the first declaration of a name is only told apart in an
    // error, and an error is told again from every file's text.
    declared.extend(earlier);
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
    once_each(&mut errors);

    Some(if errors.0.is_empty() {
        Ok(Loaded {
            spec: Spec {
                providers,
                // In address order already: built in bulk, in one pass.
                orgs: orgs.into_iter().collect(),
                state,
            },
            checked: encoded,
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
    // Most specs have no shared key: one pass of hashing says so, cheaper than the sort below
    // (whose comparisons were a tenth of a load read back from the spec cache).
    let mut seen = std::collections::HashSet::with_capacity(orgs.len());
    if orgs
        .iter()
        .all(|(_, org)| seen.insert((&org.instance, &org.natural_key)))
    {
        return;
    }
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
    if !ahead
        && (!outline.providers.is_empty()
            || !outline.templates.is_empty()
            || outline.state.is_some())
    {
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

/// Drops an error already reported at the same place with the same message: a mistake in a
/// template is found again with every organization that takes its fields, and is shown once
/// (with the first organization it was found with).
fn once_each(errors: &mut Errors) {
    let mut seen = std::collections::HashSet::new();
    errors
        .0
        .retain(|e| seen.insert((e.path.clone(), e.line, e.column, e.message.clone())));
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
