//! Oracle Commerce Cloud reports attributes, and orgform compares them: an organization found
//! by its name whose reported attributes differ from the declared ones is `blocked` with the
//! diff, never adopted (direct mode: a request's list item reports only its name); one changed at OCC after orgform made it is `blocked` as
//! drift (direct mode, through OCC's `PUT /ccadmin/v1/organizations/{id}`); and `list_all`
//! reads every request or organization of the instance, in pages without a filter, each once
//! more where its list item lacks what OCC's read of one returns.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use orgform::model::{NaturalKey, SecretRef};
use orgform::providers::{AnyProvider, ConnectOptions, Provider};
use orgform::sandbox::oracle::{APP_KEY, OracleConfig};
use orgform::sandbox::{Sandbox, SandboxConfig};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

use crate::harness::Run;

const ENV: &[(&str, &str)] = &[("OCC_APP_KEY", APP_KEY)];

const LOGIN: &str = "POST /ccadmin/v1/login";
const REQUESTS: &str = "GET /ccadmin/v1/organizationRequests";
const ONE_REQUEST: &str = "GET /ccadmin/v1/organizationRequests/{id}";
const ORGANIZATIONS: &str = "GET /ccadmin/v1/organizations";
const ONE_ORGANIZATION: &str = "GET /ccadmin/v1/organizations/{id}";

fn orgform(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run_on(dir, args, ENV)
}

/// Requests decided at once, as a site that approves registrations automatically.
async fn start(oracle: OracleConfig) -> Sandbox {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sandbox::start(
        "127.0.0.1:0".parse().expect("addr"),
        SandboxConfig {
            oracle: OracleConfig {
                new_for: Duration::ZERO,
                review_for: Some(Duration::ZERO),
                ..oracle
            },
            seed: Some(20_261_203),
            ..SandboxConfig::default()
        },
    )
    .await
    .expect("sandbox starts")
}

fn hits(sandbox: &Sandbox, endpoint: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get("oracle_commerce")
        .and_then(|e| e.get(endpoint))
        .copied()
        .unwrap_or(0)
}

fn instance(sandbox: &Sandbox, extra: &str) -> String {
    format!(
        "[provider.occ]\ntype = \"oracle_commerce\"\nbase_url = \"{}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\n{extra}\n",
        sandbox.base_url()
    )
}

fn write_specs(dir: &Path, text: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(specs.join("occ.toml"), text).expect("write specs");
}

fn lose_state(dir: &Path) {
    std::fs::remove_file(dir.join("state.json")).expect("lose the state");
}

const DIRECT_ORGS: &str = r#"
[org.acme]
provider = "occ"
organization = { name = "Acme Corp", type = "company", customer_type = "Standard", description = "Anvils" }

[org.globex]
provider = "occ"
organization = { name = "Globex", customer_type = "OEM", duns_number = "123456789", secondary_addresses = [{ address_type = "Office", address = { city = "Springfield", country = "US" } }] }
"#;

fn request_orgs(comments: &str) -> String {
    format!(
        r#"
[org.acme]
provider = "occ"
name = "Acme registration"
requester_comments = "{comments}"
organization = {{ name = "Acme Corp", customer_type = "Standard" }}
profile = {{ email = "buyer@acme.example", first_name = "Dana", last_name = "Reyes" }}

[org.globex]
provider = "occ"
name = "Globex registration"
profile = {{ email = "buyer@globex.example", first_name = "Hank", last_name = "Scorpio" }}
"#
    )
}

