//! Spec cases as folders: `tests/specs/valid/<case>/` must load, `tests/specs/invalid/<case>/`
//! must fail with exactly the diagnostics in its `expected.txt`. The examples in `specs/` are a
//! valid case too, so they never rot.

use std::path::Path;

use orgform::spec::Spec;

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
