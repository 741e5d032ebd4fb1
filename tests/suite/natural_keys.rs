//! Natural keys through the real binary: unique per provider instance at `validate` (with each
//! provider's own case rule), a look-up that matches several remote organizations is `blocked`
//! with their ids (never a silent pick), and one remote id is never bound to two addresses.

use std::path::Path;

use crate::harness::{Run, run_on};

/// Values the runs export; none is a real secret (the sandbox's own credentials).
const ENV: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("NEON_ORG_ID", orgform::sandbox::neoncrm::ORG_ID),
    ("NEON_API_KEY", orgform::sandbox::neoncrm::API_KEY),
    ("S", "s3cret-webhook"),
    ("CV_USER", "admin"),
    ("CV_PASSWORD", "pw"),
    ("SF_PW", "pw"),
    ("SF_SECRET", "secret"),
];

fn orgform(dir: &Path, args: &[&str]) -> Run {
    run_on(dir, args, ENV)
}

fn write(dir: &Path, file: &str, text: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(specs.join(file), text).expect("write spec");
}

fn neon_provider(base_url: &str) -> String {
    format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{base_url}/neonws/services/api\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n"
    )
}

fn heron_provider(base_url: &str) -> String {
    format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n"
    )
}

fn heron_org(address: &str, url: &str) -> String {
    format!(
        "\n[org.{address}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"{url}\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n"
    )
}

fn commvault_org(address: &str, name: &str) -> String {
    format!(
        "\n[org.{address}]\nprovider = \"cv\"\norganization_name = \"{name}\"\ndownload_cache_path = \"/cache\"\nplan = {{ plan_name = \"Server plan\", plan_id = 1, entity_info = {{ company_id = 0 }} }}\n\n[org.{address}.salesforce_account]\nauthentication_type = 1\nuser_credentials = {{ user_name = \"u@example.com\", password = {{ env = \"SF_PW\" }} }}\nconsumer_id = \"key\"\nconsumer_secret = {{ env = \"SF_SECRET\" }}\n"
    )
}

/// The `file:line:col` of the `[org.NAME]` header key in a spec file's text.
fn place(dir: &Path, file: &str, address: &str) -> String {
    let text = std::fs::read_to_string(dir.join("specs").join(file)).expect("read spec");
    let header = format!("[org.{address}]");
    let line = text
        .lines()
        .position(|l| l == header)
        .unwrap_or_else(|| panic!("{header} not in {file}"));
    // The column of the name in `[org.NAME]`, where the message points.
    format!(
        "{}:{}:{}",
        dir.join("specs").join(file).display(),
        line + 1,
        "[org.".len() + 1
    )
}

// Validate: both places named.

#[test]
fn validate_refuses_two_neoncrm_orgs_with_one_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = neon_provider("https://api.neoncrm.com");
    for address in ["grace", "grace_again"] {
        text.push_str(&format!(
            "\n[org.{address}]\nprovider = \"neon\"\norganization_name = \"Grace Community Church\"\n"
        ));
    }
    write(dir.path(), "neon.toml", &text);
    let run = orgform(dir.path(), &["validate"]).expect(1);
    let first = place(dir.path(), "neon.toml", "grace");
    let again = place(dir.path(), "neon.toml", "grace_again");
    assert!(run.stderr.contains(&again), "{}", run.stderr);
    assert!(run.stderr.contains(&first), "{}", run.stderr);
    assert!(
        run.stderr.contains("Grace Community Church") && run.stderr.contains("`grace`"),
        "{}",
        run.stderr
    );
    // `plan` and `apply` refuse the same specs before any call.
    orgform(dir.path(), &["plan", "--refresh=false"]).expect(1);
}

#[test]
fn validate_refuses_two_heron_orgs_with_one_key_in_two_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = "https://acme.my.salesforce.com";
    write(
        dir.path(),
        "a.toml",
        &format!(
            "{}{}",
            heron_provider("https://app.herondata.io"),
            heron_org("acme", url)
        ),
    );
    write(dir.path(), "b.toml", &heron_org("acme_copy", url));
    let run = orgform(dir.path(), &["validate"]).expect(1);
    assert!(
        run.stderr.contains(&place(dir.path(), "a.toml", "acme")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&place(dir.path(), "b.toml", "acme_copy")),
        "{}",
        run.stderr
    );
    // The same key on another instance, or another URL, is fine.
    write(
        dir.path(),
        "b.toml",
        &heron_org("acme_copy", "https://acme-two.my.salesforce.com"),
    );
    orgform(dir.path(), &["validate"]).expect(0);
}

#[test]
fn validate_refuses_commvault_names_that_differ_only_in_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from(
        "[provider.cv]\ntype = \"commvault_salesforce\"\nbase_url = \"https://cc.example.com/commandcenter/api\"\nusername = { env = \"CV_USER\" }\npassword = { env = \"CV_PASSWORD\" }\n",
    );
    text.push_str(&commvault_org("acme", "Acme-SFDC-Prod"));
    text.push_str(&commvault_org("acme_lower", "acme-sfdc-prod"));
    write(dir.path(), "cv.toml", &text);
    let run = orgform(dir.path(), &["validate"]).expect(1);
    assert!(
        run.stderr.contains(&place(dir.path(), "cv.toml", "acme")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&place(dir.path(), "cv.toml", "acme_lower")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("case"), "{}", run.stderr);

    // NeonCRM compares names exactly: the same two names there are two organizations.
    let neon = tempfile::tempdir().expect("tempdir");
    let mut text = neon_provider("https://api.neoncrm.com");
    text.push_str("\n[org.a]\nprovider = \"neon\"\norganization_name = \"Acme\"\n");
    text.push_str("\n[org.b]\nprovider = \"neon\"\norganization_name = \"ACME\"\n");
    write(neon.path(), "neon.toml", &text);
    orgform(neon.path(), &["validate"]).expect(0);
}
