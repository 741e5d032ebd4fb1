//! What Salesforce reports about a sign-up, compared with what is declared (issue 15). The SOQL
//! look-up that finds usernames selects every declarable field the API version has, so: an
//! adopt whose declaration differs from the sign-up is `blocked` with the diff; a sign-up whose
//! fields changed at the provider (here, in the sandbox's data file: SignupRequest has no
//! update call) is `blocked` as drift, in text and JSON; `list_all` reads every sign-up with its
//! attributes, page by page. The emulator answers the selected fields as the create stored
//! them, and refuses a field SignupRequest lacks at the asked API version with `INVALID_FIELD`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use orgform::model::{NaturalKey, RemoteStatus, SecretRef};
use orgform::providers::salesforce::{self, reported_attributes, select};
use orgform::providers::{ConnectOptions, Provider};
use orgform::sandbox::salesforce::{
    CLIENT_ID, CLIENT_SECRET, PASSWORD, Reply, Request, SalesforceConfig, SalesforceData, USERNAME,
};
use orgform::sandbox::{Sandbox, SandboxConfig};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

const ENV: &[(&str, &str)] = &[
    ("SF_USERNAME", USERNAME),
    ("SF_PASSWORD", PASSWORD),
    ("SF_CLIENT_ID", CLIENT_ID),
    ("SF_CLIENT_SECRET", CLIENT_SECRET),
];

const T0: u64 = 1_790_024_000_000;
const BASE: &str = "http://127.0.0.1:9";

// ---- the emulator's query: fields as stored, and only those SignupRequest has ----

/// The emulator's rules without a server, logged in once.
struct Emu {
    data: SalesforceData,
    config: SalesforceConfig,
    token: String,
    seed: u64,
}

