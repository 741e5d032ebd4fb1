//! `[template.NAME]` tables through the real binary: a spec rewritten with a template plans
//! "No changes" (an organization's digest is that of its resolved fields), validation errors
//! point at the template and the organization, `schema` and `fmt` know the table, and a large
//! file read in pieces sees templates declared in any piece.

use std::path::Path;

use orgform::sandbox::SandboxConfig;
use orgform::spec::{SourceFile, Spec};

use crate::e2e::{orgform, start};

/// Three Heron organizations written out in full.
fn inline_specs(base_url: &str) -> String {
    let mut text = format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n"
    );
    for (address, secret) in [
        ("acme", "ACME_SECRET"),
        ("beta", "BETA_SECRET"),
        ("gamma", "GAMMA_SECRET"),
    ] {
        text.push_str(&format!(
            "\n[org.{address}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{address}.my.salesforce.com\"\nauth = {{ client_secret = {{ env = \"ACME_CLIENT_SECRET\" }} }}\nsecret = {{ env = \"{secret}\" }}\nis_enabled = true\nconfig = {{ download_legacy_attachments = false, default_id = {{ external_name = \"Account\", alias = \"Company\" }} }}\n"
        ));
    }
    text
}

/// The same organizations, their common fields moved into a template (in another file), one
/// of them overriding a field inside a nested table with the value the template would give.
fn templated_specs(base_url: &str) -> (String, String) {
    let template = "[template.salesforce_crm]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\nauth = { client_secret = { env = \"ACME_CLIENT_SECRET\" } }\nis_enabled = true\n\n[template.salesforce_crm.config]\ndownload_legacy_attachments = false\ndefault_id = { external_name = \"Account\", alias = \"Company\" }\n".to_string();
    let orgs = format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n\n\
         [org.acme]\ntemplate = \"salesforce_crm\"\ninstance_url = \"https://acme.my.salesforce.com\"\nsecret = {{ env = \"ACME_SECRET\" }}\n\n\
         [org.beta]\ntemplate = \"salesforce_crm\"\ninstance_url = \"https://beta.my.salesforce.com\"\nsecret = {{ env = \"BETA_SECRET\" }}\nconfig = {{ default_id = {{ alias = \"Company\" }} }}\n\n\
         [org.gamma]\ntemplate = \"salesforce_crm\"\nprovider = \"heron\"\ninstance_url = \"https://gamma.my.salesforce.com\"\nsecret = {{ env = \"GAMMA_SECRET\" }}\nis_enabled = true\n"
    );
    (template, orgs)
}

fn write_specs(dir: &Path, files: &[(&str, &str)]) {
    let specs = dir.join("specs");
    let _ = std::fs::remove_dir_all(&specs);
    std::fs::create_dir_all(&specs).expect("mkdir");
    for (name, text) in files {
        std::fs::write(specs.join(name), text).expect("write spec");
    }
}

/// Moving fields into a template changes no organization: the plan after the rewrite is
/// "No changes", and a field changed in the template is a change of every organization.
#[tokio::test(flavor = "multi_thread")]
async fn a_spec_rewritten_with_a_template_plans_no_changes() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base_url = sandbox.base_url();
    write_specs(dir.path(), &[("heron.toml", &inline_specs(&base_url))]);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let before = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);

    let (template, orgs) = templated_specs(&base_url);
    write_specs(
        dir.path(),
        &[("templates.toml", &template), ("heron.toml", &orgs)],
    );
    orgform(dir.path(), &["validate"]).expect(0);
    let after = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    assert!(after.stdout.contains("No changes."), "{}", after.stdout);
    assert_eq!(after.stdout, before.stdout);

    // The template's fields are the organizations' fields: a change there is seen in each.
    let changed = template.replace("is_enabled = true", "is_enabled = false");
    write_specs(
        dir.path(),
        &[("templates.toml", &changed), ("heron.toml", &orgs)],
    );
    let run = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    for address in ["acme", "beta"] {
        assert!(run.stdout.contains(address), "{}", run.stdout);
    }
    // `gamma` sets `is_enabled = true` itself: the template's value is overridden.
    assert!(!run.stdout.contains("gamma"), "{}", run.stdout);
    sandbox.shutdown().await.expect("shutdown");
}

