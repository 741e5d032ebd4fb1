//! Spec cases as folders: `tests/specs/valid/<case>/` must load, `tests/specs/invalid/<case>/`
//! must fail with exactly the diagnostics in its `expected.txt`. The examples in `specs/` are a
//! valid case too, so they never rot.

use std::path::Path;

use orgform::spec::Spec;
use proptest::prelude::*;

use crate::golden::{cases, check, spec_files};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn examples_in_specs_folder_are_valid() {
    let files = spec_files(&root().join("specs"));
    let spec = Spec::load(&files).unwrap_or_else(|e| panic!("specs/ must be valid: {e:?}"));
    assert!(!spec.orgs.is_empty());
}

#[test]
fn valid_cases_load() {
    for case in cases(&root().join("tests/specs/valid")) {
        let files = spec_files(&case);
        if let Err(e) = Spec::load(&files) {
            panic!("{} should be valid: {e:?}", case.display());
        }
    }
}

#[test]
fn invalid_cases_fail_with_their_diagnostics() {
    for case in cases(&root().join("tests/specs/invalid")) {
        let files = spec_files(&case);
        let errors = match Spec::load(&files) {
            Ok(_) => panic!("{} should be invalid", case.display()),
            Err(e) => e,
        };
        let mut text = String::new();
        for e in &errors.errors {
            text.push_str(&e.to_string());
            text.push('\n');
            if let Some(help) = &e.help {
                text.push_str(&format!("  help: {help}\n"));
            }
        }
        check(&case.join("expected.txt"), &text);
    }
}

#[test]
fn digest_ignores_formatting_and_secret_references_but_not_values() {
    let load = |text: &str| {
        Spec::load(&[orgform::spec::SourceFile::new("a.toml", text.to_string())]).expect("valid")
    };
    let base = r#"
[provider.h]
type = "heron"
api_key = { env = "K" }
[org.a]
provider = "h"
crm_provider = "salesforce"
instance_url = "https://a.example.com"
auth = { token = { env = "T" } }
secret = { env = "S" }
config = {}
"#;
    let reformatted = base.replace("config = {}", "# a comment\nconfig = {   }");
    let other_secret = base.replace("{ env = \"S\" }", "{ env = \"S2\" }");
    let other_value = base.replace("https://a.example.com", "https://b.example.com");
    let digest = |t: &str| load(t).orgs["a"].digest.clone();
    assert_eq!(digest(base), digest(&reformatted));
    assert_eq!(digest(base), digest(&other_secret));
    assert_ne!(digest(base), digest(&other_value));
}

// A large spec file is parsed in pieces cut at `[org.` lines (a cache-sized parse tree at a
// time). These check that the pieces always mean what the whole file means, whatever TOML
// lets a file do across a cut.

const PROVIDER: &str = "[provider.heron]\ntype = \"heron\"\napi_key = { env = \"K\" }\n";

/// One Heron organization, as the benchmark writes them.
fn heron_org(address: &str) -> String {
    format!(
        "\n[org.{address}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\n\
         instance_url = \"https://{address}.example.com\"\nauth = {{ client_secret = {{ env = \"CS\" }} }}\n\
         secret = {{ env = \"WS\" }}\n\
         config = {{ default_id = {{ external_name = \"Account\", alias = \"Company\" }} }}\n"
    )
}

/// `n` organizations in one file: about 250 bytes each, so hundreds make many pieces.
fn big_file(n: usize) -> String {
    let mut text = PROVIDER.to_string();
    for i in 0..n {
        text.push_str(&heron_org(&format!("o{i:04}")));
    }
    text
}

fn load_one(text: &str) -> Result<Spec, orgform::spec::SpecErrors> {
    Spec::load(&[orgform::spec::SourceFile::new("big.toml", text.to_string())])
}

