//! What Commvault's list reports is compared with what is declared (issue 15): the list
//! (`GET /Salesforce/Organization`, providers.md §1.4) gives each organization's name and its
//! Salesforce login endpoint (`endPoint`), read back as `organization_name` and
//! `salesforce_account.endpoint`. Through the real binary against the sandbox: an adopt whose
//! endpoint differs is `blocked` with the diff (a name in another case is not a difference: it
//! is the natural key, matched without case), an endpoint changed at the sandbox is drift in
//! every plan format, and `list_all` reports every organization with its attributes (one
//! request: the list has no pages).

use std::path::Path;

use orgform::model::SecretRef;
use orgform::providers::{AnyProvider, ConnectOptions, Provider};
use orgform::sandbox::SandboxConfig;
use orgform::sandbox::commvault::{PASSWORD, USERNAME};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

use crate::e2e::{served, start};

const SF_PASSWORD: &str = "s3cret-salesforce-password";
const SF_CONSUMER_SECRET: &str = "s3cret-consumer-secret";

const ENV: &[(&str, &str)] = &[
    ("CV_USERNAME", USERNAME),
    ("CV_PASSWORD", PASSWORD),
    ("SF_PASSWORD", SF_PASSWORD),
    ("SF_CONSUMER_SECRET", SF_CONSUMER_SECRET),
];

const SANDBOX_LOGIN: &str = "https://test.salesforce.com";
const MY_DOMAIN: &str = "https://acme--uat.sandbox.my.salesforce.com";

const LIST: &str = "GET /commandcenter/api/Salesforce/Organization";
const CREATE: &str = "POST /commandcenter/api/Salesforce/Organization";

/// One declared organization: its address, its name and, if declared, its endpoint.
struct Org<'a> {
    address: &'a str,
    name: &'a str,
    endpoint: Option<&'a str>,
}

const ACME: Org<'static> = Org {
    address: "acme",
    name: "Acme-SFDC",
    endpoint: Some(SANDBOX_LOGIN),
};
const GLOBEX: Org<'static> = Org {
    address: "globex",
    name: "globex-sfdc",
    endpoint: None,
};