/// Errors in a template's values point at the template (file:line:col) and name the
/// organization that took them; an unknown template name has a "did you mean".
#[test]
fn validate_points_at_the_template_and_the_organization() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &[
            (
                "a_templates.toml",
                "[template.crm]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\nis_enabled = \"yes\"\nauth = {}\nsecret = { env = \"S\" }\nconfig = {}\n",
            ),
            (
                "b_orgs.toml",
                "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n\n[org.a]\ntemplate = \"crm\"\ninstance_url = \"https://a.example.com\"\n\n[org.b]\ntemplate = \"crn\"\ninstance_url = \"https://b.example.com\"\n\n[org.c]\ntemplate = \"crm\"\n",
            ),
        ],
    );
    let run = orgform(dir.path(), &["validate"]).expect(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    for expected in [
        "specs/a_templates.toml:4:14: `template.crm.is_enabled` must be a boolean",
        "`org.a` (specs/b_orgs.toml:5:6) takes this from template `crm`",
        "specs/b_orgs.toml:10:12: organization `b` names template `crn`, which is not declared",
        "did you mean `crm`?",
        "specs/b_orgs.toml:13:6: missing required field `org.c.instance_url`",
        "with the fields of template `crm` (specs/a_templates.toml:1:11)",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    // The template's mistake is one error, though two organizations take it.
    assert_eq!(text.matches("must be a boolean").count(), 1, "{text}");
}

/// `orgform schema` describes templates; `orgform fmt` orders a template's keys as those of the
/// organizations it is for.
#[test]
fn schema_and_fmt_know_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = orgform(dir.path(), &["schema"]).expect(0);
    let schema: serde_json::Value = serde_json::from_str(&schema.stdout).expect("JSON");
    assert!(schema["properties"]["template"].is_object(), "{schema}");
    let validator = jsonschema::validator_for(&schema).expect("a JSON Schema");
    let (template, orgs) = templated_specs("https://app.herondata.io");
    for text in [&template, &orgs] {
        let value: serde_json::Value = toml::from_str(text).expect("TOML");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{text}\n{errors:?}");
    }
    let nested: serde_json::Value =
        toml::from_str("[template.a]\ntemplate = \"b\"\n").expect("TOML");
    assert!(!validator.is_valid(&nested), "templates do not nest");

    let unsorted = "[template.t]\nis_enabled = true\ncrm_provider = \"salesforce\"\nprovider = \"h\"\n\n[template.u]\nis_live = true\ninstance_url = \"https://x.example.com\"\n\n[org.a]\ninstance_url = \"https://a.example.com\"\ntemplate = \"t\"\n\n[org.b]\ncrm_provider = \"salesforce\"\nprovider = \"h\"\ntemplate = \"u\"\n";
    write_specs(
        dir.path(),
        &[
            ("a.toml", unsorted),
            (
                "providers.toml",
                "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n",
            ),
        ],
    );
    orgform(dir.path(), &["fmt"]).expect(0);
    let formatted = std::fs::read_to_string(dir.path().join("specs/a.toml")).expect("read");
    assert_eq!(
        formatted,
        "[template.t]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\nis_enabled = true\n\n[template.u]\ninstance_url = \"https://x.example.com\"\nis_live = true\n\n[org.a]\ntemplate = \"t\"\ninstance_url = \"https://a.example.com\"\n\n[org.b]\nprovider = \"h\"\ntemplate = \"u\"\ncrm_provider = \"salesforce\"\n"
    );
}

/// A large file is read in pieces cut at `[org.` lines; templates declared anywhere (the
/// file's end, another file read later) are seen by every piece, and the organizations are
/// those the same file written out in full declares.
#[test]
fn templates_are_seen_by_every_piece_of_a_large_file() {
    let provider = SourceFile::new(
        "specs/p.toml",
        "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n".to_string(),
    );
    let mut templated = String::new();
    let mut inline = String::new();
    for i in 0..2000 {
        let (template, alias) = if i % 2 == 0 {
            ("late", "Company")
        } else {
            ("other_file", "Org")
        };
        templated.push_str(&format!(
            "[org.o{i:04}]\ntemplate = \"{template}\"\ninstance_url = \"https://o{i:04}.example.com\"\n\n"
        ));
        inline.push_str(&format!(
            "[org.o{i:04}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://o{i:04}.example.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{ default_id = {{ external_name = \"Account\", alias = \"{alias}\" }} }}\n\n"
        ));
    }
    let template = |name: &str, alias: &str| {
        format!(
            "[template.{name}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{ default_id = {{ external_name = \"Account\", alias = \"{alias}\" }} }}\n"
        )
    };
    templated.push_str(&template("late", "Company"));
    assert!(templated.len() > 64 * 1024, "many pieces");
    let load = |files: Vec<SourceFile>| match Spec::load(&files) {
        Ok(spec) => spec,
        Err(e) => panic!("valid: {e:?}"),
    };
    let from_templates = load(vec![
        provider.clone(),
        SourceFile::new("specs/q.toml", templated),
        SourceFile::new("specs/z.toml", template("other_file", "Org")),
    ]);
    let written_out = load(vec![provider, SourceFile::new("specs/q.toml", inline)]);
    assert_eq!(from_templates.orgs.len(), 2000);
    for (address, org) in &written_out.orgs {
        let templated = &from_templates.orgs[address];
        assert_eq!(templated.digest, org.digest, "{address}");
        assert_eq!(templated.attrs, org.attrs, "{address}");
    }
}
