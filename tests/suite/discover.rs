//! Brownfield, through the real binary against the sandbox: organizations made without orgform
//! (through Heron's own API) are written as specs by `discover`, adopted by the next apply with
//! no create, and the plan after is clean; what the provider reports is compared with what is
//! declared, at adoption (blocked with the diff) and after it (drift), in every plan format.

use std::path::Path;

use orgform::sandbox::{HERON_API_KEY, Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::e2e::{orgform, served, start};

const CREATE: &str = "POST /api/crm_integrations";

/// Creates an integration through Heron's API itself, as a person or another tool would.
async fn heron_create(sandbox: &Sandbox, body: Value) -> String {
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/crm_integrations", sandbox.base_url()))
        .header("x-api-key", HERON_API_KEY)
        .json(&body)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    created["crm_integration"]["heron_id"]
        .as_str()
        .expect("an id")
        .to_string()
}

async fn heron_patch(sandbox: &Sandbox, id: &str, body: Value) {
    let status = reqwest::Client::new()
        .patch(format!("{}/api/crm_integrations/{id}", sandbox.base_url()))
        .header("x-api-key", HERON_API_KEY)
        .json(&body)
        .send()
        .await
        .expect("patch")
        .status();
    assert!(status.is_success(), "{status}");
}

/// `DIR/specs/provider.toml`: the one Heron instance, and `orgs` (TOML) after it.
fn specs(dir: &Path, sandbox: &Sandbox, orgs: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(
        specs.join("provider.toml"),
        format!(
            "[provider.heron]\ntype = \"heron\"\nbase_url = \"{}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n{orgs}",
            sandbox.base_url()
        ),
    )
    .expect("write specs");
}

fn plan_json(dir: &Path) -> Value {
    serde_json::from_str(&orgform(dir, &["plan", "--format", "json"]).expect(0).stdout)
        .expect("plan JSON")
}

fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_made_elsewhere_are_discovered_then_adopted_without_a_create() {
    let sandbox = start(SandboxConfig::default()).await;
    heron_create(
        &sandbox,
        json!({
            "provider": "salesforce", "instance_url": "https://acme.my.salesforce.com",
            "auth": {"client_secret": "s1"}, "secret": "w1", "is_live": false,
            "failure_notification_channel": "#alerts",
            "config": {"default_id": {"external_name": "Account", "alias": "Company"},
                       "value_mappings": [{"name": "state", "mapping": {"New York": "NY"}}]},
        }),
    )
    .await;
    heron_create(
        &sandbox,
        json!({
            "provider": "hubspot", "instance_url": "https://app.hubspot.com/contacts/4711",
            "auth": {}, "secret": "w2", "config": {"sync_file_classes": {"bank_statement": true}},
        }),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    specs(dir, &sandbox, "");

    let discovered = orgform(dir, &["discover", "--out", "specs/discovered"]).expect(0);
    assert!(
        discovered
            .stderr
            .contains("found 2, 0 declared or in state, in 1 request; wrote 2 organizations"),
        "{}",
        discovered.stderr
    );
    let written = std::fs::read_to_string(dir.join("specs/discovered/heron.toml")).expect("file");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"crm_[0-9a-f]{16}", "[heron id]");
    settings.bind(|| insta::assert_snapshot!("discovered_heron", written));

    orgform(dir, &["validate"]).expect(0);
    let plan = plan_json(dir);
    assert_eq!(
        actions(&plan),
        [
            (
                "hubspot_app_hubspot_com_contacts_4711".into(),
                "adopt".into()
            ),
            ("salesforce_acme_my_salesforce_com".into(), "adopt".into()),
        ],
        "{plan}"
    );
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        served(&sandbox, "heron", CREATE).await,
        2,
        "no create by orgform"
    );
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);

    // Never overwrites: the same folder again is refused before anything is read.
    let again = orgform(dir, &["discover", "--out", "specs/discovered"]).expect(1);
    assert!(
        again.stderr.contains("1 file exists already"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("specs/discovered/heron.toml")).expect("file"),
        written
    );
    // Everything is declared now: nothing to write, and no file.
    let none = orgform(dir, &["discover", "--out", "elsewhere"]).expect(0);
    assert!(none.stderr.contains("Nothing to write"), "{}", none.stderr);
    assert!(!dir.join("elsewhere").exists());
}