impl Emu {
    fn new() -> Emu {
        let mut emu = Emu {
            data: SalesforceData::default(),
            config: SalesforceConfig {
                in_progress_for: Duration::ZERO,
                ..SalesforceConfig::default()
            },
            token: String::new(),
            seed: 0,
        };
        let form = format!(
            "grant_type=password&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&username={}&password={PASSWORD}",
            url::form_urlencoded::byte_serialize(USERNAME.as_bytes()).collect::<String>()
        );
        let reply = emu.handle(
            "POST",
            "/services/oauth2/token",
            None,
            form.as_bytes(),
            None,
        );
        emu.token = reply.body.expect("token")["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        emu
    }

    fn handle(
        &mut self,
        method: &'static str,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        authorization: Option<&str>,
    ) -> Reply {
        self.seed += 1;
        self.data.handle(
            &self.config,
            &Request {
                method,
                path,
                query,
                authorization,
                query_options: None,
                body,
            },
            BASE,
            T0,
            self.seed,
        )
    }

    fn create(&mut self, version: &str, body: &Value) -> Reply {
        let bearer = format!("Bearer {}", self.token);
        let path = format!("/services/data/v{version}/sobjects/SignupRequest/");
        self.handle(
            "POST",
            &path,
            None,
            body.to_string().as_bytes(),
            Some(&bearer),
        )
    }

    fn query(&mut self, version: &str, soql: &str) -> Reply {
        let bearer = format!("Bearer {}", self.token);
        let path = format!("/services/data/v{version}/query");
        let query = format!(
            "q={}",
            url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
        );
        self.handle("GET", &path, Some(&query), b"", Some(&bearer))
    }
}

fn every_field() -> Value {
    json!({
        "Company": "Acme", "Country": "DE", "FirstName": "Jane", "LastName": "Doe",
        "SignupEmail": "Jane.Doe@Acme.example", "Username": "Jane@Acme-Trial.example",
        "Edition": "Enterprise", "PreferredLanguage": "de", "ShouldConnectToEnvHub": true,
        "SignupSource": "orgform", "Subdomain": "acme-trial", "SuppressSignupEmails": true,
        "TrialDays": 14, "ConnectedAppConsumerKey": "3MVG9key",
        "ConnectedAppCallbackUrl": "https://acme.example/callback",
    })
}

#[test]
fn a_query_answers_each_selected_field_as_the_create_stored_it() {
    let mut emu = Emu::new();
    assert_eq!(emu.create("60.0", &every_field()).status, 201);
    let reply = emu.query("60.0", &select("60.0"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.body.expect("body");
    let record = &body["records"][0];
    let mut expected = every_field();
    // An e-mail field is kept in lower case; every other field as sent.
    expected["SignupEmail"] = json!("jane.doe@acme.example");
    for (field, value) in expected.as_object().expect("object") {
        assert_eq!(&record[field], value, "{field}");
    }
    assert_eq!(record["Status"], "Success");
    // Read back to spec names: every declarable field, under its spec name, and nothing else.
    let Value::Object(fields) = record.clone() else {
        unreachable!("a record is an object")
    };
    assert_eq!(
        Value::Object(reported_attributes(&fields).to_json()),
        json!({
            "company": "Acme", "country": "DE", "first_name": "Jane", "last_name": "Doe",
            "signup_email": "jane.doe@acme.example", "username": "Jane@Acme-Trial.example",
            "edition": "Enterprise", "preferred_language": "de",
            "should_connect_to_env_hub": true, "signup_source": "orgform",
            "subdomain": "acme-trial", "suppress_signup_emails": true, "trial_days": 14,
            "connected_app_consumer_key": "3MVG9key",
            "connected_app_callback_url": "https://acme.example/callback",
        })
    );
}

#[test]
fn fields_signup_request_lacks_at_the_api_version_are_invalid_field() {
    let mut emu = Emu::new();
    let unknown = emu.query("60.0", "SELECT Id, Name FROM SignupRequest");
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body.expect("body")[0]["errorCode"], "INVALID_FIELD");
    // Edition came with 35.0, SignupSource with 36.0: unknown before.
    for (version, field) in [
        ("34.0", "Edition"),
        ("35.0", "SignupSource"),
        ("28.0", "CreatedOrgInstance"),
    ] {
        let old = emu.query(version, &format!("SELECT Id, {field} FROM SignupRequest"));
        assert_eq!(old.status, 400, "{field} at {version}");
        assert_eq!(old.body.expect("body")[0]["errorCode"], "INVALID_FIELD");
        assert!(!select(version).contains(field), "{}", select(version));
    }
    let mut body = every_field();
    body.as_object_mut().expect("object").remove("SignupSource");
    let refused = emu.create("34.0", &body);
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.expect("body").to_string().contains("Edition"),
        "Edition is unknown at 34.0"
    );
    // What the client selects at each version is what that version has.
    for version in ["27.0", "29.0", "35.0", "36.0", "60.0"] {
        let reply = emu.query(version, &select(version));
        assert_eq!(reply.status, 200, "{version}: {reply:?}");
    }
    assert!(select("60.0").contains("SignupSource"));
    assert!(select("27.0").contains("Username"));
}

#[test]
fn numbers_as_text_and_nulls_read_back_as_declared_kinds_or_not_at_all() {
    let record = json!({
        "attributes": {"type": "SignupRequest", "url": "/x"},
        "Id": "0TR000000000001AAA", "Status": "Success", "Username": "a@b.example",
        "Company": "Acme", "TrialDays": "30", "FirstName": null, "ShouldConnectToEnvHub": false,
        "CreatedOrgId": "00D000000000001",
    });
    let Value::Object(fields) = record else {
        unreachable!("an object literal")
    };
    assert_eq!(
        Value::Object(reported_attributes(&fields).to_json()),
        json!({"username": "a@b.example", "company": "Acme", "trial_days": 30,
               "should_connect_to_env_hub": false})
    );
}

// ---- through the real binary ----

fn orgform(dir: &Path, args: &[&str]) -> crate::harness::Run {
    crate::harness::run_on(dir, args, ENV)
}

const APPLY: &[&str] = &["apply", "--auto-approve", "--poll-interval", "20ms"];

/// A provider `sf` at `base_url` and one organization per `(address, company)`.
fn write_specs(dir: &Path, base_url: &str, orgs: &[(&str, &str)]) {
    let mut text = format!(
        "[provider.sf]\ntype = \"salesforce_signup\"\nbase_url = \"{base_url}\"\nusername = {{ env = \"SF_USERNAME\" }}\npassword = {{ env = \"SF_PASSWORD\" }}\nclient_id = {{ env = \"SF_CLIENT_ID\" }}\nclient_secret = {{ env = \"SF_CLIENT_SECRET\" }}\n"
    );
    for (address, company) in orgs {
        text.push_str(&format!(
            "\n[org.{address}]\nprovider = \"sf\"\ncompany = \"{company}\"\ncountry = \"US\"\nlast_name = \"Doe\"\nsignup_email = \"admin@{address}.example\"\nusername = \"admin@{address}-trial.example\"\nedition = \"Enterprise\"\ntrial_days = 14\nsignup_source = \"orgform\"\n"
        ));
    }
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/sf.toml"), text).expect("write specs");
}

fn quick(data_file: Option<std::path::PathBuf>) -> SandboxConfig {
    SandboxConfig {
        salesforce: SalesforceConfig {
            in_progress_for: Duration::from_millis(50),
            ..SalesforceConfig::default()
        },
        data_file,
        ..SandboxConfig::default()
    }
}

/// The change planned for `address` in a JSON plan.
fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("{address} not planned: {plan}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adopt_whose_declaration_differs_is_blocked_with_the_diff() {
    let sandbox = crate::e2e::start(quick(None)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = sandbox.base_url();
    write_specs(dir.path(), &base, &[("acme", "Acme"), ("globex", "Globex")]);
    orgform(dir.path(), APPLY).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);

    // The same declarations, state lost: every sign-up is found, and adopted as it is.
    std::fs::remove_file(dir.path().join("state.json")).expect("lose the state");
    let adopt = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        adopt.stdout.contains("Plan: 2 to adopt."),
        "{}",
        adopt.stdout
    );