fn messages(errors: &orgform::spec::SpecErrors) -> Vec<String> {
    errors.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn a_big_file_loads_as_the_same_organizations_in_small_files() {
    let n = 600;
    let big = load_one(&big_file(n)).expect("valid");
    assert!(
        big_file(n).len() > 8 * 16 * 1024,
        "the file must make several pieces"
    );
    let mut small = vec![orgform::spec::SourceFile::new(
        "p.toml",
        PROVIDER.to_string(),
    )];
    for i in 0..n {
        let address = format!("o{i:04}");
        small.push(orgform::spec::SourceFile::new(
            format!("{address}.toml"),
            heron_org(&address),
        ));
    }
    let small = Spec::load(&small).expect("valid");
    assert_eq!(big.orgs.len(), n);
    for (address, org) in &big.orgs {
        let other = &small.orgs[address];
        assert_eq!(org.attrs, other.attrs, "{address}");
        assert_eq!(org.digest, other.digest, "{address}");
        assert_eq!(org.natural_key, other.natural_key, "{address}");
    }
    // Every origin names the line of its header, in whichever piece it is.
    let text = big_file(n);
    for (address, org) in &big.orgs {
        let header = format!("[org.{address}]");
        let line = text.lines().position(|l| l == header).expect("header") + 1;
        assert_eq!(org.origin.line, line, "{address}");
    }
}

#[test]
fn a_table_written_in_parts_far_apart_is_one_table() {
    // `o0000` is declared at the top and its `config` at the very end, many pieces later:
    // legal TOML, and the same organization as when written in one place.
    let mut text = big_file(400).replacen(
        "config = { default_id = { external_name = \"Account\", alias = \"Company\" } }\n",
        "",
        1,
    );
    text.push_str(
        "\n[org.o0000.config.default_id]\nexternal_name = \"Account\"\nalias = \"Company\"\n",
    );
    let parts = load_one(&text).expect("valid");
    let whole = load_one(&big_file(400)).expect("valid");
    assert_eq!(parts.orgs["o0000"].attrs, whole.orgs["o0000"].attrs);
    assert_eq!(parts.orgs["o0000"].digest, whole.orgs["o0000"].digest);
    assert_eq!(parts.orgs.len(), 400);
}

#[test]
fn a_table_declared_twice_far_apart_is_refused_as_toml_refuses_it() {
    let mut text = big_file(400);
    text.push_str(&heron_org("o0001"));
    let errors = load_one(&text).expect_err("o0001 is declared twice");
    let line = text
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| *l == "[org.o0001]")
        .expect("header")
        + 1;
    assert_eq!(errors.errors.len(), 1, "{:?}", messages(&errors));
    let message = &messages(&errors)[0];
    assert!(
        message.starts_with(&format!("big.toml:{line}:")) && message.contains("duplicate key"),
        "{message}"
    );
}

#[test]
fn a_header_line_inside_a_multiline_string_is_not_a_cut() {
    // The string holds a line that looks like the headers the file is cut at, past where the
    // first cut is due; a cut there would leave the piece before it with an unterminated string,
    // so the file is parsed whole.
    let padding = "padding\n".repeat(3000);
    let trick = heron_org("trick").replace(
        "alias = \"Company\"",
        &format!("alias = \"\"\"\n{padding}[org.fake]\nprovider = \"heron\"\n\"\"\""),
    );
    let text = format!("{PROVIDER}{trick}{}", &big_file(100)[PROVIDER.len()..]);
    let spec = load_one(&text).expect("valid");
    assert!(!spec.orgs.contains_key("fake"));
    assert_eq!(spec.orgs.len(), 101);
    let alias = spec.orgs["trick"].attrs.unpack().get("config").cloned();
    let alias = alias.as_ref().and_then(|c| c.get_path("default_id.alias"));
    assert_eq!(
        alias.and_then(orgform::model::Value::as_str),
        Some(format!("{padding}[org.fake]\nprovider = \"heron\"\n").as_str())
    );
}

#[test]
fn an_error_deep_in_a_big_file_names_its_own_line() {
    let text = big_file(500).replace(
        "[org.o0450]\nprovider = \"heron\"\n",
        "[org.o0450]\nprovider = \"heron\"\ncolour = \"blue\"\n",
    );
    let line = text
        .lines()
        .position(|l| l == "colour = \"blue\"")
        .expect("line")
        + 1;
    let errors = load_one(&text).expect_err("unknown key");
    assert_eq!(
        messages(&errors),
        [format!(
            "big.toml:{line}:1: unknown key `colour` in `org.o0450`"
        )]
    );
}

