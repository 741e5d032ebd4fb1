//! An apply at the request floor, counted exactly on the sandbox side: the creates, the login
//! and the bulk read that decided them (login + pages), and no look-up per create where that read
//! already answered; a create whose answer was lost costs exactly one look-up more.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use orgform::sandbox::commvault::CommvaultConfig;
use orgform::sandbox::neoncrm::NeonConfig;
use orgform::sandbox::oracle::OracleConfig;
use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::e2e::{Run, start};
use crate::request_counts::{ENV, salesforce_org, salesforce_provider, salesforce_sandbox, write};

/// Organizations per apply: more than one page of every provider's bulk read but Salesforce's.
const N: usize = 450;

fn apply(dir: &Path) -> Run {
    crate::harness::run(
        dir,
        &["apply", "--auto-approve", "--poll-interval", "10ms"],
        ENV,
    )
}

type Served = BTreeMap<String, u64>;

/// Applies `N` organizations, then `N` more on top of them, and returns what the second apply
/// sent: its bulk read has pages to read.
fn second_apply(sandbox: &Sandbox, dir: &Path, provider: &str, org: fn(usize) -> String) -> Served {
    let stats_name = stats_name(provider);
    write(dir, provider, org, N);
    apply(dir).expect(0);
    let before = served(sandbox, stats_name);
    write(dir, provider, org, 2 * N);
    let run = apply(dir).expect(0);
    assert!(
        run.stderr.contains(&format!("{N} created")),
        "{}",
        run.stderr
    );
    let mut after = served(sandbox, stats_name);
    for (endpoint, n) in before {
        if let Some(m) = after.get_mut(&endpoint) {
            *m -= n;
        }
    }
    after.retain(|_, n| *n > 0);
    after
}

/// The sandbox's stats name of the provider a `[provider.NAME]` text declares.
fn stats_name(provider: &str) -> &'static str {
    [
        "heron",
        "neoncrm",
        "commvault_salesforce",
        "oracle_commerce",
        "salesforce",
    ]
    .into_iter()
    .find(|t| provider.contains(&format!("type = \"{t}")))
    .unwrap_or("salesforce")
}

