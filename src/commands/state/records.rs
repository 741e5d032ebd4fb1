//! The pure half of `state list`, `state show` and `state mv`: which addresses a pattern
//! picks, how a record is rendered (text, JSON, markdown), and what the specs say about a move.
//! No I/O here: `state.rs` reads and writes the store, and hands these strings to `output`.
//!
//! Everything a state holds is shown escaped: a state file is input like any other, and may
//! hold any character in an address, a key or a detail.

use std::fmt::Write as _;

use serde::Serialize;

use crate::escape::{self, Shown};
use crate::model::Address;
use crate::output::md_code;
use crate::plan::target_matches;
use crate::spec::Spec;
use crate::state::{Attributes, Record, RecordError, State};
use crate::time;

/// The version of the JSON documents `state list` and `state show` print; a change that
/// removes or renames a key makes the next one.
const FORMAT_VERSION: u32 = 1;

/// The addresses `patterns` pick from `state` (all of them with no pattern), sorted, and the
/// patterns that picked none.
pub(super) fn pick<'s, 'p>(
    state: &'s State,
    patterns: &'p [String],
) -> (Vec<(&'s Address, &'s Record)>, Vec<&'p str>) {
    if patterns.is_empty() {
        return (state.orgs.iter().collect(), Vec::new());
    }
    let picked = state
        .orgs
        .iter()
        .filter(|(address, _)| patterns.iter().any(|p| target_matches(p, address)))
        .collect();
    let unmatched = patterns
        .iter()
        .filter(|p| !state.orgs.keys().any(|a| target_matches(p, a)))
        .map(String::as_str)
        .collect();
    (picked, unmatched)
}

/// One line per address, as `terraform state list` prints them: for `xargs` and `grep`.
pub(super) fn list_text(picked: &[(&Address, &Record)]) -> String {
    let mut out = String::new();
    for (address, _) in picked {
        let _ = writeln!(out, "{}", Shown(address));
    }
    out
}

#[derive(Serialize)]
struct ListDocument<'a> {
    format_version: u32,
    lineage: &'a str,
    serial: u64,
    addresses: Vec<ListEntry<'a>>,
}

#[derive(Serialize)]
struct ListEntry<'a> {
    address: &'a str,
    provider: &'a str,
    provider_type: &'static str,
    status: &'static str,
    remote_id: Option<&'a str>,
}

/// The list as one JSON document (see the help of `state list`).
pub(super) fn list_json(state: &State, picked: &[(&Address, &Record)]) -> String {
    let document = ListDocument {
        format_version: FORMAT_VERSION,
        lineage: &state.lineage,
        serial: state.serial,
        addresses: picked
            .iter()
            .map(|(address, r)| ListEntry {
                address,
                provider: &r.provider,
                provider_type: r.provider_type.name(),
                status: r.status.name(),
                remote_id: r.remote_id.as_deref(),
            })
            .collect(),
    };
    escape::json(serde_json::to_string_pretty(&document).unwrap_or_default())
}

/// The list as a markdown table, every value through [`md_code`].
pub(super) fn list_markdown(picked: &[(&Address, &Record)]) -> String {
    let mut out =
        String::from("| address | provider | status | remote id |\n| --- | --- | --- | --- |\n");
    for (address, r) in picked {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md_code(address),
            md_code(&r.provider),
            r.status.name(),
            r.remote_id
                .as_deref()
                .map_or_else(|| "-".to_string(), md_code)
        );
    }
    out
}

/// The labelled values of a record, in the order every format shows them; `None` for a value
/// not known (no remote id yet, no error).
fn fields(address: &str, r: &Record) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("address", Some(address.to_string())),
        ("provider", Some(r.provider.clone())),
        ("provider type", Some(r.provider_type.name().to_string())),
        ("natural key", Some(r.natural_key.0.clone())),
        ("status", Some(r.status.name().to_string())),
        ("remote id", r.remote_id.clone()),
        ("create sent", r.attempted_at.map(time::format)),
        ("updated", Some(time::format(r.updated_at))),
        ("digest", Some(r.digest.clone())),
        (
            "error",
            r.error
                .as_ref()
                .map(|e| format!("{}: {}", e.code, e.message)),
        ),
    ]
}

/// The width of the label column of `state show`.
const LABEL: usize = 15;