#[test]
fn an_org_table_written_whole_late_in_a_big_file_is_refused_as_toml_refuses_it() {
    // `[org]` after `[org.NAME]` headers is legal once; twice, the whole file's parser refuses
    // it, and so must the pieces, which each see it only once.
    let mut text = big_file(300);
    let third = text.len() / 3;
    let at = text[third..].find("\n[org.").expect("a header") + third + 1;
    text.insert_str(at, "[org]\n");
    text.push_str("\n[org]\n");
    let errors = load_one(&text).expect_err("[org] twice");
    assert!(
        messages(&errors).iter().any(|m| m.contains("invalid TOML")),
        "{:?}",
        messages(&errors)
    );
}

/// A part of a generated spec file, for the property below. Names come from a small pool, so
/// that tables are declared twice and written in parts, near and far apart.
#[derive(Clone, Debug)]
enum Part {
    /// `[org.NAME]` with every field.
    Org(u8),
    /// `[org.NAME]` without its `config`.
    OrgWithoutConfig(u8),
    /// `[org.NAME.config.default_id]`: the rest of an organization, or a conflict.
    Config(u8),
    /// `[org]`: legal once after `[org.NAME]` headers, never twice.
    OrgTable,
    /// An organization whose alias is a multi-line string holding a line like a header.
    Trick(u8),
    /// Comment lines, to push the next parts into later pieces.
    Padding(u16),
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        4 => (0u8..12).prop_map(Part::Org),
        2 => (0u8..12).prop_map(Part::OrgWithoutConfig),
        2 => (0u8..12).prop_map(Part::Config),
        2 => Just(Part::OrgTable),
        1 => (0u8..12).prop_map(Part::Trick),
        4 => (1u16..1200).prop_map(Part::Padding),
    ]
}

fn render(parts: &[Part]) -> String {
    let config = "config = { default_id = { external_name = \"Account\", alias = \"Company\" } }\n";
    let mut text = PROVIDER.to_string();
    for part in parts {
        match part {
            Part::Org(n) => text.push_str(&heron_org(&format!("n{n}"))),
            Part::OrgWithoutConfig(n) => {
                text.push_str(&heron_org(&format!("n{n}")).replace(config, ""));
            }
            Part::Config(n) => text.push_str(&format!(
                "\n[org.n{n}.config.default_id]\nexternal_name = \"Account\"\nalias = \"Company\"\n"
            )),
            Part::OrgTable => text.push_str("\n[org]\n"),
            Part::Trick(n) => text.push_str(&heron_org(&format!("n{n}")).replace(
                "alias = \"Company\"",
                "alias = \"\"\"\n[org.fake]\nprovider = \"heron\"\n\"\"\"",
            )),
            Part::Padding(lines) => text.push_str(&"# padding padding\n".repeat(*lines as usize)),
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a large file does across the places it is cut, loading it means what one
    /// parse of the whole file means: the same TOML errors, the same organizations.
    #[test]
    fn a_big_file_in_pieces_means_what_it_means_whole(parts in prop::collection::vec(part(), 1..60)) {
        let text = render(&parts);
        let whole = toml::from_str::<toml::Table>(&text);
        let loaded = load_one(&text);
        let invalid_toml = loaded
            .as_ref()
            .err()
            .is_some_and(|e| messages(e).iter().any(|m| m.contains("invalid TOML")));
        prop_assert_eq!(whole.is_err(), invalid_toml, "{:?}", loaded.as_ref().err().map(messages));
        if let (Ok(table), Ok(spec)) = (&whole, &loaded) {
            let declared: Vec<&String> = table
                .get("org")
                .and_then(toml::Value::as_table)
                .map(|orgs| orgs.keys().collect())
                .unwrap_or_default();
            prop_assert_eq!(declared, spec.orgs.keys().collect::<Vec<_>>());
        }
    }
}

fn value() -> impl Strategy<Value = orgform::model::Value> {
    use orgform::model::{SecretRef, Value};
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e300f64..1e300).prop_map(Value::Float),
        ".{0,40}".prop_map(Value::String),
        "[A-Z_]{1,12}".prop_map(|n| Value::Secret(SecretRef::Env(n))),
        "[a-z/.]{1,20}".prop_map(|p| Value::Secret(SecretRef::File(p))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(orgform::model::Value::Array),
            prop::collection::vec((".{0,12}", inner), 0..6)
                .prop_map(|entries| orgform::model::Value::Table(entries.into_iter().collect())),
        ]
    })
}

