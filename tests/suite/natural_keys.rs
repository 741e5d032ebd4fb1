//! Natural keys through the real binary: unique per provider instance at `validate` (with each
//! provider's own case rule), a look-up that matches several remote organizations is `blocked`
//! with their ids (never a silent pick), and one remote id is never bound to two addresses.

use std::path::Path;

use orgform::sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

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

// Remote reality: several organizations under one key, and ids bound to another address.

async fn start() -> Sandbox {
    // The tests' own HTTP client needs a TLS provider chosen, as orgform's does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sandbox::start(
        "127.0.0.1:0".parse().expect("addr"),
        SandboxConfig::default(),
    )
    .await
    .expect("sandbox starts")
}

/// Creates a Heron integration straight through the API, as someone else would have.
async fn heron_create_directly(sandbox: &Sandbox, url: &str) -> String {
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/crm_integrations", sandbox.base_url()))
        .header("x-api-key", orgform::sandbox::HERON_API_KEY)
        .json(&serde_json::json!({
            "provider": "salesforce",
            "instance_url": url,
            "auth": {},
            "secret": "made-by-hand",
            "config": {},
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("create json");
    created["crm_integration"]["heron_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no heron_id in {created}"))
        .to_string()
}

fn served(sandbox: &Sandbox, provider: &str, endpoint: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get(provider)
        .and_then(|e| e.get(endpoint))
        .copied()
        .unwrap_or(0)
}

fn state_of(dir: &Path) -> Value {
    std::fs::read_to_string(dir.join("state.json"))
        .map(|text| serde_json::from_str(&text).expect("state json"))
        .unwrap_or(Value::Null)
}

fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["address"] == address))
        .unwrap_or_else(|| panic!("no change for {address} in {plan}"))
}

const NEON_CREATE: &str = "GET /neonws/services/api/account/createOrganizationAccount";

#[tokio::test(flavor = "multi_thread")]
async fn two_remote_orgs_with_one_name_block_the_address_with_both_ids() {
    let sandbox = start().await;
    let first = crate::provider_neoncrm::create_directly(&sandbox, "Grace Community Church").await;
    let second = crate::provider_neoncrm::create_directly(&sandbox, "Grace Community Church").await;
    assert_ne!(first, second);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = neon_provider(&sandbox.base_url());
    text.push_str(
        "\n[org.grace]\nprovider = \"neon\"\norganization_name = \"Grace Community Church\"\n",
    );
    text.push_str(
        "\n[org.harbour]\nprovider = \"neon\"\norganization_name = \"Harbour Bridge School\"\n",
    );
    write(dir.path(), "neon.toml", &text);

    let plan = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(plan.stdout.contains("blocked"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&first) && plan.stdout.contains(&second),
        "both ids listed:\n{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("orgform import grace"),
        "what to do:\n{}",
        plan.stdout
    );
    let json = orgform(dir.path(), &["--format", "json", "plan"]).expect(0);
    let json: Value = serde_json::from_str(&json.stdout).expect("plan json");
    let grace = change(&json, "grace");
    assert_eq!(grace["action"], "blocked", "{grace}");
    assert_eq!(
        grace["matching_ids"],
        serde_json::json!([first.clone(), second.clone()]),
        "{grace}"
    );
    assert!(grace.get("remote_id").is_none(), "no silent pick: {grace}");
    let markdown = orgform(dir.path(), &["--format", "markdown", "plan"]).expect(0);
    assert!(markdown.stdout.contains(&second), "{}", markdown.stdout);

    // Apply creates harbour only and binds grace to neither.
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, "neoncrm", NEON_CREATE), 2 + 1);
    let state = state_of(dir.path());
    assert!(state["orgs"]["grace"].is_null(), "{state}");
    assert_eq!(state["orgs"]["harbour"]["status"], "created", "{state}");

    // A person chooses one with import; the plan then holds it and nothing is left to do.
    orgform(dir.path(), &["import", "grace", &second]).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(state_of(dir.path())["orgs"]["grace"]["remote_id"], second);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_heron_integrations_with_one_key_block_the_address() {
    let sandbox = start().await;
    let url = "https://acme.my.salesforce.com";
    let first = heron_create_directly(&sandbox, url).await;
    let second = heron_create_directly(&sandbox, url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "heron.toml",
        &format!(
            "{}{}",
            heron_provider(&sandbox.base_url()),
            heron_org("acme", url)
        ),
    );
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(plan.stdout.contains("blocked"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&first) && plan.stdout.contains(&second),
        "{}",
        plan.stdout
    );
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, "heron", "POST /api/crm_integrations"), 2);
    assert!(state_of(dir.path())["orgs"]["acme"].is_null());
    sandbox.shutdown().await.expect("shutdown");
}

/// The instance URL of the Heron organization `acme` in the rename tests.
const ACME_URL: &str = "https://acme.my.salesforce.com";

