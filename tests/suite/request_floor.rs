//! An apply at the request floor, counted exactly on the sandbox side: the creates, the login
//! and the bulk read that decided them (login + pages), and no look-up per create where that read
//! already answered; a create whose answer was lost costs exactly one look-up more.

use std::path::Path;
use std::time::Duration;

use orgform::sandbox::commvault::CommvaultConfig;
use orgform::sandbox::neoncrm::NeonConfig;
use orgform::sandbox::oracle::OracleConfig;
use orgform::sandbox::salesforce::SalesforceConfig;
use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::e2e::{Run, start};

const ENV: &[(&str, &str)] = &[
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
    ("S", "x"),
];

/// Organizations per apply: more than one page of every provider's bulk read but Salesforce's.
const N: usize = 450;

fn apply(dir: &Path) -> Run {
    crate::harness::run(
        dir,
        &["apply", "--auto-approve", "--poll-interval", "10ms"],
        ENV,
    )
}

fn write(dir: &Path, provider: &str, org: impl Fn(usize) -> String) {
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    let mut text = provider.to_string();
    for i in 0..N {
        text.push_str(&org(i));
    }
    std::fs::write(dir.join("specs/all.toml"), text).expect("write");
}

/// Requests the sandbox served for `provider`, per endpoint.
fn served(sandbox: &Sandbox, provider: &str) -> std::collections::BTreeMap<String, u64> {
    sandbox
        .stats()
        .requests
        .get(provider)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Asserts the requests on `provider`'s endpoints, every one named (an endpoint not named must
/// not have been called).
fn assert_served(sandbox: &Sandbox, provider: &str, expected: &[(&str, u64)]) {
    let expected: std::collections::BTreeMap<String, u64> = expected
        .iter()
        .map(|(endpoint, n)| ((*endpoint).to_string(), *n))
        .collect();
    assert_eq!(served(sandbox, provider), expected, "{provider}");
}

fn pages(n: usize, page: usize) -> u64 {
    n.div_ceil(page) as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_apply_sends_the_creates_and_one_list() {
    let sandbox = start(SandboxConfig {
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = format!(
        "[provider.h]\ntype = \"heron\"\nbase_url = \"{}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    );
    write(dir.path(), &provider, |i| {
        format!(
            "[org.o{i}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://o{i}.example.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n"
        )
    });
    apply(dir.path()).expect(0);
    assert_served(
        &sandbox,
        "heron",
        &[
            ("GET /api/crm_integrations", 1),
            ("POST /api/crm_integrations", N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

fn neon_specs(dir: &Path, sandbox: &Sandbox) {
    let provider = format!(
        "[provider.n]\ntype = \"neoncrm\"\nbase_url = \"{}/neonws/services/api\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    );
    write(dir, &provider, |i| {
        format!("[org.o{i}]\nprovider = \"n\"\norganization_name = \"Organization number {i}\"\n")
    });
}

const NEON_LOGIN: &str = "GET /neonws/services/api/common/login";
const NEON_LIST: &str = "GET /neonws/services/api/account/listAccounts";
const NEON_CREATE: &str = "GET /neonws/services/api/account/createOrganizationAccount";

/// The plan's read found every name absent: no `listAccounts` per create.
#[tokio::test(flavor = "multi_thread")]
async fn neoncrm_apply_looks_nothing_up_that_its_read_answered() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    neon_specs(dir.path(), &sandbox);
    apply(dir.path()).expect(0);
    assert_served(
        &sandbox,
        "neoncrm",
        &[
            (NEON_LOGIN, 1),
            (NEON_LIST, pages(N, 200)),
            (NEON_CREATE, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// A create whose answer was lost is settled by exactly one look-up, and not sent again.
#[tokio::test(flavor = "multi_thread")]
async fn neoncrm_a_lost_answer_costs_exactly_one_look_up() {
    let sandbox = start(SandboxConfig {
        neoncrm: NeonConfig {
            lose_create_answers: 1,
            ..NeonConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    neon_specs(dir.path(), &sandbox);
    apply(dir.path()).expect(0);
    assert_served(
        &sandbox,
        "neoncrm",
        &[
            (NEON_LOGIN, 1),
            (NEON_LIST, pages(N, 200) + 1),
            (NEON_CREATE, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

fn commvault_specs(dir: &Path, sandbox: &Sandbox) {
    let provider = format!(
        "[provider.cv]\ntype = \"commvault_salesforce\"\nbase_url = \"{}/commandcenter/api\"\nusername = {{ env = \"CV_USERNAME\" }}\npassword = {{ env = \"CV_PASSWORD\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    );
    write(dir, &provider, |i| {
        format!(
            "[org.o{i}]\nprovider = \"cv\"\norganization_name = \"Org {i}\"\ndownload_cache_path = \"/opt/cvcache/o{i}\"\nuse_resource_pool_info = false\nplan = {{ plan_name = \"Server plan\", plan_id = 12 }}\naccess_nodes = [{{ client = {{ client_id = 7, client_name = \"accessnode01\" }} }}]\n"
        )
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn commvault_apply_sends_the_creates_a_login_and_one_list() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    commvault_specs(dir.path(), &sandbox);
    apply(dir.path()).expect(0);
    let served = served(&sandbox, "commvault_salesforce");
    let creates: u64 = served
        .iter()
        .filter(|(endpoint, _)| endpoint.starts_with("POST") && endpoint.ends_with("/salesforce/organizations"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(creates, N as u64, "{served:?}");
    // The rest: the login and the list, once each.
    assert_eq!(served.values().sum::<u64>(), N as u64 + 2, "{served:?}");
    sandbox.shutdown().await.expect("shutdown");
}

/// A lost answer on Commvault is settled by one look-up (its one list).
#[tokio::test(flavor = "multi_thread")]
async fn commvault_a_lost_answer_costs_exactly_one_look_up() {
    let sandbox = start(SandboxConfig {
        commvault: CommvaultConfig {
            lose_create_answers: 1,
            ..CommvaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    commvault_specs(dir.path(), &sandbox);
    apply(dir.path()).expect(0);
    let served = served(&sandbox, "commvault_salesforce");
    assert_eq!(served.values().sum::<u64>(), N as u64 + 3, "{served:?}");
    sandbox.shutdown().await.expect("shutdown");
}

fn oracle_specs(dir: &Path, sandbox: &Sandbox, mode: &str) {
    let provider = format!(
        "[provider.o]\ntype = \"oracle_commerce\"\nbase_url = \"{}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\nmax_concurrency = 16\nmode = \"{mode}\"\n",
        sandbox.base_url()
    );
    write(dir, &provider, |i| match mode {
        "direct" => format!(
            "[org.o{i}]\nprovider = \"o\"\norganization = {{ name = \"Organization {i}\" }}\n"
        ),
        _ => format!(
            "[org.o{i}]\nprovider = \"o\"\nname = \"Registration {i}\"\nprofile = {{ email = \"buyer{i}@acme.example\", first_name = \"Dana\", last_name = \"Reyes\" }}\n"
        ),
    });
}

const OCC_LOGIN: &str = "POST /ccadmin/v1/login";
const OCC_ORGANIZATIONS: &str = "GET /ccadmin/v1/organizations";
const OCC_CREATE_ORGANIZATION: &str = "POST /ccadmin/v1/organizations";
const OCC_REQUESTS: &str = "GET /ccadmin/v1/organizationRequests";
const OCC_CREATE_REQUEST: &str = "POST /ccstore/v1/organizationRequests";

#[tokio::test(flavor = "multi_thread")]
async fn oracle_direct_apply_looks_nothing_up_that_its_read_answered() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    oracle_specs(dir.path(), &sandbox, "direct");
    apply(dir.path()).expect(0);
    assert_served(
        &sandbox,
        "oracle_commerce",
        &[
            (OCC_LOGIN, 1),
            (OCC_ORGANIZATIONS, pages(N, 250)),
            (OCC_CREATE_ORGANIZATION, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn oracle_direct_a_lost_answer_costs_exactly_one_look_up() {
    let sandbox = start(SandboxConfig {
        oracle: OracleConfig {
            lose_create_answers: 1,
            ..OracleConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    oracle_specs(dir.path(), &sandbox, "direct");
    apply(dir.path()).expect(0);
    assert_served(
        &sandbox,
        "oracle_commerce",
        &[
            (OCC_LOGIN, 1),
            (OCC_ORGANIZATIONS, pages(N, 250) + 1),
            (OCC_CREATE_ORGANIZATION, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// Requests approved at once: the creates, then one look at all of them together (a bulk read,
/// not one per request), which records them created.
#[tokio::test(flavor = "multi_thread")]
async fn oracle_requests_are_looked_at_once_together() {
    let sandbox = start(SandboxConfig {
        oracle: OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            ..OracleConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    oracle_specs(dir.path(), &sandbox, "request");
    let run = apply(dir.path()).expect(0);
    assert!(
        run.stderr.contains(&format!("{N} created")),
        "{}",
        run.stderr
    );
    assert_served(
        &sandbox,
        "oracle_commerce",
        &[
            (OCC_LOGIN, 1),
            (OCC_REQUESTS, 2 * pages(N, 250)),
            (OCC_CREATE_REQUEST, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// Sign-ups polled in rounds: each round one bulk read of every sign-up in flight, never one
/// query per sign-up.
#[tokio::test(flavor = "multi_thread")]
async fn salesforce_sign_ups_are_polled_in_bulk() {
    let sandbox = start(SandboxConfig {
        salesforce: SalesforceConfig {
            new_for: Duration::ZERO,
            in_progress_for: Duration::ZERO,
            signups_per_day: u32::MAX,
            api_requests_per_day: u32::MAX,
            ..SalesforceConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = format!(
        "[provider.s]\ntype = \"salesforce_signup\"\nbase_url = \"{}\"\nusername = {{ env = \"SF_USERNAME\" }}\npassword = {{ env = \"SF_PASSWORD\" }}\nclient_id = {{ env = \"SF_CLIENT_ID\" }}\nclient_secret = {{ env = \"SF_CLIENT_SECRET\" }}\nmax_concurrency = 32\ncreates_per_day = 100000\n",
        sandbox.base_url()
    );
    write(dir.path(), &provider, |i| {
        format!(
            "[org.o{i}]\nprovider = \"s\"\ncompany = \"Acme\"\ncountry = \"US\"\nlast_name = \"Doe\"\nsignup_email = \"a@acme.example\"\nusername = \"admin{i}@acme.example\"\nedition = \"Enterprise\"\n"
        )
    });
    let run = apply(dir.path()).expect(0);
    assert!(
        run.stderr.contains(&format!("{N} created")),
        "{}",
        run.stderr
    );
    let served = served(&sandbox, "salesforce");
    let creates: u64 = served
        .iter()
        .filter(|(endpoint, _)| endpoint.starts_with("POST") && endpoint.contains("SignupRequest"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(creates, N as u64, "{served:?}");
    let reads: u64 = served
        .iter()
        .filter(|(endpoint, _)| endpoint.starts_with("GET"))
        .map(|(_, n)| n)
        .sum();
    // The plan's page and the quota's COUNT(), then a bulk read per poll round: a few rounds
    // while 450 sign-ups are sent, far fewer than a query each.
    assert!(reads <= 2 + 20, "{served:?}");
    sandbox.shutdown().await.expect("shutdown");
}