/// One record as `label  value` lines, then its provider details and declared attributes.
pub(super) fn show_text(address: &str, r: &Record) -> String {
    let mut out = String::new();
    for (label, value) in fields(address, r) {
        let _ = writeln!(
            out,
            "{label:<LABEL$}{}",
            value.as_deref().map_or(Shown("-"), Shown)
        );
    }
    for (key, value) in &r.detail {
        let _ = writeln!(out, "{:<LABEL$}{} = {}", "detail", Shown(key), Shown(value));
    }
    let attributes = pretty(&r.attributes);
    let _ = writeln!(out, "attributes");
    for line in attributes.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// Declared attributes as indented JSON, safe to print.
fn pretty(attributes: &Attributes) -> String {
    escape::json(serde_json::to_string_pretty(&attributes.to_value()).unwrap_or_default())
}

#[derive(Serialize)]
struct ShowDocument<'a> {
    format_version: u32,
    lineage: &'a str,
    serial: u64,
    address: &'a str,
    provider: &'a str,
    provider_type: &'static str,
    natural_key: &'a str,
    status: &'static str,
    remote_id: Option<&'a str>,
    create_sent_at: Option<String>,
    updated_at: String,
    digest: &'a str,
    error: Option<&'a RecordError>,
    detail: &'a crate::state::Detail,
    attributes: &'a Attributes,
}

/// One record as a JSON document (see the help of `state show`).
pub(super) fn show_json(state: &State, address: &str, r: &Record) -> String {
    let document = ShowDocument {
        format_version: FORMAT_VERSION,
        lineage: &state.lineage,
        serial: state.serial,
        address,
        provider: &r.provider,
        provider_type: r.provider_type.name(),
        natural_key: &r.natural_key.0,
        status: r.status.name(),
        remote_id: r.remote_id.as_deref(),
        create_sent_at: r.attempted_at.map(time::format),
        updated_at: time::format(r.updated_at),
        digest: &r.digest,
        error: r.error.as_deref(),
        detail: &r.detail,
        attributes: &r.attributes,
    };
    escape::json(serde_json::to_string_pretty(&document).unwrap_or_default())
}

/// One record as a markdown table, every value through [`md_code`].
pub(super) fn show_markdown(address: &str, r: &Record) -> String {
    let mut out = String::from("| field | value |\n| --- | --- |\n");
    for (label, value) in fields(address, r) {
        let _ = writeln!(
            out,
            "| {label} | {} |",
            value.as_deref().map_or_else(|| "-".to_string(), md_code)
        );
    }
    for (key, value) in &r.detail {
        let _ = writeln!(out, "| detail {} | {} |", md_code(key), md_code(value));
    }
    let compact = serde_json::to_string(&r.attributes.to_value()).unwrap_or_default();
    let _ = writeln!(out, "| attributes | {} |", md_code(&compact));
    out
}

/// What the specs say about recording `record` under `new`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Declared {
    /// `[org.NEW]` declares this very organization: same instance, same natural key.
    AsNew,
    /// `[org.NEW]` declares another organization; the move would make state lie.
    Otherwise {
        instance: String,
        natural_key: String,
        origin: String,
        elsewhere: Option<Elsewhere>,
    },
    /// NEW is not declared.
    NotAsNew { elsewhere: Option<Elsewhere> },
}

/// The address the specs declare the moved organization under (same instance, same natural
/// key), and where.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Elsewhere {
    pub(super) address: Address,
    pub(super) origin: String,
}