    // Declared otherwise than Salesforce holds it: not adopted, the difference shown.
    write_specs(
        dir.path(),
        &base,
        &[("acme", "Acme"), ("globex", "Globex Corporation")],
    );
    let text = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(text.stdout.contains("1 to adopt"), "{}", text.stdout);
    assert!(text.stdout.contains("1 blocked"), "{}", text.stdout);
    assert!(text.stdout.contains("company"), "{}", text.stdout);
    assert!(
        text.stdout.contains("Globex Corporation"),
        "{}",
        text.stdout
    );
    let json = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    let plan: Value = serde_json::from_str(&json.stdout).expect("plan json");
    let globex = change(&plan, "globex");
    assert_eq!(globex["action"], "blocked", "{globex}");
    assert_eq!(
        globex["diff"],
        json!([{"path": "company", "before": "Globex", "after": "Globex Corporation"}]),
        "{globex}"
    );
    assert_eq!(change(&plan, "acme")["action"], "adopt");
    // Apply adopts the one that matches and creates nothing.
    orgform(dir.path(), APPLY).expect(0);
    assert_eq!(
        crate::e2e::served(
            &sandbox,
            "salesforce",
            "POST /services/data/{version}/sobjects/SignupRequest/"
        )
        .await,
        2
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_up_changed_at_the_provider_is_blocked_as_drift() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_file = dir.path().join("sandbox.json");
    let sandbox = crate::e2e::start(quick(Some(data_file.clone()))).await;
    let base = sandbox.base_url();
    write_specs(dir.path(), &base, &[("acme", "Acme"), ("globex", "Globex")]);
    orgform(dir.path(), APPLY).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    let listen = base
        .strip_prefix("http://")
        .expect("http")
        .parse()
        .expect("address");
    sandbox
        .shutdown()
        .await
        .expect("shutdown saves the data file");

    // SignupRequest has no update call: a change can only be made where Salesforce keeps it,
    // which for the sandbox is its data file.
    let mut data: Value =
        serde_json::from_str(&std::fs::read_to_string(&data_file).expect("data file"))
            .expect("data json");
    for signup in data["salesforce"]["signups"]
        .as_array_mut()
        .expect("signups")
    {
        if signup["fields"]["Company"] == "Globex" {
            signup["fields"]["Company"] = json!("Globex Holdings");
            signup["fields"]["TrialDays"] = json!(30);
        }
    }
    std::fs::write(&data_file, data.to_string()).expect("write data file");
    let sandbox = Sandbox::start(listen, quick(Some(data_file)))
        .await
        .expect("the sandbox starts again where it was");

    let text = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(text.stdout.contains("drift"), "{}", text.stdout);
    assert!(text.stdout.contains("Globex Holdings"), "{}", text.stdout);
    let json = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    let plan: Value = serde_json::from_str(&json.stdout).expect("plan json");
    let globex = change(&plan, "globex");
    assert_eq!(globex["action"], "blocked", "{globex}");
    assert!(
        globex["reason"]
            .as_str()
            .is_some_and(|r| r.contains("drift")),
        "{globex}"
    );
    assert_eq!(
        globex["diff"],
        json!([
            {"path": "company", "before": "Globex Holdings", "after": "Globex"},
            {"path": "trial_days", "before": 30, "after": 14},
        ]),
        "{globex}"
    );
    assert_eq!(change(&plan, "acme")["action"], "unchanged");
    sandbox.shutdown().await.expect("shutdown");
}

/// Salesforce keeps e-mail fields in lower case: a `signup_email` declared with capitals reads
/// back folded, and is the same address, so it is neither refused nor shown as drift.
#[tokio::test(flavor = "multi_thread")]
async fn a_signup_email_with_capitals_reads_back_folded_and_is_no_drift() {
    let sandbox = crate::e2e::start(quick(None)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox.base_url(), &[("acme", "Acme")]);
    let path = dir.path().join("specs/sf.toml");
    let text = std::fs::read_to_string(&path).expect("specs");
    std::fs::write(
        &path,
        text.replace("admin@acme.example", "Admin@Acme.example"),
    )
    .expect("write specs");
    orgform(dir.path(), &["validate"]).expect(0);
    orgform(dir.path(), APPLY).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    // And found again with the state lost, it is adopted, not blocked.
    std::fs::remove_file(dir.path().join("state.json")).expect("lose the state");
    let adopt = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        adopt.stdout.contains("Plan: 1 to adopt."),
        "{}",
        adopt.stdout
    );
    sandbox.shutdown().await.expect("shutdown");
}