fn specs_text(base_url: &str, orgs: &[Org<'_>]) -> String {
    let mut text = format!(
        "[provider.cv]\ntype = \"commvault_salesforce\"\nbase_url = \"{base_url}/commandcenter/api\"\nusername = {{ env = \"CV_USERNAME\" }}\npassword = {{ env = \"CV_PASSWORD\" }}\nmax_concurrency = 2\n"
    );
    for org in orgs {
        let endpoint = org.endpoint.map_or(String::new(), |e| {
            format!("environment_type = 1\nendpoint = \"{e}\"\n")
        });
        text.push_str(&format!(
            r#"
[org.{address}]
provider = "cv"
organization_name = "{name}"
download_cache_path = "/cache/{address}"
plan = {{ plan_name = "Server plan", plan_id = 12, entity_info = {{ company_id = 0 }} }}

[org.{address}.salesforce_account]
authentication_type = 2
user_credentials = {{ user_name = "backup@{address}.example", password = {{ env = "SF_PASSWORD" }} }}
consumer_id = "key-{address}"
consumer_secret = {{ env = "SF_CONSUMER_SECRET" }}
{endpoint}"#,
            address = org.address,
            name = org.name,
        ));
    }
    text
}

/// `DIR/specs/cv.toml` with these organizations, at the sandbox's `base_url`.
fn write_specs(dir: &Path, base_url: &str, orgs: &[Org<'_>]) {
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/cv.toml"), specs_text(base_url, orgs)).expect("write specs");
}

fn orgform(dir: &Path, args: &[&str]) -> crate::harness::Run {
    crate::harness::run_on(dir, args, ENV)
}

fn forget_state(dir: &Path) {
    std::fs::remove_file(dir.join("state.json")).expect("forget state");
}

/// The one change of `address` in a `--format json` plan.
fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|c| c["address"] == address))
        .unwrap_or_else(|| panic!("no change for {address} in {plan}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adopt_whose_reported_endpoint_differs_is_blocked_with_the_diff() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = sandbox.base_url();
    write_specs(dir.path(), &base, &[ACME, GLOBEX]);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);

    // A fresh state, the spec as created (a name in another case is the same natural key,
    // which the comparison leaves out): every organization is adopted.
    forget_state(dir.path());
    let acme_upper = Org {
        name: "ACME-sfdc",
        ..ACME
    };
    write_specs(dir.path(), &base, &[acme_upper, GLOBEX]);
    let adopt = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        adopt.stdout.contains("Plan: 2 to adopt."),
        "{}",
        adopt.stdout
    );
    assert!(!adopt.stdout.contains("blocked"), "{}", adopt.stdout);

    // The endpoint declared otherwise than Commvault reports it: not adopted.
    let acme_elsewhere = Org {
        endpoint: Some(MY_DOMAIN),
        ..ACME
    };
    write_specs(dir.path(), &base, &[acme_elsewhere, GLOBEX]);
    // Exit codes as usual: a plan that blocks is still a plan (2 with --detailed-exitcode).
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    let blocked = orgform(dir.path(), &["plan"]).expect(0);
    assert!(blocked.stdout.contains("blocked"), "{}", blocked.stdout);
    assert!(
        blocked.stdout.contains("salesforce_account.endpoint"),
        "{}",
        blocked.stdout
    );
    assert!(
        blocked.stdout.contains(SANDBOX_LOGIN) && blocked.stdout.contains(MY_DOMAIN),
        "{}",
        blocked.stdout
    );
    let json = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    let plan: Value = serde_json::from_str(&json.stdout).expect("plan json");
    let acme = change(&plan, "acme");
    assert_eq!(acme["action"], "blocked", "{acme}");
    assert_eq!(
        acme["diff"],
        json!([{"path": "salesforce_account.endpoint", "before": SANDBOX_LOGIN, "after": MY_DOMAIN}]),
        "{acme}"
    );
    assert_eq!(change(&plan, "globex")["action"], "adopt", "{plan}");
    assert_eq!(served(&sandbox, "commvault_salesforce", CREATE).await, 2);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_changed_at_commvault_is_drift_in_every_plan_format() {
    let files = tempfile::tempdir().expect("tempdir");
    let data_file = files.path().join("sandbox.json");
    let config = SandboxConfig {
        data_file: Some(data_file.clone()),
        ..SandboxConfig::default()
    };
    let sandbox = start(config.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox.base_url(), &[ACME, GLOBEX]);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");

    // Someone points Acme at its My Domain in Commvault (its modify call, providers.md §1.5):
    // here, in the sandbox's data file, where the emulator keeps what its list reports.
    let mut data: Value =
        serde_json::from_str(&std::fs::read_to_string(&data_file).expect("data file"))
            .expect("data json");
    let organizations = data["commvault_salesforce"]["organizations"]
        .as_array_mut()
        .expect("organizations");
    for org in organizations.iter_mut() {
        if org["clientName"] == ACME.name {
            org["endpoint"] = json!(MY_DOMAIN);
        }
    }
    std::fs::write(&data_file, data.to_string()).expect("write data file");

    let sandbox = start(config).await;
    write_specs(dir.path(), &sandbox.base_url(), &[ACME, GLOBEX]);
    let text = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(text.stdout.contains("drift"), "{}", text.stdout);
    assert!(
        text.stdout.contains("salesforce_account.endpoint")
            && text.stdout.contains(MY_DOMAIN)
            && text.stdout.contains(SANDBOX_LOGIN),
        "{}",
        text.stdout
    );
    let json = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    let plan: Value = serde_json::from_str(&json.stdout).expect("plan json");
    let acme = change(&plan, "acme");
    assert_eq!(acme["action"], "blocked", "{acme}");
    assert!(
        acme["reason"].as_str().is_some_and(|r| r.contains("drift")),
        "{acme}"
    );
    assert_eq!(
        acme["diff"],
        json!([{"path": "salesforce_account.endpoint", "before": MY_DOMAIN, "after": SANDBOX_LOGIN}]),
        "{acme}"
    );
    // Globex declares no endpoint: Commvault's default is its to keep, nothing to compare.
    assert_eq!(change(&plan, "globex")["action"], "unchanged", "{plan}");
    let markdown = orgform(dir.path(), &["plan", "--format", "markdown"]).expect(0);
    // Markdown writes values with character references (`.` is `&#46;`).
    assert!(
        markdown.stdout.contains("drift")
            && markdown
                .stdout
                .contains("salesforce&#95;account&#46;endpoint")
            && markdown.stdout.contains("acme--uat"),
        "{}",
        markdown.stdout
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_all_reports_every_organization_with_its_attributes_in_one_request() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = sandbox.base_url();
    let addresses: Vec<String> = (0..12).map(|i| format!("o{i:02}")).collect();
    let names: Vec<String> = (0..12).map(|i| format!("Org-{i:02}")).collect();
    let orgs: Vec<Org<'_>> = addresses
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, (address, name))| Org {
            address,
            name,
            endpoint: (i % 2 == 0).then_some(SANDBOX_LOGIN),
        })
        .collect();
    write_specs(dir.path(), &base, &orgs);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);

    let spec = Spec::load(&[SourceFile::new("cv.toml", specs_text(&base, &[]))])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let overrides = ENV
        .iter()
        .map(|(name, value)| (SecretRef::Env((*name).into()), SecretString::new(*value)))
        .collect();
    let options = ConnectOptions {
        secrets: SecretResolver {
            overrides,
            ..SecretResolver::default()
        },
        ..ConnectOptions::default()
    };
    let cv = AnyProvider::connect(&spec.providers["cv"], &options).expect("connect");
    let lists_before = served(&sandbox, "commvault_salesforce", LIST).await;
    let all = cv.list_all().await.expect("list_all");
    assert_eq!(
        served(&sandbox, "commvault_salesforce", LIST).await - lists_before,
        1,
        "one list, no per-organization read"
    );
    let mut reported: Vec<Value> = all
        .orgs
        .values()
        .flatten()
        .map(|remote| Value::Object(remote.attributes.to_json()))
        .collect();
    reported.sort_by_key(|a| a["organization_name"].as_str().map(str::to_string));
    let wanted: Vec<Value> = orgs
        .iter()
        .map(|org| {
            // An organization that declared no endpoint reports Commvault's default.
            json!({
                "organization_name": org.name,
                "salesforce_account": {"endpoint": org.endpoint.unwrap_or("https://login.salesforce.com")},
            })
        })
        .collect();
    assert_eq!(reported, wanted);
    sandbox.shutdown().await.expect("shutdown");
}
