//! Commvault's client reads every documented variation of Commvault's answers (providers.md §1):
//! the organization list under `accounts` instead of `orgs` and the Salesforce org id at its
//! legacy path, names in another case, `response` as an array, and fields it has never seen.
//! Apply and plan run through the variation proxy; the organizations are counted with
//! Commvault's own list API, called on the sandbox directly.
//!
//! Kept as the emulator answers it, already as documented: `{}` for an empty Commcell (§1.4).
//! Left out, because §1 and seed 000 do not document them: ids as strings (seed 000 types
//! `clientId` as an integer, and the list shows numbers), one-element lists as objects (no
//! XML-converted answer is shown), and a token header in another case (the login answer carries
//! the token in its body, `token`, not in a header).

use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use orgform::providers::commvault::parse_list;
use orgform::sandbox::commvault::{PASSWORD, USERNAME};
use orgform::sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::e2e::{served, start};
use crate::variation_proxy::{Exchange, VariationProxy, adopt_from_fresh_state, extra_fields};

const SF_PASSWORD: &str = "s3cret-salesforce-password";
const SF_CONSUMER_SECRET: &str = "s3cret-consumer-secret";

/// The secrets the specs refer to, exported to the binary.
const ENV: &[(&str, &str)] = &[
    ("CV_USERNAME", USERNAME),
    ("CV_PASSWORD", PASSWORD),
    ("SF_PASSWORD", SF_PASSWORD),
    ("SF_CONSUMER_SECRET", SF_CONSUMER_SECRET),
];

/// The names declared, in mixed case: the answers give them back in other cases.
const NAMES: &[&str] = &[
    "Acme-SFDC-Prod",
    "globex-sfdc",
    "Initech-SFDC",
    "Hooli-Sfdc",
    "umbrella-SFDC",
];

const CREATE: &str = "POST /commandcenter/api/Salesforce/Organization";

/// Which variations the proxy applied, by name, so the test can show it met each one.
static MET: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn met(variation: &'static str) {
    if let Ok(mut met) = MET.lock() {
        met.push(variation);
    }
}

fn times_met(variation: &str) -> usize {
    MET.lock()
        .map_or(0, |m| m.iter().filter(|v| **v == variation).count())
}

/// Commvault's documented variations.
fn commvault_variations(exchange: &Exchange<'_>, answer: &mut Value) {
    let organizations = exchange
        .path
        .to_ascii_lowercase()
        .ends_with("/salesforce/organization");
    if organizations && exchange.method == "GET" && exchange.status == 200 {
        vary_list(answer);
    }
    // §1.5: `response` is an array in the answers of the modify and delete calls (an object in
    // create's); the same envelope, so a reader of one may meet the other.
    if organizations
        && exchange.method == "POST"
        && exchange.status == 200
        && let Some(response) = answer.get_mut("response")
        && response.is_object()
    {
        *response = Value::Array(vec![response.take()]);
        met("response as an array");
    }
    // §1.2 and §1.4: the login and list answers carry many fields the client never reads.
    extra_fields(answer);
}