/// The secret references of a table with their paths, walked over the unpacked values: what
/// `PackedTable::each_secret` must find without unpacking.
fn secrets_of(table: &orgform::model::Table) -> Vec<(String, String)> {
    use orgform::model::{SecretRef, Value};
    fn walk(path: String, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Secret(SecretRef::Env(n)) => out.push((path, format!("env:{n}"))),
            Value::Secret(SecretRef::File(p)) => out.push((path, format!("file:{p}"))),
            Value::Table(t) => {
                for (k, v) in t {
                    walk(format!("{path}.{k}"), v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(format!("{path}[{i}]"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in table {
        walk(k.clone(), v, &mut out);
    }
    out
}

proptest! {
    /// Organizations' attributes are kept packed: they must read back exactly, and their
    /// secret references must be found in the packed bytes as in the values.
    #[test]
    fn packed_attributes_read_back_whole(entries in prop::collection::vec(("[a-z_]{1,12}", value()), 0..8)) {
        let table: orgform::model::Table = entries.into_iter().collect();
        let packed = orgform::model::packed::PackedTable::pack(&table);
        prop_assert_eq!(packed.unpack(), table.clone());
        let mut found = Vec::new();
        packed.each_secret(|path, kind, name| {
            found.push((String::from_utf8_lossy(path).into_owned(), format!("{kind}:{name}")));
        });
        prop_assert_eq!(found, secrets_of(&table));
    }
}

/// `requests_per_second` paces every request of an instance: a value so small it would wait
/// centuries (or overflow the interval, which panicked `plan`) is refused at `validate`, with
/// its place, and no command gets to use it.
#[test]
fn a_pace_too_slow_to_be_meant_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    for pace in ["1e-300", "1e-10", "0.0", "-1.0", "nan", "inf"] {
        std::fs::write(
            dir.path().join("specs/p.toml"),
            format!(
                "[provider.h]\ntype = \"heron\"\napi_key = {{ env = \"K\" }}\nrequests_per_second = {pace}\n"
            ),
        )
        .expect("write");
        for args in [
            &["validate"][..],
            &["plan", "--refresh=false"],
            &["plan", "--sandbox"],
        ] {
            let out = crate::harness::run(dir.path(), args, &[("K", "k")]).expect(1);
            assert!(
                out.stderr.contains("p.toml:4:") && out.stderr.contains("requests_per_second"),
                "{pace} {args:?}: {}",
                out.stderr
            );
        }
    }
}

/// A report of spec problems is bounded: the first hundred are shown (and the rest counted),
/// and a line too long to quote is named, not quoted. One inline table of thousands of unknown
/// keys gave a report that grew with the square of the spec (26 KB of it, 131 MB of errors).
#[test]
fn a_flood_of_problems_on_one_long_line_gives_a_bounded_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let keys: Vec<String> = (0..3000).map(|i| format!("unknown_{i} = 1")).collect();
    std::fs::write(
        dir.path().join("specs/p.toml"),
        format!(
            "[provider.h]\ntype = \"heron\"\napi_key = {{ env = \"K\" }}\n\n[org.a]\nprovider = \"h\"\nauth = {{ {} }}\n",
            keys.join(", ")
        ),
    )
    .expect("write");
    for args in [&["validate"][..], &["validate", "--format", "json"]] {
        let out = crate::harness::run(dir.path(), args, &[]).expect(1);
        let size = out.stdout.len() + out.stderr.len();
        assert!(size < 200_000, "{args:?}: {size} bytes of report");
        assert!(
            out.stderr.contains("the first 100 shown"),
            "{}",
            &out.stderr[..out.stderr.len().min(2000)]
        );
        assert!(out.stderr.contains("p.toml:7:"), "{}", &out.stderr[..2000]);
    }
    let json = crate::harness::run(dir.path(), &["validate", "--format", "json"], &[]);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("one document");
    assert_eq!(document["diagnostics"].as_array().map(Vec::len), Some(100));
    assert!(document["more_diagnostics"].as_u64().is_some_and(|n| n > 0));
    // A problem on a line too long to quote keeps its kind (it is text, only not quoted).
    assert!(
        document["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|d| d["code"] != "not-text"),
        "{document}"
    );
}
