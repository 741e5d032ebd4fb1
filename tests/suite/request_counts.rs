//! Remote reads in as few requests as each API allows, counted exactly on the sandbox side: a
//! plan sends at most the login plus one request per page of the largest page the API serves.

use std::path::Path;
use std::time::Duration;

use orgform::sandbox::salesforce::SalesforceConfig;
use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::e2e::{Run, start};

/// The sandbox's credentials and a placeholder for every other secret the tests' specs name.
pub(crate) const ENV: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("SF_USERNAME", orgform::sandbox::salesforce::USERNAME),
    ("SF_PASSWORD", orgform::sandbox::salesforce::PASSWORD),
    ("SF_CLIENT_ID", orgform::sandbox::salesforce::CLIENT_ID),
    (
        "SF_CLIENT_SECRET",
        orgform::sandbox::salesforce::CLIENT_SECRET,
    ),
    ("NEON_ORG_ID", orgform::sandbox::neoncrm::ORG_ID),
    ("NEON_API_KEY", orgform::sandbox::neoncrm::API_KEY),
    ("OCC_APP_KEY", orgform::sandbox::oracle::APP_KEY),
    ("CV_USERNAME", orgform::sandbox::commvault::USERNAME),
    ("CV_PASSWORD", orgform::sandbox::commvault::PASSWORD),
    ("SF_CONSUMER_SECRET", "x"),
    ("SF_TOKEN", "x"),
    ("DB_PASSWORD", "x"),
    ("S", "x"),
];

fn run(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run(dir, args, ENV)
}

/// Writes `n` organizations, numbered from 0, under `provider` in one spec file.
pub(crate) fn write(dir: &Path, provider: &str, org: impl Fn(usize) -> String, n: usize) {
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    let mut text = provider.to_string();
    for i in 0..n {
        text.push_str(&org(i));
    }
    std::fs::write(dir.join("specs/all.toml"), text).expect("write");
}

/// Requests the sandbox served for `provider`, all endpoints together.
fn served(sandbox: &Sandbox, provider: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get(provider)
        .map_or(0, |m| m.values().sum())
}

/// Applies, then counts what a plan alone sends.
fn plan_requests(sandbox: &Sandbox, dir: &Path, provider: &str) -> u64 {
    run(dir, &["apply", "--auto-approve", "--poll-interval", "10ms"]).expect(0);
    let before = served(sandbox, provider);
    run(dir, &["plan", "--detailed-exitcode"]).expect(0);
    served(sandbox, provider) - before
}