const ORG: &str = r##"
[org.acme]
provider = "heron"
crm_provider = "salesforce"
instance_url = "https://acme.my.salesforce.com"
auth = { client_secret = { env = "ACME_CLIENT_SECRET" } }
secret = { env = "ACME_SECRET" }
failure_notification_channel = "#alerts"
config = { default_id = { external_name = "Account", alias = "Company" } }
"##;

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_found_with_other_attributes_is_blocked_not_adopted() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    specs(dir, &sandbox, ORG);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);

    // The issue's case: change a reported attribute, forget, refresh. Before, the plan said
    // "No changes" while the provider still held the old value.
    specs(
        dir,
        &sandbox,
        &ORG.replace("external_name = \"Account\"", "external_name = \"Lead\""),
    );
    orgform(dir, &["forget", "acme"]).expect(0);
    orgform(dir, &["refresh"]).expect(0);
    let plan = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains("x blocked   acme")
            && plan
                .stdout
                .contains("the provider reports other attributes")
            && plan
                .stdout
                .contains("~ config.default_id.external_name: \"Account\" -> \"Lead\""),
        "{}",
        plan.stdout
    );
    let apply = orgform(dir, &["apply", "--auto-approve"]).expect(0);
    assert!(
        apply.stderr.contains("Nothing to apply"),
        "{}",
        apply.stderr
    );
    assert_eq!(served(&sandbox, "heron", CREATE).await, 1);

    // Declared as it is held: adopted.
    specs(dir, &sandbox, ORG);
    assert_eq!(actions(&plan_json(dir)), [("acme".into(), "adopt".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_made_at_the_provider_is_shown_as_drift_in_every_format() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    specs(dir, &sandbox, ORG);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);
    let plan = plan_json(dir);
    let id = plan["changes"][0]["remote_id"]
        .as_str()
        .expect("id")
        .to_string();

    heron_patch(
        &sandbox,
        &id,
        json!({"failure_notification_channel": "#elsewhere"}),
    )
    .await;

    let text = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        text.stdout.contains("x blocked   acme")
            && text
                .stdout
                .contains("changed at the provider since creation (drift)")
            && text
                .stdout
                .contains("~ failure_notification_channel: \"#elsewhere\" -> \"#alerts\""),
        "{}",
        text.stdout
    );
    let json = plan_json(dir);
    assert_eq!(json["changes"][0]["action"], "blocked", "{json}");
    assert_eq!(
        json["changes"][0]["diff"],
        json!([{"path": "failure_notification_channel", "before": "#elsewhere", "after": "#alerts"}])
    );
    let markdown = orgform(dir, &["plan", "--format", "markdown"]).expect(0);
    assert!(
        markdown.stdout.contains("&#40;drift&#41;")
            && markdown
                .stdout
                .contains("<code>failure&#95;notification&#95;channel</code>"),
        "{}",
        markdown.stdout
    );
    // Nothing is sent for it.
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, "heron", CREATE).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_provider_reports_cannot_break_out_of_the_spec_it_is_written_into() {
    let sandbox = start(SandboxConfig::default()).await;
    // A value meant to end the string and declare a provider of its own, with a terminal
    // escape; and a second organization whose address would clash with the first.
    let hostile =
        "sf\u{1b}[2J\"\n[provider.evil]\ntype = \"heron\"\nbase_url = \"https://evil.example\"";
    heron_integrations_of(&sandbox, &[hostile, "SF [2J"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    specs(dir, &sandbox, "");
    let run = orgform(dir, &["discover", "--out", "specs/found"]).expect(0);
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    let written = std::fs::read_to_string(dir.join("specs/found/heron.toml")).expect("file");
    assert!(
        !written.contains('\u{1b}') && !written.contains("\n[provider"),
        "{written}"
    );
    let parsed: toml::Table = written.parse().expect("TOML");
    assert!(parsed.get("provider").is_none(), "{parsed}");
    let orgs = parsed["org"].as_table().expect("orgs");
    assert_eq!(orgs.len(), 2, "{written}");
    assert!(
        orgs.values()
            .any(|o| o["crm_provider"].as_str() == Some(hostile)),
        "the value is kept, as data: {written}"
    );
    orgform(dir, &["validate"]).expect(0);
    let plan = orgform(dir, &["plan"]).expect(0);
    assert!(!plan.stdout.contains('\u{1b}'), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 2 to adopt."), "{}", plan.stdout);
}

/// A file discover would write that would not validate is reported where it is wrong (file,
/// line, key), and nothing is written: Heron keeps a `provider` that is empty, which the spec
/// format refuses. Each file is checked alone as soon as it is made, the others with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_would_not_validate_is_reported_where_and_nothing_is_written() {
    let sandbox = start(SandboxConfig::default()).await;
    heron_integrations_of(&sandbox, &["", "Salesforce"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    specs(dir, &sandbox, "");
    let run = orgform(dir, &["discover", "--out", "specs/found"]).expect(1);
    assert!(
        run.stderr
            .contains("would write do not validate, so nothing was written"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("specs/found/heron.toml:")
            && run.stderr.contains("crm_provider` must not be empty"),
        "{}",
        run.stderr
    );
    assert!(!dir.join("specs/found").exists(), "nothing is written");
}

/// An organization another instance of the same site holds is not new: an Oracle request that
/// an administrator approved becomes an organization, which the direct-mode instance on the
/// same host lists, and which state records (as the request's organization) already.
#[test]
fn an_organization_held_through_another_instance_of_the_same_site_is_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    crate::e2e::copy_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("specs")
            .as_path(),
        &dir.join("specs"),
    );
    crate::harness::orgform(dir)
        .args(["apply", "--sandbox", "--auto-approve"])
        .shows_sandbox_credentials()
        .run()
        .expect(0);
    let found = crate::harness::orgform(dir)
        .args(["discover", "--sandbox", "--out", "found"])
        .shows_sandbox_credentials()
        .run()
        .expect(0);
    assert!(
        found.stderr.contains("Nothing to write"),
        "{}",
        found.stderr
    );
    assert!(!dir.join("found").exists());
}

/// One Heron integration per CRM provider name, all at the same instance URL (Heron allows
/// that): what a provider reports, as hostile or as invalid as a test needs.
async fn heron_integrations_of(sandbox: &Sandbox, crms: &[&str]) {
    for crm in crms {
        heron_create(
            sandbox,
            json!({"provider": crm, "instance_url": "https://x.example.com", "auth": {},
                   "secret": "w", "config": {}}),
        )
        .await;
    }
}
