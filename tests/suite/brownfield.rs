//! The brownfield round trip on all five providers, through the real binary: organizations
//! made through each vendor's own API (as a person, a script or another tool would, never
//! through orgform) are written as specs by `discover` into an empty folder; the specs
//! validate; the plan adopts every one and creates none; apply sends no create (counted at the
//! sandbox); the plan after is clean.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use orgform::sandbox::{HERON_API_KEY, Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::e2e::{start, stats};
use crate::exactly_once::{FIVE_ENV, five_providers};

/// The one instance of each type at the sandbox (the kill tests' own), Oracle's in direct mode:
/// its organizations are made through the admin API here.
fn providers(base_url: &str) -> String {
    format!("{}mode = \"direct\"\n", five_providers(base_url))
}

fn run(dir: &Path, args: &[&str]) -> crate::harness::Run {
    crate::harness::run(dir, args, FIVE_ENV)
}

async fn answer(request: reqwest::RequestBuilder, what: &str) -> Value {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{what}: HTTP {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

/// Two integrations through Heron's API.
async fn heron(http: &reqwest::Client, base: &str) {
    for (crm, url, live) in [
        ("salesforce", "https://acme.my.salesforce.com", true),
        ("hubspot", "https://app.hubspot.com/contacts/4711", false),
    ] {
        answer(
            http.post(format!("{base}/api/crm_integrations"))
                .header("x-api-key", HERON_API_KEY)
                .json(&json!({
                    "provider": crm, "instance_url": url, "auth": {"client_secret": "s"},
                    "secret": "w", "is_live": live,
                    "config": {"default_id": {"external_name": "Account", "alias": "Company"}},
                })),
            "heron create",
        )
        .await;
    }
}

/// Two Salesforce organizations protected through Commvault's Command Center API.
async fn commvault(http: &reqwest::Client, base: &str) {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let api = format!("{base}/commandcenter/api");
    let login = answer(
        http.post(format!("{api}/Login")).json(&json!({
            "username": orgform::sandbox::commvault::USERNAME,
            "password": b64(orgform::sandbox::commvault::PASSWORD),
        })),
        "commvault login",
    )
    .await;
    let token = login["token"].as_str().expect("token").to_string();
    for name in ["acme-sfdc-prod", "Globex-SFDC"] {
        answer(
            http.post(format!("{api}/Salesforce/Organization"))
                .header("Authtoken", &token)
                .header("accept", "application/json")
                .json(&json!({
                    "organizationName": name,
                    "plan": {"planName": "Salesforce Gold", "planId": 12, "entityInfo": {"companyId": 0}},
                    "accessNodes": [{"client": {"clientId": 7, "clientName": "accessnode01"}}],
                    "salesforceAccount": {
                        "environmentType": 0, "authenticationType": 2,
                        "userCredentials": {"userName": "backup@acme.example", "password": b64("pw")},
                        "consumerId": "3MVG9acme", "consumerSecret": b64("cs"),
                        "endpoint": "https://login.salesforce.com",
                    },
                    "downloadCachePath": "/opt/cache",
                    "syncDatabase": {
                        "dbEnabled": true, "dbType": "3", "dbHost": "db01", "dbPort": "5432",
                        "dbName": "sfsync", "dbUserPassword": {"userName": "sf", "password": b64("pw")},
                    },
                    "useResourcePoolInfo": false,
                })),
            "commvault create",
        )
        .await;
    }
}

/// Two Trialforce sign-ups through Salesforce's REST API.
async fn salesforce(http: &reqwest::Client, sandbox: &Sandbox) {
    let token = crate::provider_salesforce::sandbox_token(http, sandbox).await;
    let instance = token["instance_url"].as_str().expect("instance_url");
    let bearer = token["access_token"].as_str().expect("access_token");
    for (username, company) in [
        ("admin@acme-trial.example", "Acme"),
        ("ops@globex-trial.example", "Globex"),
    ] {
        answer(
            http.post(format!(
                "{instance}/services/data/v60.0/sobjects/SignupRequest/"
            ))
            .bearer_auth(bearer)
            .json(&json!({
                "Username": username, "SignupEmail": "owner@example.com", "Company": company,
                "Country": "US", "LastName": "Doe", "FirstName": "Jane", "Edition": "Enterprise",
                "TrialDays": 30,
            })),
            "salesforce create",
        )
        .await;
    }
    // And one that fails (its template is not found): no organization, never written.
    answer(
        http.post(format!(
            "{instance}/services/data/v60.0/sobjects/SignupRequest/"
        ))
        .bearer_auth(bearer)
        .json(&json!({
            "Username": "admin@failed-trial.example", "SignupEmail": "owner@example.com",
            "Company": "Failed", "Country": "US", "LastName": "Doe",
            "TemplateId": "0TT000000000404",
        })),
        "salesforce create",
    )
    .await;
}

/// Two organizations through Oracle Commerce's admin API.
async fn oracle(http: &reqwest::Client, base: &str) {
    let token = crate::tolerant_oracle::admin_token(http, base).await;
    for (name, kind) in [
        ("Harbor Health Group", "company"),
        ("Northwind Supply", "division"),
    ] {
        answer(
            http.post(format!("{base}/ccadmin/v1/organizations"))
                .bearer_auth(&token)
                .json(&json!({
                    "name": name, "customerType": "Enterprise", "type": kind,
                    "dunsNumber": "123456789", "active": true,
                })),
            "oracle create",
        )
        .await;
    }
}

/// Creates made at the sandbox, per provider.
async fn creates(sandbox: &Sandbox) -> Vec<(String, u64)> {
    let stats = stats(sandbox).await;
    let mut out = Vec::new();
    for (provider, endpoints) in stats["requests"].as_object().into_iter().flatten() {
        let sent: u64 = endpoints
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(endpoint, _)| {
                endpoint.starts_with("POST ")
                    && !endpoint.contains("login")
                    && !endpoint.contains("Login")
                    && !endpoint.contains("oauth2")
                    || endpoint.contains("createOrganizationAccount")
            })
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum();
        out.push((provider.clone(), sent));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_made_through_each_vendors_api_are_discovered_and_adopted_with_no_create() {
    let mut config = SandboxConfig::default();
    // Sign-ups that finish at once: a discovered organization is one that exists.
    config.salesforce.new_for = Duration::ZERO;
    config.salesforce.in_progress_for = Duration::ZERO;
    let sandbox = start(config).await;
    let base = sandbox.base_url();
    let http = reqwest::Client::new();
    heron(&http, &base).await;
    commvault(&http, &base).await;
    salesforce(&http, &sandbox).await;
    crate::provider_neoncrm::create_directly(&sandbox, "Grace Community Church").await;
    crate::provider_neoncrm::create_directly(&sandbox, "1905 Historical Society").await;
    oracle(&http, &base).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/providers.toml"), providers(&base)).expect("specs");

    let discovered = run(
        dir,
        &["discover", "--out", "specs/discovered", "--format", "json"],
    )
    .expect(0);
    let report: Value = serde_json::from_str(&discovered.stdout).expect("JSON report");
    for p in report["providers"].as_array().expect("providers") {
        let failed = i32::from(p["provider"] == "salesforce");
        assert_eq!(p["found"], 2 + failed, "{p}");
        assert_eq!(p["failed"], failed, "{p}");
        assert_eq!(p["addresses"].as_array().map(Vec::len), Some(2), "{p}");
    }
    // Each file whole: what a team reviews before keeping it.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"crm_[0-9a-f]{16}", "[heron id]");
    for name in ["heron", "commvault", "salesforce", "neoncrm", "oracle"] {
        let text = std::fs::read_to_string(dir.join(format!("specs/discovered/{name}.toml")))
            .unwrap_or_else(|e| panic!("{name}.toml: {e}"));
        assert!(text.contains(&format!("provider = \"{name}\"")), "{text}");
        settings.bind(|| insta::assert_snapshot!(format!("discovered_{name}"), text));
    }

    run(dir, &["validate"]).expect(0);
    // What the reviewer of the discovered files sees: every one adopted, none created.
    let text = run(dir, &["plan"]).expect(0);
    let mut shown = crate::harness::snapshot_settings(&[dir]);
    shown.add_filter(r"crm_[0-9a-f]{16}", "[heron id]");
    shown.bind(|| insta::assert_snapshot!("plan_after_discover", text.stdout));
    let plan: Value =
        serde_json::from_str(&run(dir, &["plan", "--format", "json"]).expect(0).stdout)
            .expect("plan JSON");
    let actions: Vec<(&str, &str)> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default(),
                c["action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(actions.len(), 10, "{plan}");
    assert!(
        actions.iter().all(|(_, action)| *action == "adopt"),
        "every discovered organization is adopted: {actions:?}"
    );

    let before = creates(&sandbox).await;
    let applied = run(dir, &["apply", "--auto-approve"]).expect(0);
    assert!(
        applied.stderr.contains("0 created, 10 adopted"),
        "{}",
        applied.stderr
    );
    assert_eq!(creates(&sandbox).await, before, "apply sends no create");
    let clean = run(dir, &["plan", "--detailed-exitcode"]).expect(0);
    shown.bind(|| insta::assert_snapshot!("plan_after_adopting", clean.stdout));
}