/// Specs with Heron organization `acme` applied, then its address renamed `acme_renamed` in the
/// specs (state still holds `acme`); returns the folder and `acme`'s remote id.
fn acme_applied_then_renamed(sandbox: &Sandbox) -> (tempfile::TempDir, String) {
    let url = ACME_URL;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = heron_provider(&sandbox.base_url());
    write(
        dir.path(),
        "heron.toml",
        &format!("{provider}{}", heron_org("acme", url)),
    );
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let id = state_of(dir.path())["orgs"]["acme"]["remote_id"]
        .as_str()
        .expect("remote id")
        .to_string();
    write(
        dir.path(),
        "heron.toml",
        &format!("{provider}{}", heron_org("acme_renamed", url)),
    );
    (dir, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_id_bound_to_another_address_is_never_bound_again() {
    let sandbox = start().await;

    // The address renamed in the specs, the old one still in state: the new address finds the
    // organization by its key, but it is `acme`'s. A created record renamed is a move
    // (`moves.rs`); one still pending is not moved, which leaves the adoption to refuse.
    let (dir, id) = acme_applied_then_renamed(&sandbox);
    edit_state(dir.path(), |state| {
        state["orgs"]["acme"]["status"] = "pending".into()
    });
    let plan = orgform(dir.path(), &["--format", "json", "plan"]).expect(0);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan json");
    let renamed = change(&plan, "acme_renamed");
    assert_eq!(renamed["action"], "blocked", "{renamed}");
    let reason = renamed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`acme`") && reason.contains(&id),
        "{reason}"
    );
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert!(state_of(dir.path())["orgs"]["acme_renamed"].is_null());

    // Import refuses it, naming the address that holds it.
    let import = orgform(dir.path(), &["import", "acme_renamed", &id]).expect(1);
    assert!(
        import.stderr.contains("`acme`") && import.stderr.contains("forget"),
        "{}",
        import.stderr
    );
    assert!(state_of(dir.path())["orgs"]["acme_renamed"].is_null());

    // A saved plan edited to adopt it anyway is not applied as an adoption.
    let out = dir.path().join("plan.json");
    let out_arg = out.to_str().expect("utf-8 path");
    orgform(dir.path(), &["plan", "--out", out_arg]).expect(0);
    let mut saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("plan file")).expect("json");
    for c in saved["changes"].as_array_mut().expect("changes") {
        if c["address"] == "acme_renamed" {
            c["action"] = "adopt".into();
            c["remote_id"] = id.clone().into();
            c["remote"] = serde_json::json!({
                "remote_id": id, "natural_key": format!("salesforce | {ACME_URL}"),
                "status": {"status": "ready"}
            });
        }
    }
    std::fs::write(&out, saved.to_string()).expect("write plan");
    orgform(dir.path(), &["apply", "--auto-approve", out_arg]).expect(0);
    let state = state_of(dir.path());
    assert!(state["orgs"]["acme_renamed"].is_null(), "{state}");
    assert_eq!(state["orgs"]["acme"]["remote_id"], id.as_str());
    assert_eq!(served(&sandbox, "heron", "POST /api/crm_integrations"), 1);
    sandbox.shutdown().await.expect("shutdown");
}

/// Rewrites the state file with `edit` applied to its JSON, as an interrupted run or another
/// engineer's import would have left it.
fn edit_state(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let mut state = state_of(dir);
    edit(&mut state);
    std::fs::write(dir.join("state.json"), state.to_string()).expect("write state");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_settles_no_pending_create_by_picking_one_of_several() {
    let sandbox = start().await;
    let url = "https://acme.my.salesforce.com";
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "heron.toml",
        &format!(
            "{}{}",
            heron_provider(&sandbox.base_url()),
            heron_org("acme", url)
        ),
    );
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let mine = state_of(dir.path())["orgs"]["acme"]["remote_id"]
        .as_str()
        .expect("remote id")
        .to_string();
    let other = heron_create_directly(&sandbox, url).await;
    // As if the create's answer had been lost: pending, no id recorded.
    edit_state(dir.path(), |state| {
        let acme = &mut state["orgs"]["acme"];
        acme["status"] = "pending".into();
        acme.as_object_mut().expect("record").remove("remote_id");
    });

    // Planned without reads, the pending create is settled by apply's own look-up, which
    // finds two: neither is taken, nothing is created.
    orgform(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    let state = state_of(dir.path());
    assert_eq!(state["orgs"]["acme"]["status"], "pending", "{state}");
    assert!(state["orgs"]["acme"]["remote_id"].is_null(), "{state}");
    assert_eq!(served(&sandbox, "heron", "POST /api/crm_integrations"), 2);
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("blocked")
            && plan.stdout.contains(&mine)
            && plan.stdout.contains(&other),
        "{}",
        plan.stdout
    );
    // The way out the plan names: import settles the pending create on the one chosen.
    orgform(dir.path(), &["import", "acme", &mine]).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(state_of(dir.path())["orgs"]["acme"]["remote_id"], mine);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_never_settles_a_pending_create_on_an_id_another_address_holds() {
    let sandbox = start().await;
    // `acme` renamed in the specs, and a pending create of the new address in state.
    let (dir, id) = acme_applied_then_renamed(&sandbox);
    edit_state(dir.path(), |state| {
        let mut pending = state["orgs"]["acme"].clone();
        pending["status"] = "pending".into();
        pending.as_object_mut().expect("record").remove("remote_id");
        state["orgs"]["acme_renamed"] = pending;
    });

    let apply = orgform(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    let state = state_of(dir.path());
    assert!(
        state["orgs"]["acme_renamed"]["remote_id"].is_null(),
        "bound twice: {state}\n{}",
        apply.stderr
    );
    assert_eq!(state["orgs"]["acme"]["remote_id"], id.as_str());
    assert!(apply.stderr.contains("`acme`"), "{}", apply.stderr);
    assert_eq!(served(&sandbox, "heron", "POST /api/crm_integrations"), 1);
    sandbox.shutdown().await.expect("shutdown");
}