/// A sandbox with Heron's rate limit lifted.
async fn heron_sandbox() -> Sandbox {
    start(SandboxConfig {
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await
}

/// A Heron instance `name` on `sandbox`.
fn heron_provider(name: &str, sandbox: &Sandbox) -> String {
    format!(
        "[provider.{name}]\ntype = \"heron\"\nbase_url = \"{}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    )
}

/// A Heron organization `name` at the instance `provider`.
fn heron_org(name: &str, provider: &str) -> String {
    format!(
        "[org.{name}]\nprovider = \"{provider}\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{name}.example.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_reads_everything_in_one_call() {
    let sandbox = heron_sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &heron_provider("h", &sandbox),
        |i| heron_org(&format!("o{i}"), "h"),
        300,
    );
    assert_eq!(plan_requests(&sandbox, dir.path(), "heron"), 1);
    sandbox.shutdown().await.expect("shutdown");
}

/// From 200 names up, searching by name would take more than one request; listing takes one
/// page per 200 accounts.
#[tokio::test(flavor = "multi_thread")]
async fn neoncrm_reads_pages_of_two_hundred_after_one_login() {
    for n in [200, 450] {
        neoncrm_plan_of(n).await;
    }
}

async fn neoncrm_plan_of(n: usize) {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = format!(
        "[provider.n]\ntype = \"neoncrm\"\nbase_url = \"{}/neonws/services/api\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    );
    write(
        dir.path(),
        &provider,
        |i| {
            format!(
                "[org.o{i}]\nprovider = \"n\"\norganization_name = \"Organization number {i}\"\n"
            )
        },
        n,
    );
    // One login, then ceil(n / 200) pages.
    assert_eq!(
        plan_requests(&sandbox, dir.path(), "neoncrm"),
        1 + n.div_ceil(200) as u64,
        "{n} accounts"
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// From a few hundred usernames up, IN lists would take more than one query per 2,000.
#[tokio::test(flavor = "multi_thread")]
async fn salesforce_reads_pages_of_two_thousand_after_one_login() {
    for n in [1000, 2100] {
        salesforce_plan_of(n).await;
    }
}

/// A sandbox whose sign-ups settle at once, with no daily quota.
pub(crate) async fn salesforce_sandbox() -> Sandbox {
    start(SandboxConfig {
        salesforce: SalesforceConfig {
            new_for: Duration::ZERO,
            in_progress_for: Duration::ZERO,
            signups_per_day: u32::MAX,
            api_requests_per_day: u32::MAX,
            ..SalesforceConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await
}

/// A `salesforce_signup` instance `s` on `sandbox`, 32 requests at once.
pub(crate) fn salesforce_provider(sandbox: &Sandbox) -> String {
    format!(
        "[provider.s]\ntype = \"salesforce_signup\"\nbase_url = \"{}\"\nusername = {{ env = \"SF_USERNAME\" }}\npassword = {{ env = \"SF_PASSWORD\" }}\nclient_id = {{ env = \"SF_CLIENT_ID\" }}\nclient_secret = {{ env = \"SF_CLIENT_SECRET\" }}\nmax_concurrency = 32\ncreates_per_day = 100000\n",
        sandbox.base_url()
    )
}

/// Sign-up number `i` on instance `s`.
pub(crate) fn salesforce_org(i: usize) -> String {
    format!(
        "[org.o{i}]\nprovider = \"s\"\ncompany = \"Acme\"\ncountry = \"US\"\nlast_name = \"Doe\"\nsignup_email = \"a@acme.example\"\nusername = \"admin{i}@acme.example\"\nedition = \"Enterprise\"\n"
    )
}

async fn salesforce_plan_of(n: usize) {
    let sandbox = salesforce_sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = salesforce_provider(&sandbox);
    write(dir.path(), &provider, salesforce_org, n);
    // One login, ceil(n / 2000) pages, and one COUNT() of the day's sign-ups for the quota
    // (SOQL can't select a count beside records, so it can't ride on a page).
    assert_eq!(
        plan_requests(&sandbox, dir.path(), "salesforce"),
        1 + n.div_ceil(2000) as u64 + 1,
        "{n} sign-ups"
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// From about a hundred names up, `q` filters would take more than one request per 250.
#[tokio::test(flavor = "multi_thread")]
async fn oracle_reads_pages_of_two_hundred_fifty_after_one_login() {
    for n in [250, 300] {
        oracle_plan_of(n).await;
    }
}

async fn oracle_plan_of(n: usize) {
    let sandbox = start(SandboxConfig {
        oracle: orgform::sandbox::oracle::OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = format!(
        "[provider.o]\ntype = \"oracle_commerce\"\nbase_url = \"{}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    );
    write(
        dir.path(),
        &provider,
        |i| {
            format!(
                "[org.o{i}]\nprovider = \"o\"\nname = \"Registration {i}\"\nprofile = {{ email = \"buyer{i}@acme.example\", first_name = \"Dana\", last_name = \"Reyes\" }}\n"
            )
        },
        n,
    );
    // One login, then ceil(n / 250) pages.
    assert_eq!(
        plan_requests(&sandbox, dir.path(), "oracle_commerce"),
        1 + n.div_ceil(250) as u64,
        "{n} requests"
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// An apply reads the providers while the state loads: the instances the specs' organizations
/// use first, then an instance only state names (its organizations all orphans now), read as
/// before, once each; nothing is read twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_apply_reads_an_instance_only_state_names_once() {
    let sandbox = heron_sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let providers = heron_provider("h1", &sandbox) + &heron_provider("h2", &sandbox);
    let specs = dir.path().join("specs/all.toml");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(
        &specs,
        format!(
            "{providers}{}{}",
            heron_org("a", "h1"),
            heron_org("b", "h2")
        ),
    )
    .expect("write");
    run(dir.path(), &["apply", "--auto-approve"]).expect(0);
    // `b` is no longer declared; `h2` still is, and only state names it.
    std::fs::write(
        &specs,
        format!(
            "{providers}{}{}",
            heron_org("a", "h1"),
            heron_org("c", "h1")
        ),
    )
    .expect("write");
    let before = served(&sandbox, "heron");
    let out = run(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert!(out.stdout.contains("orphan"), "{}", out.stdout);
    assert!(out.stderr.contains("1 created"), "{}", out.stderr);
    // Both instances' lists, and the one create.
    assert_eq!(served(&sandbox, "heron") - before, 3);
    sandbox.shutdown().await.expect("shutdown");
}

/// The state is read while the providers are: a damaged state file still ends the apply with
/// the state's own error, and nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_state_ends_an_apply_with_its_own_error_and_creates_nothing() {
    let sandbox = heron_sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &heron_provider("h", &sandbox),
        |i| heron_org(&format!("o{i}"), "h"),
        3,
    );
    std::fs::create_dir_all(dir.path().join("state")).expect("mkdir");
    std::fs::write(
        dir.path().join("state/orgform.state.json"),
        "{\"version\": 2, \"orgs\": {",
    )
    .expect("write");
    let out = run(dir.path(), &["apply", "--auto-approve"]).expect(1);
    assert!(out.stderr.contains("orgform.state.json"), "{}", out.stderr);
    let created = sandbox
        .stats()
        .requests
        .get("heron")
        .and_then(|m| m.get("POST /api/crm_integrations").copied())
        .unwrap_or(0);
    assert_eq!(created, 0);
    sandbox.shutdown().await.expect("shutdown");
}