/// Requests the sandbox served for `provider`, per endpoint.
fn served(sandbox: &Sandbox, provider: &str) -> Served {
    sandbox
        .stats()
        .requests
        .get(provider)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Every endpoint called, with its count (an endpoint not named must not have been called).
fn expect(served: &Served, expected: &[(&str, u64)]) {
    let expected: Served = expected
        .iter()
        .map(|(endpoint, n)| ((*endpoint).to_string(), *n))
        .collect();
    assert_eq!(*served, expected);
}

fn pages(n: usize, page: usize) -> u64 {
    n.div_ceil(page) as u64
}

fn heron_org(i: usize) -> String {
    format!(
        "[org.o{i}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://o{i}.example.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n"
    )
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
    let served = second_apply(&sandbox, dir.path(), &provider, heron_org);
    expect(
        &served,
        &[
            ("GET /api/crm_integrations", 1),
            ("POST /api/crm_integrations", N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

fn neon_provider(sandbox: &Sandbox) -> String {
    format!(
        "[provider.n]\ntype = \"neoncrm\"\nbase_url = \"{}/neonws/services/api\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    )
}

fn neon_org(i: usize) -> String {
    format!("[org.o{i}]\nprovider = \"n\"\norganization_name = \"Organization number {i}\"\n")
}

const NEON_LOGIN: &str = "GET /neonws/services/api/common/login";
const NEON_LIST: &str = "GET /neonws/services/api/account/listAccounts";
const NEON_CREATE: &str = "GET /neonws/services/api/account/createOrganizationAccount";

/// The apply's read found every name absent: no `listAccounts` per create.
#[tokio::test(flavor = "multi_thread")]
async fn neoncrm_apply_looks_nothing_up_that_its_read_answered() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let served = second_apply(&sandbox, dir.path(), &neon_provider(&sandbox), neon_org);
    expect(
        &served,
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
    write(dir.path(), &neon_provider(&sandbox), neon_org, N);
    apply(dir.path()).expect(0);
    // The read of an empty instance is one page; then the one look-up.
    expect(
        &served(&sandbox, "neoncrm"),
        &[(NEON_LOGIN, 1), (NEON_LIST, 1 + 1), (NEON_CREATE, N as u64)],
    );
    sandbox.shutdown().await.expect("shutdown");
}

fn commvault_provider(sandbox: &Sandbox) -> String {
    format!(
        "[provider.cv]\ntype = \"commvault_salesforce\"\nbase_url = \"{}/commandcenter/api\"\nusername = {{ env = \"CV_USERNAME\" }}\npassword = {{ env = \"CV_PASSWORD\" }}\nmax_concurrency = 16\n",
        sandbox.base_url()
    )
}

fn commvault_org(i: usize) -> String {
    format!(
        r#"
[org.o{i}]
provider = "cv"
organization_name = "Org {i}"
download_cache_path = "/opt/cvcache/o{i}"
use_resource_pool_info = false
plan = {{ plan_name = "Server plan", plan_id = 12, entity_info = {{ company_id = 0, company_name = "Commcell", multi_commcell_id = 0 }} }}
access_nodes = [{{ client = {{ client_id = 7, client_name = "accessnode01", _type_ = 3 }} }}]

[org.o{i}.salesforce_account]
environment_type = 0
authentication_type = 2
user_credentials = {{ user_name = "backup@o{i}.example", password = {{ env = "SF_PASSWORD" }} }}
consumer_id = "3MVG9o{i}"
consumer_secret = {{ env = "SF_CONSUMER_SECRET" }}
endpoint = "https://login.salesforce.com"
token = {{ env = "SF_TOKEN" }}

[org.o{i}.sync_database]
db_enabled = true
db_type = "3"
db_host = "db01"
db_port = "5432"
db_name = "sfsync"
db_user_password = {{ user_name = "sf", password = {{ env = "DB_PASSWORD" }} }}
"#
    )
}

/// The creates, and the rest a login and one list of everything.
fn expect_commvault(served: &Served, looks: u64) {
    let creates: u64 = served
        .iter()
        .filter(|(endpoint, _)| endpoint.starts_with("POST") && !endpoint.contains("Login"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(creates, N as u64, "{served:?}");
    assert_eq!(
        served.values().sum::<u64>(),
        N as u64 + 2 + looks,
        "{served:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commvault_apply_sends_the_creates_a_login_and_one_list() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let served = second_apply(
        &sandbox,
        dir.path(),
        &commvault_provider(&sandbox),
        commvault_org,
    );
    expect_commvault(&served, 0);
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
    write(dir.path(), &commvault_provider(&sandbox), commvault_org, N);
    apply(dir.path()).expect(0);
    expect_commvault(&served(&sandbox, "commvault_salesforce"), 1);
    sandbox.shutdown().await.expect("shutdown");
}

fn oracle_provider(sandbox: &Sandbox, mode: &str) -> String {
    format!(
        "[provider.o]\ntype = \"oracle_commerce\"\nbase_url = \"{}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\nmax_concurrency = 16\nmode = \"{mode}\"\n",
        sandbox.base_url()
    )
}

fn occ_organization(i: usize) -> String {
    format!("[org.o{i}]\nprovider = \"o\"\norganization = {{ name = \"Organization {i}\" }}\n")
}

fn occ_request(i: usize) -> String {
    format!(
        "[org.o{i}]\nprovider = \"o\"\nname = \"Registration {i}\"\nprofile = {{ email = \"buyer{i}@acme.example\", first_name = \"Dana\", last_name = \"Reyes\" }}\n"
    )
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
    let provider = oracle_provider(&sandbox, "direct");
    let served = second_apply(&sandbox, dir.path(), &provider, occ_organization);
    expect(
        &served,
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
    write(
        dir.path(),
        &oracle_provider(&sandbox, "direct"),
        occ_organization,
        N,
    );
    apply(dir.path()).expect(0);
    expect(
        &served(&sandbox, "oracle_commerce"),
        &[
            (OCC_LOGIN, 1),
            (OCC_ORGANIZATIONS, 1 + 1),
            (OCC_CREATE_ORGANIZATION, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// Requests approved at once: the creates, then one look at all of them together once they are
/// sent (a bulk read, not one per request), which records them created.
#[tokio::test(flavor = "multi_thread")]
async fn oracle_requests_are_looked_at_once_together() {
    requests_looked_at_together(OracleConfig::default().max_limit).await;
}

/// The same in pages of 10 (a site whose `limit` is capped): the read and the look each page
/// through their list at one request a page, more pages than are asked for at once, every
/// request recorded from the page it was read on.
#[tokio::test(flavor = "multi_thread")]
async fn oracle_requests_are_looked_at_a_page_at_a_time_in_small_pages() {
    requests_looked_at_together(10).await;
}

/// A second apply of N requests on top of N, the site's pages at most `max_limit`: the plan's
/// read lists the N requests there are, the look after lists the 2N there are.
async fn requests_looked_at_together(max_limit: u64) {
    let sandbox = start(SandboxConfig {
        oracle: OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            max_limit,
            ..OracleConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = oracle_provider(&sandbox, "request");
    let served = second_apply(&sandbox, dir.path(), &provider, occ_request);
    let page = usize::try_from(max_limit).expect("a page size");
    expect(
        &served,
        &[
            (OCC_LOGIN, 1),
            (OCC_REQUESTS, pages(N, page) + pages(2 * N, page)),
            (OCC_CREATE_REQUEST, N as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}

const SF_TOKEN: &str = "POST /services/oauth2/token";
const SF_QUERY: &str = "GET /services/data/{version}/query";
const SF_QUERY_MORE: &str = "GET /services/data/{version}/query/{locator}";
const SF_QUERY_ALL: &str = "GET /services/data/{version}/queryAll";
const SF_CREATE: &str = "POST /services/data/{version}/sobjects/SignupRequest/";

/// Sign-ups are looked at once the instance's creates are all sent, together: one query of
/// every sign-up, a SOQL page per 2,000 (here 2,001 sign-ups: two pages), never a query per
/// sign-up nor a round per handful while the creates go out. With the plan's read (one page of
/// an empty org) and the quota's `COUNT()`, that is the benchmark's floor.
#[tokio::test(flavor = "multi_thread")]
async fn salesforce_sign_ups_are_settled_by_one_read_once_they_are_sent() {
    const SIGN_UPS: usize = 2001;
    let sandbox = salesforce_sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = salesforce_provider(&sandbox);
    write(dir.path(), &provider, salesforce_org, SIGN_UPS);
    let run = apply(dir.path()).expect(0);
    assert!(
        run.stderr.contains(&format!("{SIGN_UPS} created")),
        "{}",
        run.stderr
    );
    expect(
        &served(&sandbox, "salesforce"),
        &[
            (SF_TOKEN, 1),
            (SF_QUERY_ALL, 1),
            (SF_QUERY, 1 + 1),
            (SF_QUERY_MORE, 1),
            (SF_CREATE, SIGN_UPS as u64),
        ],
    );
    sandbox.shutdown().await.expect("shutdown");
}