/// Compares a record about to be moved to `new` with what the specs declare.
pub(super) fn declared(spec: &Spec, record: &Record, new: &str) -> Declared {
    let elsewhere = || {
        spec.orgs
            .values()
            .find(|o| o.instance == record.provider && o.natural_key == record.natural_key)
            .map(|o| Elsewhere {
                address: o.address.clone(),
                origin: o.origin.to_string(),
            })
    };
    match spec.orgs.get(new) {
        Some(org) if org.instance == record.provider && org.natural_key == record.natural_key => {
            Declared::AsNew
        }
        Some(org) => Declared::Otherwise {
            instance: org.instance.clone(),
            natural_key: org.natural_key.0.clone(),
            origin: org.origin.to_string(),
            elsewhere: elsewhere(),
        },
        None => Declared::NotAsNew {
            elsewhere: elsewhere(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Declared, declared, list_json, list_markdown, list_text, show_json, show_text,
        target_matches,
    };
    use crate::model::{NaturalKey, ProviderType};
    use crate::state::{Attributes, Record, State, Status};

    /// A record whose every text holds what a terminal obeys.
    fn hostile() -> (String, Record) {
        let bad = "x\u{1b}]0;owned\u{7}\n\u{202e}";
        let record = Record {
            provider: bad.into(),
            provider_type: ProviderType::Heron,
            remote_id: Some(bad.into()),
            natural_key: NaturalKey(bad.into()),
            digest: bad.into(),
            status: Status::Created,
            attributes: Attributes::from_value(&serde_json::json!({ bad: bad })),
            attempted_at: None,
            updated_at: 0,
            error: None,
            detail: [(bad.to_string(), bad.to_string())].into(),
        };
        (bad.to_string(), record)
    }

    #[test]
    fn nothing_a_state_holds_reaches_the_terminal_raw() {
        let (address, record) = hostile();
        let mut state = State::new("lineage".into());
        state.orgs.insert(address.clone(), record.clone());
        let picked: Vec<_> = state.orgs.iter().collect();
        for shown in [
            list_text(&picked),
            list_json(&state, &picked),
            list_markdown(&picked),
            show_text(&address, &record),
            show_json(&state, &address, &record),
        ] {
            assert!(!shown.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{shown}");
        }
        assert_eq!(list_text(&picked), "x\\u{1b}]0;owned\\u{7}\\n\\u{202e}\n");
    }

    /// `[org.a]` and `[org.b]` on one Heron instance, and the record of an organization
    /// `key` on it.
    fn spec_and_record(key: &str) -> (crate::spec::Spec, Record) {
        let mut text = String::from(
            "[provider.h]\ntype = \"heron\"\nbase_url = \"https://api.heron.example\"\napi_key = { env = \"K\" }\n",
        );
        for name in ["a", "b"] {
            text.push_str(&format!(
                "\n[org.{name}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{name}.example.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n"
            ));
        }
        let spec = crate::spec::Spec::load(&[crate::spec::SourceFile::new("orgs.toml", text)])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let declared = &spec.orgs["a"];
        let mut record = hostile().1;
        record.provider = "h".into();
        record.natural_key = NaturalKey(declared.natural_key.0.replace("a.example", key));
        (spec, record)
    }

    #[test]
    fn a_move_is_compared_with_what_the_specs_declare() {
        // The record is `a`'s organization.
        let (spec, record) = spec_and_record("a.example");
        assert_eq!(declared(&spec, &record, "a"), Declared::AsNew);
        let Declared::Otherwise { elsewhere, .. } = declared(&spec, &record, "b") else {
            panic!("`b` declares another organization");
        };
        assert_eq!(elsewhere.map(|e| e.address).as_deref(), Some("a"));
        let Declared::NotAsNew { elsewhere } = declared(&spec, &record, "c") else {
            panic!("`c` is not declared");
        };
        assert_eq!(elsewhere.map(|e| e.address).as_deref(), Some("a"));
        // An organization no address declares.
        let (spec, record) = spec_and_record("z.example");
        assert!(matches!(
            declared(&spec, &record, "a"),
            Declared::Otherwise {
                elsewhere: None,
                ..
            }
        ));
        assert_eq!(
            declared(&spec, &record, "c"),
            Declared::NotAsNew { elsewhere: None }
        );
    }

    #[test]
    fn a_star_matches_any_run_and_the_rest_matches_itself() {
        for (pattern, text) in [
            ("acme", "acme"),
            ("*", "acme"),
            ("*", ""),
            ("ac*", "acme"),
            ("*me", "acme"),
            ("a*m*e", "acme"),
            ("**", "x"),
            ("o*1", "o001"),
            ("*a*a*a*b", "aaaaaaaaaaab"),
        ] {
            assert!(
                target_matches(pattern, text),
                "`{pattern}` matches `{text}`"
            );
        }
        for (pattern, text) in [
            ("acme", "acm"),
            ("acme", "acmes"),
            ("b*", "acme"),
            ("*x", "acme"),
            ("a?me", "acme"),
            ("*a*a*a*b", "aaaaaaaaaaaa"),
        ] {
            assert!(
                !target_matches(pattern, text),
                "`{pattern}` misses `{text}`"
            );
        }
    }
}