/// The plan's JSON entry for `address`.
fn entry(plan: &Value, address: &str) -> Value {
    plan["changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|c| c["address"] == address))
        .cloned()
        .unwrap_or_else(|| panic!("no entry for {address} in {plan}"))
}

fn plan_json(dir: &Path) -> Value {
    let run = orgform(dir, &["plan", "--format", "json"]).expect(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_mode_adopts_what_matches_and_blocks_what_differs() {
    let sandbox = start(OracleConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    let specs = format!("{}{DIRECT_ORGS}", instance(&sandbox, "mode = \"direct\""));
    write_specs(dir, &specs);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    // What orgform sent reads back exactly: no false drift.
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);

    lose_state(dir);
    let reads = hits(&sandbox, ORGANIZATIONS);
    let plan = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(plan.stdout.contains("Plan: 2 to adopt."), "{}", plan.stdout);
    // Attributes come with the look-up: still one list request.
    assert_eq!(hits(&sandbox, ORGANIZATIONS), reads + 1);
    assert_eq!(hits(&sandbox, ONE_ORGANIZATION), 0);

    // Declared otherwise than OCC holds it: blocked with the diff, provider -> declared.
    write_specs(
        dir,
        &specs
            .replace("description = \"Anvils\"", "description = \"Rockets\"")
            .replace("customer_type = \"OEM\"", "customer_type = \"Supplier\""),
    );
    let plan = orgform(dir, &["plan"]).expect(0);
    assert!(plan.stdout.contains("blocked"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("organization.description"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("\"Anvils\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("\"Rockets\""), "{}", plan.stdout);
    let json = plan_json(dir);
    let acme = entry(&json, "acme");
    assert_eq!(acme["action"], "blocked", "{acme}");
    assert_eq!(
        acme["diff"],
        json!([{"path": "organization.description", "before": "Anvils", "after": "Rockets"}]),
        "{acme}"
    );
    let globex = entry(&json, "globex");
    assert_eq!(globex["action"], "blocked", "{globex}");
    assert_eq!(
        globex["diff"],
        json!([{"path": "organization.customer_type", "before": "OEM", "after": "Supplier"}]),
        "{globex}"
    );
    assert_eq!(hits(&sandbox, "POST /ccadmin/v1/organizations"), 2);
    sandbox.shutdown().await.expect("shutdown");
}

/// OCC's list of requests documents `{id, name, status, organization: {id}, profile: {id}}`:
/// nothing declarable but the name, which is the key. A plan's look-up stays one list request,
/// so in request mode it compares nothing and adopts by name; `list_all` (discover) reads each
/// request once and sees the rest.
#[tokio::test(flavor = "multi_thread")]
async fn request_mode_adopts_by_name_what_its_list_reports() {
    let sandbox = start(OracleConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    let specs = |comments: &str| format!("{}{}", instance(&sandbox, ""), request_orgs(comments));
    write_specs(dir, &specs("Please hurry"));
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);

    lose_state(dir);
    write_specs(dir, &specs("No hurry"));
    let reads = hits(&sandbox, REQUESTS);
    let plan = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(plan.stdout.contains("Plan: 2 to adopt."), "{}", plan.stdout);
    assert_eq!(hits(&sandbox, REQUESTS), reads + 1);
    assert_eq!(hits(&sandbox, ONE_REQUEST), 0);

    let reality = connect(&sandbox, "").list_all().await.expect("list_all");
    assert_eq!(
        by_name(&reality, "Acme registration")["requester_comments"],
        "Please hurry"
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_changed_at_occ_is_drift_in_every_format() {
    let sandbox = start(OracleConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    write_specs(
        dir,
        &format!("{}{DIRECT_ORGS}", instance(&sandbox, "mode = \"direct\"")),
    );
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).expect("state"))
            .expect("state json");
    let id = state["orgs"]["acme"]["remote_id"]
        .as_str()
        .expect("remote id")
        .to_string();

    // An administrator changes the organization at OCC.
    let admin = Admin::log_in(&sandbox).await;
    let changed = admin
        .send(
            reqwest::Method::PUT,
            &format!("/ccadmin/v1/organizations/{id}"),
            &json!({"customerType": "Preferred", "active": false}),
        )
        .await;
    assert_eq!(changed["customerType"], "Preferred", "{changed}");

    let text = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(text.stdout.contains("blocked"), "{}", text.stdout);
    assert!(text.stdout.contains("drift"), "{}", text.stdout);
    assert!(text.stdout.contains("\"Preferred\""), "{}", text.stdout);
    let json = plan_json(dir);
    let acme = entry(&json, "acme");
    assert_eq!(acme["action"], "blocked", "{acme}");
    assert_eq!(acme["remote_id"], id.as_str(), "{acme}");
    assert_eq!(
        acme["diff"],
        json!([{"path": "organization.customer_type", "before": "Preferred", "after": "Standard"}]),
        "{acme}"
    );
    assert_eq!(entry(&json, "globex")["action"], "unchanged");
    let markdown = orgform(dir, &["plan", "--format", "markdown"]).expect(0);
    assert!(
        markdown.stdout.contains("customer_type"),
        "{}",
        markdown.stdout
    );

    // Changed back, the plan is clean again.
    admin
        .send(
            reqwest::Method::PUT,
            &format!("/ccadmin/v1/organizations/{id}"),
            &json!({"customerType": "Standard"}),
        )
        .await;
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

/// OCC's admin API, called as an administrator (or another tool) would.
struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn log_in(sandbox: &Sandbox) -> Admin {
        let http = reqwest::Client::new();
        let base = sandbox.base_url();
        let token = crate::tolerant_oracle::admin_token(&http, &base).await;
        Admin { http, base, token }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(body);
        // The storefront's self-registration takes no admin token.
        if !path.starts_with("/ccstore") {
            request = request.bearer_auth(&self.token);
        }
        let response = request.send().await.expect("send");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }
}

fn connect(sandbox: &Sandbox, extra: &str) -> AnyProvider {
    let spec = Spec::load(&[SourceFile::new("occ.toml", instance(sandbox, extra))])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut overrides = BTreeMap::new();
    overrides.insert(
        SecretRef::Env("OCC_APP_KEY".into()),
        SecretString::new(APP_KEY),
    );
    let options = ConnectOptions {
        secrets: SecretResolver {
            overrides,
            ..SecretResolver::default()
        },
        ..ConnectOptions::default()
    };
    AnyProvider::connect(&spec.providers["occ"], &options).expect("connect")
}

/// More organizations than one page holds (250), made at OCC directly, some with attributes.
async fn organizations(sandbox: &Sandbox, n: usize) {
    let admin = Admin::log_in(sandbox).await;
    for i in 0..n {
        let body = if i % 100 == 0 {
            json!({"name": format!("Org {i}"), "customerType": "Distributor", "uniqueId": format!("U{i}"),
                   "secondaryAddresses": [{"addressType": "HQ", "address": {"city": "Austin", "types": ["billing"]}}]})
        } else {
            json!({"name": format!("Org {i}")})
        };
        admin
            .send(reqwest::Method::POST, "/ccadmin/v1/organizations", &body)
            .await;
    }
}

fn by_name(reality: &orgform::model::InstanceReality, name: &str) -> Value {
    let key = NaturalKey(name.into());
    let found = reality.find(&key);
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    Value::Object(found[0].attributes.to_json())
}

#[tokio::test(flavor = "multi_thread")]
async fn list_all_reads_every_organization_in_pages_with_its_attributes() {
    let sandbox = start(OracleConfig::default()).await;
    organizations(&sandbox, 260).await;
    let provider = connect(&sandbox, "mode = \"direct\"");
    let (logins, lists) = (hits(&sandbox, LOGIN), hits(&sandbox, ORGANIZATIONS));
    let reality = provider.list_all().await.expect("list_all");
    assert_eq!(reality.len(), 260);
    assert_eq!(
        by_name(&reality, "Org 200"),
        json!({"organization": {
            "customer_type": "Distributor",
            "name": "Org 200",
            "secondary_addresses": [{"address": {"city": "Austin", "types": ["billing"]}, "address_type": "HQ"}],
            "unique_id": "U200",
        }})
    );
    assert_eq!(
        by_name(&reality, "Org 7"),
        json!({"organization": {"name": "Org 7", "secondary_addresses": []}})
    );
    // The whole organizations are in the list: one login, two pages, no read of one.
    assert_eq!(hits(&sandbox, LOGIN) - logins, 1);
    assert_eq!(hits(&sandbox, ORGANIZATIONS) - lists, 2);
    assert_eq!(hits(&sandbox, ONE_ORGANIZATION), 0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_all_reads_each_organization_once_when_the_list_has_only_names() {
    let sandbox = start(OracleConfig {
        brief_organization_items: true,
        ..OracleConfig::default()
    })
    .await;
    organizations(&sandbox, 260).await;
    let provider = connect(&sandbox, "mode = \"direct\"\nmax_concurrency = 8");
    let lists = hits(&sandbox, ORGANIZATIONS);
    let reality = provider.list_all().await.expect("list_all");
    assert_eq!(reality.len(), 260);
    assert_eq!(
        by_name(&reality, "Org 100")["organization"]["customer_type"],
        "Distributor"
    );
    assert_eq!(
        by_name(&reality, "Org 7"),
        json!({"organization": {"name": "Org 7", "secondary_addresses": []}})
    );
    assert_eq!(hits(&sandbox, ORGANIZATIONS) - lists, 2);
    assert_eq!(hits(&sandbox, ONE_ORGANIZATION), 260);

    // A plan's look-up stays at its pages: brief items report only what they hold.
    let key = NaturalKey("Org 100".into());
    let read = provider
        .read(std::slice::from_ref(&key))
        .await
        .expect("read");
    assert_eq!(hits(&sandbox, ONE_ORGANIZATION), 260);
    assert_eq!(
        Value::Object(read.find(&key)[0].attributes.to_json()),
        json!({"organization": {"name": "Org 100"}})
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_all_reads_each_request_once_for_its_organization_and_profile() {
    let sandbox = start(OracleConfig::default()).await;
    let admin = Admin::log_in(&sandbox).await;
    for (name, email) in [
        ("Acme registration", "a@acme.example"),
        ("Please reject Initech", "i@initech.example"),
    ] {
        admin
            .send(
                reqwest::Method::POST,
                "/ccstore/v1/organizationRequests",
                &json!({
                    "name": name,
                    "requesterComments": "Some comments",
                    "organization": {"name": "Acme Corp", "customerType": "OEM",
                                     "secondaryAddresses": [{"addressType": "HQ", "address": {"city": "Austin"}}]},
                    "profile": {"email": email, "firstName": "Dana", "lastName": "Reyes"},
                }),
            )
            .await;
    }
    let provider = connect(&sandbox, "");
    let reality = provider.list_all().await.expect("list_all");
    assert_eq!(reality.len(), 2);
    assert_eq!(
        by_name(&reality, "Acme registration"),
        json!({
            "name": "Acme registration",
            "organization": {"customer_type": "OEM", "name": "Acme Corp",
                             "secondary_addresses": [{"address": {"city": "Austin"}, "address_type": "HQ"}]},
            "profile": {"email": "a@acme.example", "first_name": "Dana", "last_name": "Reyes"},
            "requester_comments": "Some comments",
        })
    );
    // The rejected request made nothing: it is listed, but not read again.
    assert_eq!(hits(&sandbox, REQUESTS), 1);
    assert_eq!(hits(&sandbox, ONE_REQUEST), 1);

    // What OCC documents, and no more: a list item names the organization and profile by id,
    // and so does a read of one without `expand`.
    let list = admin.get("/ccadmin/v1/organizationRequests").await;
    let item = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|r| r["status"] == "approved"))
        .expect("an approved request")
        .clone();
    let mut keys: Vec<&str> = item
        .as_object()
        .expect("an item")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "name", "organization", "profile", "status"]);
    let one = admin
        .get(&format!("/ccadmin/v1/organizationRequests/{}", item["id"]))
        .await;
    assert_eq!(one["requesterComments"], "Some comments", "{one}");
    assert_eq!(one["organization"], item["organization"], "{one}");
    assert_eq!(one["profile"], item["profile"], "{one}");
    sandbox.shutdown().await.expect("shutdown");
}