// ---- list_all, through the client ----

fn credentials() -> SecretResolver {
    let mut overrides = BTreeMap::new();
    for (name, value) in ENV {
        overrides.insert(SecretRef::Env((*name).into()), SecretString::new(*value));
    }
    SecretResolver {
        overrides,
        ..SecretResolver::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_all_reads_every_sign_up_with_its_attributes_page_by_page() {
    let sandbox = crate::e2e::start(SandboxConfig {
        salesforce: SalesforceConfig {
            in_progress_for: Duration::ZERO,
            batch_size: 2,
            ..SalesforceConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs: Vec<(String, String)> = (0..5)
        .map(|i| (format!("o{i}"), format!("Company {i}")))
        .collect();
    let refs: Vec<(&str, &str)> = orgs.iter().map(|(a, c)| (a.as_str(), c.as_str())).collect();
    write_specs(dir.path(), &sandbox.base_url(), &refs);
    let text = std::fs::read_to_string(dir.path().join("specs/sf.toml")).expect("specs");
    let spec = Spec::load(&[SourceFile::new("sf.toml", text)]).expect("valid specs");
    let client = salesforce::Salesforce::connect(
        &spec.providers["sf"],
        &ConnectOptions {
            secrets: credentials(),
            ..ConnectOptions::default()
        },
    )
    .expect("connects");
    for org in spec.orgs.values() {
        client
            .create(org, orgform::providers::CreateContext::default())
            .await
            .expect("created");
    }

    let all = client.list_all().await.expect("lists");
    assert_eq!(all.len(), 5);
    for (i, org) in spec.orgs.values().enumerate() {
        let found = all.find(&org.natural_key);
        assert_eq!(found.len(), 1, "{}", org.natural_key);
        assert_eq!(found[0].status, RemoteStatus::Ready);
        let attributes = Value::Object(found[0].attributes.to_json());
        assert_eq!(
            attributes,
            json!({
                "company": format!("Company {i}"), "country": "US", "last_name": "Doe",
                "signup_email": format!("admin@o{i}.example"),
                "username": format!("admin@o{i}-trial.example"), "edition": "Enterprise",
                "trial_days": 14, "signup_source": "orgform",
                // Salesforce's default for a field the create left out.
                "should_connect_to_env_hub": false,
            }),
            "{}",
            org.natural_key
        );
    }
    assert!(
        !all.find(&NaturalKey("admin@o0-trial.example".into()))
            .is_empty()
    );
    // One query without WHERE, its five records in pages of two.
    let served = |endpoint: &'static str| crate::e2e::served(&sandbox, "salesforce", endpoint);
    assert_eq!(served("GET /services/data/{version}/query").await, 1);
    assert_eq!(
        served("GET /services/data/{version}/query/{locator}").await,
        2
    );
    sandbox.shutdown().await.expect("shutdown");
}