/// The list answer (§1.4), varied entry by entry.
fn vary_list(answer: &mut Value) {
    let Some(object) = answer.as_object_mut() else {
        return;
    };
    // §1.4: Commvault's own MCP server reads the list from `orgs`, or else from `accounts`.
    if let Some(orgs) = object.remove("orgs") {
        object.insert("accounts".into(), orgs);
        met("accounts");
    }
    let Some(Value::Array(entries)) = object.get_mut("accounts") else {
        return;
    };
    for (i, entry) in entries.iter_mut().enumerate() {
        let Some(entry) = entry.as_object_mut() else {
            continue;
        };
        // §1.4: the Salesforce org id at the top (`sfOrgId`) or at its legacy path
        // `salesforceProps.salesforceAccount.organizationId`; every other entry moved.
        if i % 2 == 0
            && let Some(id) = entry.remove("sfOrgId")
        {
            entry.insert(
                "salesforceProps".into(),
                json!({"salesforceAccount": {"organizationId": id}}),
            );
            met("legacy org id");
        }
        // §1.4 and §6: names match without case (cvpysdk lower-cases them); given back upper
        // and lower case in turn.
        if let Some(Value::String(name)) = entry
            .get_mut("sfSubclient")
            .and_then(|s| s.get_mut("clientName"))
        {
            *name = if i % 2 == 0 {
                name.to_uppercase()
            } else {
                name.to_lowercase()
            };
            met("name case");
        }
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `DIR/specs/cv.toml`: one Commvault instance at `base_url` and an organization per name.
fn write_specs(dir: &Path, base_url: &str) {
    let mut text = format!(
        "[provider.cv]\ntype = \"commvault_salesforce\"\nbase_url = \"{base_url}/commandcenter/api\"\nusername = {{ env = \"CV_USERNAME\" }}\npassword = {{ env = \"CV_PASSWORD\" }}\nmax_concurrency = 3\n"
    );
    for (i, name) in NAMES.iter().enumerate() {
        text.push_str(&format!(
            r#"
[org.o{i}]
provider = "cv"
organization_name = "{name}"
download_cache_path = "/cache/o{i}"
plan = {{ plan_name = "Server plan", plan_id = 12, entity_info = {{ company_id = 0 }} }}

[org.o{i}.salesforce_account]
authentication_type = 2
user_credentials = {{ user_name = "backup@o{i}.example", password = {{ env = "SF_PASSWORD" }} }}
consumer_id = "key-o{i}"
consumer_secret = {{ env = "SF_CONSUMER_SECRET" }}
"#
        ));
    }
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/cv.toml"), text).expect("write specs");
}

fn orgform(dir: &Path, args: &[&str]) -> crate::harness::Run {
    crate::harness::run_on(dir, args, ENV)
}

/// The organization names Commvault's own list API gives, asked on the sandbox directly.
async fn listed_names(sandbox: &Sandbox) -> Vec<String> {
    let api = format!("{}/commandcenter/api", sandbox.base_url());
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{api}/Login"))
        .json(&json!({"username": USERNAME, "password": b64(PASSWORD)}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let body = client
        .get(format!("{api}/Salesforce/Organization"))
        .header("Authtoken", login["token"].as_str().expect("token"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("list body");
    let list: Value = serde_json::from_str(&body).expect("list json");
    list["orgs"]
        .as_array()
        .expect("orgs")
        .iter()
        .map(|o| {
            o["sfSubclient"]["clientName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn the_list_is_read_under_accounts_and_the_org_id_at_its_legacy_path() {
    let listed = parse_list(
        r#"{"accounts": [
            {"salesforceProps": {"salesforceAccount": {"organizationId": "00D2w000005mBCpEAM"}},
             "sfSubclient": {"clientId": 1042, "clientName": "ACME", "instanceId": 51042, "backupsetId": 61042}},
            {"sfOrgId": "00D2w000005mBCqEAM", "sfSubclient": {"clientId": 1043, "clientName": "beta"}}
        ]}"#,
    )
    .expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].client_id, "1042");
    assert_eq!(
        listed[0].detail.get("sf_org_id").map(String::as_str),
        Some("00D2w000005mBCpEAM")
    );
    assert_eq!(
        listed[0].detail.get("backupset_id").map(String::as_str),
        Some("61042")
    );
    assert_eq!(
        listed[1].detail.get("sf_org_id").map(String::as_str),
        Some("00D2w000005mBCqEAM")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commvault_apply_and_plan_read_every_documented_variation() {
    let sandbox = start(SandboxConfig::default()).await;
    let proxy = VariationProxy::start(&sandbox.base_url(), commvault_variations).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &proxy.base_url());
    let n = NAMES.len();

    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    // A fresh state finds every one through the varied list answer and adopts it.
    adopt_from_fresh_state(
        &|args| orgform(dir.path(), args),
        &dir.path().join("state.json"),
        n,
        &["apply", "--auto-approve"],
    );
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state.json")).expect("state"),
    )
    .expect("state json");
    // Adopted with every fact the list gave, the org id read at either of its places.
    for i in 0..n {
        let record = &state["orgs"][format!("o{i}")];
        assert!(record["remote_id"].is_string(), "{state}");
        assert!(
            record["detail"]["sf_org_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("00D")),
            "{state}"
        );
    }

    assert!(proxy.rewritten() > 0, "the proxy varied no answer");
    for variation in [
        "accounts",
        "legacy org id",
        "name case",
        "response as an array",
    ] {
        assert!(times_met(variation) > 0, "never met: {variation}");
    }
    assert_eq!(
        served(&sandbox, "commvault_salesforce", CREATE).await,
        n as u64
    );
    let mut listed: Vec<String> = listed_names(&sandbox)
        .await
        .iter()
        .map(|name| name.to_lowercase())
        .collect();
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), n, "{listed:?}");
    sandbox.shutdown().await.expect("shutdown");
}
