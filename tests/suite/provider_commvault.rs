//! Commvault (`commvault_salesforce`): the client's create body and answer parsing, the
//! emulator's logic, the real client against the sandbox, and the real binary end to end: plan,
//! apply, plan again; a name taken in another case; a token that lapses mid-run; create answers
//! lost; injected faults; a refused login and a refused create.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine as _;
use orgform::model::{NaturalKey, SecretRef};
use orgform::providers::commvault::{
    Commvault, CreateAnswer, describe_error, describe_login_failure, login_token, parse_create,
    parse_list,
};
use orgform::providers::{AnyProvider, ConnectOptions, CreateContext, Provider, ProviderError};
use orgform::sandbox::commvault::{
    self as emulator, Answer, CommvaultConfig, CommvaultData, Endpoint,
};
use orgform::sandbox::{Fault, Sandbox, SandboxConfig};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

const SF_PASSWORD: &str = "s3cret-salesforce-password";
const SF_CONSUMER_SECRET: &str = "s3cret-consumer-secret";
const SF_TOKEN: &str = "s3cret-salesforce-api-token";
const DB_PASSWORD: &str = "s3cret-syncdb-password";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every secret the tests export, by environment variable.
const SECRETS: &[(&str, &str)] = &[
    ("CV_USERNAME", emulator::USERNAME),
    ("CV_PASSWORD", emulator::PASSWORD),
    ("SF_PASSWORD", SF_PASSWORD),
    ("SF_CONSUMER_SECRET", SF_CONSUMER_SECRET),
    ("SF_TOKEN", SF_TOKEN),
    ("DB_PASSWORD", DB_PASSWORD),
];

fn provider_table(base_url: &str, max_concurrency: u32) -> String {
    format!(
        "[provider.cv]\ntype = \"commvault_salesforce\"\nbase_url = \"{base_url}\"\nusername = {{ env = \"CV_USERNAME\" }}\npassword = {{ env = \"CV_PASSWORD\" }}\nmax_concurrency = {max_concurrency}\n"
    )
}

fn spec(orgs: &str, base_url: &str) -> Spec {
    let text = format!("{}\n{orgs}", provider_table(base_url, 4));
    Spec::load(&[SourceFile::new("cv.toml", text)]).unwrap_or_else(|e| panic!("{e:?}"))
}

fn secrets() -> SecretResolver {
    secrets_with(&[])
}

fn secrets_with(changes: &[(&str, &str)]) -> SecretResolver {
    let mut overrides = BTreeMap::new();
    for (name, value) in SECRETS.iter().chain(changes) {
        overrides.insert(SecretRef::Env((*name).into()), SecretString::new(*value));
    }
    SecretResolver {
        overrides,
        ..SecretResolver::default()
    }
}

/// An organization with every field of the seed, named `name`, at address `address`.
fn full_org(address: &str, name: &str) -> String {
    format!(
        r#"
[org.{address}]
provider = "cv"
organization_name = "{name}"
download_cache_path = "/opt/cvcache/{address}"
use_resource_pool_info = false
plan = {{ plan_name = "Server plan", plan_id = 12, entity_info = {{ company_id = 0, company_name = "Commcell", multi_commcell_id = 0 }} }}
access_nodes = [{{ client = {{ client_id = 7, client_name = "accessnode01", _type_ = 3 }} }}, {{ client_group_name = "sf-nodes", client_group_id = 4 }}]

[org.{address}.salesforce_account]
environment_type = 0
authentication_type = 2
user_credentials = {{ user_name = "backup@{address}.example", password = {{ env = "SF_PASSWORD" }} }}
consumer_id = "3MVG9{address}"
consumer_secret = {{ env = "SF_CONSUMER_SECRET" }}
endpoint = "https://login.salesforce.com"
token = {{ env = "SF_TOKEN" }}

[org.{address}.sync_database]
db_enabled = true
db_type = "3"
db_host = "db01"
db_port = "5432"
db_name = "sfsync"
db_user_password = {{ user_name = "sf", password = {{ env = "DB_PASSWORD" }} }}
"#
    )
}

/// An organization with only what the seed requires.
fn small_org(address: &str, name: &str, plan_id: i64) -> String {
    format!(
        r#"
[org.{address}]
provider = "cv"
organization_name = "{name}"
download_cache_path = "/cache"
plan = {{ plan_name = "Server plan", plan_id = {plan_id}, entity_info = {{ company_id = 0 }} }}

[org.{address}.salesforce_account]
authentication_type = 1
user_credentials = {{ user_name = "u@{address}.example", password = {{ env = "SF_PASSWORD" }} }}
consumer_id = "key-{address}"
consumer_secret = {{ env = "SF_CONSUMER_SECRET" }}
"#
    )
}

#[test]
fn create_body_uses_the_api_names_and_encodes_each_secret_as_the_seed_says() {
    let spec = spec(
        &full_org("acme", "acme-sfdc-prod"),
        "https://cc.example.com/commandcenter/api",
    );
    let body = Commvault::create_body(&spec.orgs["acme"], &secrets()).expect("body");
    let want = json!({
        "accessNodes": [
            {"client": {"_type_": 3, "clientId": 7, "clientName": "accessnode01"}},
            {"clientGroupId": 4, "clientGroupName": "sf-nodes"},
        ],
        "downloadCachePath": "/opt/cvcache/acme",
        "organizationName": "acme-sfdc-prod",
        "plan": {
            "entityInfo": {"companyId": 0, "companyName": "Commcell", "multiCommcellId": 0},
            "planId": 12,
            "planName": "Server plan",
        },
        "salesforceAccount": {
            "authenticationType": 2,
            "consumerId": "3MVG9acme",
            "consumerSecret": b64(SF_CONSUMER_SECRET),
            "endpoint": "https://login.salesforce.com",
            "environmentType": 0,
            // The API token is the one secret Commvault takes as it is.
            "token": SF_TOKEN,
            "userCredentials": {"password": b64(SF_PASSWORD), "userName": "backup@acme.example"},
        },
        "syncDatabase": {
            "dbEnabled": true,
            "dbHost": "db01",
            "dbName": "sfsync",
            "dbPort": "5432",
            "dbType": "3",
            "dbUserPassword": {"password": b64(DB_PASSWORD), "userName": "sf"},
        },
        "useResourcePoolInfo": false,
    });
    assert_eq!(Value::Object(body), want);
    // The natural key ignores case.
    assert_eq!(spec.orgs["acme"].natural_key.0, "acme-sfdc-prod");
    let upper = self::spec(
        &small_org("a", "ACME-Sfdc-Prod", 1),
        "https://cc.example.com/commandcenter/api",
    );
    assert_eq!(upper.orgs["a"].natural_key, spec.orgs["acme"].natural_key);
}

#[test]
fn answers_are_read_in_every_documented_shape() {
    // An empty Commcell answers `{}`; `orgs` may also be null.
    assert_eq!(parse_list("{}"), Ok(Vec::new()));
    assert_eq!(parse_list(r#"{"orgs": null}"#), Ok(Vec::new()));
    let listed = parse_list(
        r#"{"orgs": [
            {"sfOrgId": "00D2w000005mBCpEAM", "endPoint": "https://login.salesforce.com",
             "sfSubclient": {"clientId": 1042, "clientName": "Acme", "backupsetId": 88, "instanceId": "55"}},
            {"sfSubclient": {"clientId": "1043", "clientName": "Beta"}},
            {"sfOrgId": "no subclient"}
        ]}"#,
    )
    .expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].client_id, "1042");
    assert_eq!(listed[0].client_name, "Acme");
    assert_eq!(
        listed[0].detail.get("sf_org_id").map(String::as_str),
        Some("00D2w000005mBCpEAM")
    );
    assert_eq!(
        listed[0].detail.get("instance_id").map(String::as_str),
        Some("55")
    );
    assert_eq!(
        listed[0].detail.get("backupset_id").map(String::as_str),
        Some("88")
    );
    assert_eq!(listed[1].client_id, "1043");
    assert!(parse_list(r#"{"errorCode": 5, "errorMessage": "Access denied"}"#).is_err());
    assert!(parse_list("<html>").is_err());

    assert_eq!(
        parse_create(
            r#"{"processinginstructioninfo": {"attributes": [{"name": "exitval", "value": "0"}]},
                "response": {"errorCode": 0, "entity": {"clientId": 1042, "clientName": "acme", "_type_": 3}}}"#
        ),
        CreateAnswer::Created {
            client_id: "1042".into(),
            client_name: Some("acme".into())
        }
    );
    // Commvault's quirk: HTTP 200 with an error inside.
    assert_eq!(
        parse_create(r#"{"response": {"errorCode": 2, "errorString": "Plan not found"}}"#),
        CreateAnswer::Refused {
            code: 2,
            message: "Plan not found".into()
        }
    );
    // The modify call's array shape, read the same way.
    assert_eq!(
        parse_create(
            r#"{"response": [{"errorCode": 7, "warningMessage": "", "errorMessage": "No"}]}"#
        ),
        CreateAnswer::Refused {
            code: 7,
            message: "No".into()
        }
    );
    assert!(matches!(
        parse_create(r#"{"response": {"errorCode": 0}}"#),
        CreateAnswer::Unclear(_)
    ));
    assert!(matches!(parse_create("not json"), CreateAnswer::Unclear(_)));

    assert_eq!(
        describe_error(
            StatusCode::CONFLICT,
            r#"{"errorMessage": "Client exists", "errorCode": 409}"#
        ),
        "HTTP 409: Client exists (error 409)"
    );
    assert_eq!(
        describe_error(StatusCode::BAD_GATEWAY, "<html>"),
        "HTTP 502: <html>"
    );

    let refused = json!({"errList": [{"errorCode": 1116, "errLogMessage": "Invalid Username or Password"}], "isAccountLocked": true, "remainingLockTime": 120});
    assert_eq!(login_token(&refused), None);
    assert_eq!(
        describe_login_failure(&refused),
        "Invalid Username or Password (error 1116); the account is locked for 120 more seconds"
    );
    assert_eq!(
        login_token(&json!({"token": "QSDK 3856abc", "errList": []})),
        Some("QSDK 3856abc".into())
    );
    // The SaaS variant: a bearer token under `data.authToken`.
    assert_eq!(
        login_token(&json!({"data": {"authToken": "eyJ0"}})),
        Some("Bearer eyJ0".into())
    );
}

// The emulator's logic, without HTTP.

pub(crate) struct Emulator {
    config: CommvaultConfig,
    data: CommvaultData,
    rng: fastrand::Rng,
    now: Instant,
}

impl Emulator {
    pub(crate) fn new(config: CommvaultConfig) -> Emulator {
        Emulator {
            config,
            data: CommvaultData::default(),
            rng: fastrand::Rng::with_seed(7),
            now: Instant::now(),
        }
    }

    pub(crate) fn call(&mut self, endpoint: Endpoint, token: Option<&str>, body: &Value) -> Answer {
        let random = self.rng.u64(..);
        let bytes = serde_json::to_vec(body).expect("json");
        self.data
            .handle(&self.config, &endpoint, token, &bytes, self.now, random)
    }

    pub(crate) fn login(&mut self) -> String {
        let answer = self.call(
            Endpoint::Login,
            None,
            &json!({"username": "Sandbox-Admin", "password": b64(emulator::PASSWORD), "mode": 4, "clientType": 30}),
        );
        assert_eq!(answer.status, StatusCode::OK);
        answer.json_body().expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string()
    }
}

pub(crate) fn body(answer: &Answer) -> &Value {
    answer.json_body().expect("a JSON body")
}

/// A create body with only the seed's required fields.
pub(crate) fn create_body(name: &str) -> Value {
    json!({
        "organizationName": name,
        "plan": {"planName": "Server plan", "planId": 12, "entityInfo": {"companyId": 0}},
        "salesforceAccount": {
            "authenticationType": 2,
            "userCredentials": {"userName": "u@example.com", "password": b64(SF_PASSWORD)},
            "consumerId": "key",
            "consumerSecret": b64(SF_CONSUMER_SECRET),
            "token": SF_TOKEN,
        },
        "downloadCachePath": "/cache",
        "syncDatabase": {
            "dbEnabled": true, "dbType": "3", "dbHost": "db", "dbPort": "5432", "dbName": "x",
            "dbUserPassword": {"userName": "sf", "password": b64(DB_PASSWORD)},
        },
    })
}

#[test]
fn emulator_logs_in_the_commvault_way() {
    let mut emu = Emulator::new(CommvaultConfig::default());
    // Refused: HTTP 200, `errList`, no token. A password not base64-encoded is refused too.
    for password in [b64("wrong"), emulator::PASSWORD.to_string()] {
        let refused = emu.call(
            Endpoint::Login,
            None,
            &json!({"username": emulator::USERNAME, "password": password}),
        );
        assert_eq!(refused.status, StatusCode::OK);
        assert_eq!(body(&refused)["errList"][0]["errorCode"], 1116);
        assert!(body(&refused).get("token").is_none());
    }
    let token = emu.login();
    assert!(token.starts_with("QSDK "), "{token}");
    // The token, with or without its `QSDK ` prefix, opens the API; nothing else does.
    let list = emu.call(Endpoint::ListOrganizations, Some(&token), &Value::Null);
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(body(&list), &json!({}));
    let bare = token.trim_start_matches("QSDK ");
    assert_eq!(
        emu.call(Endpoint::ListOrganizations, Some(bare), &Value::Null)
            .status,
        StatusCode::OK
    );
    for wrong in [None, Some("QSDK 0000"), Some("")] {
        let answer = emu.call(Endpoint::ListOrganizations, wrong, &Value::Null);
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body(&answer),
            &json!({"errorCode": 401, "errorMessage": "Unauthorized"})
        );
    }
    // cvpysdk's renewal: a new token for a live one, which ends.
    let renewed = emu.call(
        Endpoint::RenewLoginToken,
        None,
        &json!({"sessionId": token, "deviceId": "d"}),
    );
    let fresh = body(&renewed)["token"]
        .as_str()
        .expect("renewed")
        .to_string();
    assert_ne!(fresh, token);
    assert_eq!(
        emu.call(Endpoint::ListOrganizations, Some(&token), &Value::Null)
            .status,
        StatusCode::UNAUTHORIZED
    );
    let again = emu.call(
        Endpoint::RenewLoginToken,
        None,
        &json!({"sessionId": token}),
    );
    assert!(body(&again)["error"]["errLogMessage"].is_string());
    // Logout ends the token.
    let out = emu.call(Endpoint::Logout, Some(&fresh), &Value::Null);
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(
        emu.call(Endpoint::ListOrganizations, Some(&fresh), &Value::Null)
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn emulator_tokens_lapse_when_idle_or_used_up() {
    let mut emu = Emulator::new(CommvaultConfig::default());
    let token = emu.login();
    emu.now += Duration::from_secs(29 * 60);
    // Used within 30 minutes: still good, and the idle time starts again.
    assert_eq!(
        emu.call(Endpoint::ListOrganizations, Some(&token), &Value::Null)
            .status,
        StatusCode::OK
    );
    emu.now += Duration::from_secs(31 * 60);
    assert_eq!(
        emu.call(Endpoint::ListOrganizations, Some(&token), &Value::Null)
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A login's own `timeout` (minutes) overrides the idle time.
    let answer = emu.call(
        Endpoint::Login,
        None,
        &json!({"username": emulator::USERNAME, "password": b64(emulator::PASSWORD), "timeout": 2}),
    );
    let short = body(&answer)["token"].as_str().expect("token").to_string();
    emu.now += Duration::from_secs(3 * 60);
    assert_eq!(
        emu.call(Endpoint::ListOrganizations, Some(&short), &Value::Null)
            .status,
        StatusCode::UNAUTHORIZED
    );

    let mut counted = Emulator::new(CommvaultConfig {
        token_max_uses: Some(2),
        ..CommvaultConfig::default()
    });
    let token = counted.login();
    let statuses: Vec<StatusCode> = (0..3)
        .map(|_| {
            counted
                .call(Endpoint::ListOrganizations, Some(&token), &Value::Null)
                .status
        })
        .collect();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::UNAUTHORIZED]
    );
}

#[test]
fn emulator_checks_creates_like_the_seed() {
    let mut emu = Emulator::new(CommvaultConfig::default());
    let token = emu.login();
    let create = |emu: &mut Emulator, body: &Value| {
        emu.call(Endpoint::CreateOrganization, Some(&token), body)
    };
    let refused = |answer: &Answer| -> String {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        assert_eq!(body(answer)["errorCode"], 400);
        body(answer)["errorMessage"]
            .as_str()
            .expect("message")
            .to_string()
    };
    let mut without = create_body("x");
    without["salesforceAccount"]
        .as_object_mut()
        .expect("object")
        .remove("consumerId");
    assert_eq!(
        refused(&create(&mut emu, &without)),
        "Missing required field salesforceAccount.consumerId"
    );
    let mut plain = create_body("x");
    plain["salesforceAccount"]["userCredentials"]["password"] = json!("not base64!");
    assert_eq!(
        refused(&create(&mut emu, &plain)),
        "Invalid password encoding: salesforceAccount.userCredentials.password must be base64-encoded"
    );
    let mut plain_db = create_body("x");
    plain_db["syncDatabase"]["dbUserPassword"]["password"] = json!("plain text");
    assert!(refused(&create(&mut emu, &plain_db)).starts_with("Invalid password encoding"));
    let mut out_of_range = create_body("x");
    out_of_range["salesforceAccount"]["authenticationType"] = json!(3);
    assert_eq!(
        refused(&create(&mut emu, &out_of_range)),
        "Invalid value for salesforceAccount.authenticationType: 3 is not between 1 and 2"
    );
    let mut node = create_body("x");
    node["accessNodes"] = json!([{"client": {"clientName": "n"}}]);
    assert_eq!(
        refused(&create(&mut emu, &node)),
        "Missing required field accessNodes[0].client.clientId"
    );
    assert!(emu.data.organizations.is_empty());

    let made = create(&mut emu, &create_body("Acme-SFDC"));
    assert_eq!(made.status, StatusCode::OK);
    assert_eq!(body(&made)["response"]["errorCode"], 0);
    assert_eq!(body(&made)["response"]["entity"]["clientId"], 1001);
    assert_eq!(body(&made)["response"]["entity"]["_type_"], 3);
    // A name taken, in any case: 409.
    let taken = create(&mut emu, &create_body("acme-sfdc"));
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(body(&taken)["errorCode"], 409);
    let second = create(&mut emu, &create_body("Beta"));
    assert_eq!(body(&second)["response"]["entity"]["clientId"], 1002);

    // What is kept holds no secret.
    let kept = serde_json::to_string(&emu.data).expect("json");
    for secret in [SF_PASSWORD, SF_CONSUMER_SECRET, SF_TOKEN, DB_PASSWORD] {
        assert!(
            !kept.contains(secret) && !kept.contains(&b64(secret)),
            "{kept}"
        );
    }
    assert!(kept.contains("\"consumerId\":\"key\""), "{kept}");

    // The three views agree.
    let list = emu.call(Endpoint::ListOrganizations, Some(&token), &Value::Null);
    let orgs = body(&list)["orgs"].as_array().expect("orgs");
    assert_eq!(orgs.len(), 2);
    assert_eq!(orgs[0]["sfSubclient"]["clientId"], 1001);
    assert_eq!(orgs[0]["sfSubclient"]["clientName"], "Acme-SFDC");
    let clients = emu.call(Endpoint::ListClients, Some(&token), &Value::Null);
    assert_eq!(
        body(&clients)["clientProperties"][1]["client"]["clientEntity"]["clientName"],
        "Beta"
    );
    let by_name = emu.call(
        Endpoint::GetClient("byName(clientName='ACME-sfdc')".into()),
        Some(&token),
        &Value::Null,
    );
    assert_eq!(
        body(&by_name)["clientProperties"][0]["client"]["clientEntity"]["clientId"],
        1001
    );
    let by_id = emu.call(
        Endpoint::GetClient("1002".into()),
        Some(&token),
        &Value::Null,
    );
    assert_eq!(
        body(&by_id)["clientProperties"][0]["client"]["clientEntity"]["clientName"],
        "Beta"
    );
    let missing = emu.call(
        Endpoint::GetClient("999".into()),
        Some(&token),
        &Value::Null,
    );
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[test]
fn emulator_refuses_an_unknown_plan_with_http_200() {
    let mut emu = Emulator::new(CommvaultConfig {
        known_plans: Some(vec![(12, "Server plan".into())]),
        ..CommvaultConfig::default()
    });
    let token = emu.login();
    let mut other = create_body("x");
    other["plan"]["planId"] = json!(13);
    let answer = emu.call(Endpoint::CreateOrganization, Some(&token), &other);
    assert_eq!(answer.status, StatusCode::OK);
    assert_ne!(body(&answer)["response"]["errorCode"], 0);
    assert!(emu.data.organizations.is_empty());
    let known = emu.call(
        Endpoint::CreateOrganization,
        Some(&token),
        &create_body("x"),
    );
    assert_eq!(body(&known)["response"]["errorCode"], 0);
}

#[test]
fn emulator_routes_paths_without_case() {
    let route = |method: &str, path: &str| Endpoint::route(method, path);
    assert_eq!(route("POST", "/Login"), Ok(Endpoint::Login));
    assert_eq!(route("POST", "/login"), Ok(Endpoint::Login));
    assert_eq!(
        route("GET", "/salesforce/organization"),
        Ok(Endpoint::ListOrganizations)
    );
    assert_eq!(
        route("POST", "/SALESFORCE/Organization/"),
        Ok(Endpoint::CreateOrganization)
    );
    assert_eq!(
        route("GET", "/client/byName(clientName='Acme')"),
        Ok(Endpoint::GetClient("byName(clientName='Acme')".into()))
    );
    assert_eq!(route("GET", "/Login"), Err(StatusCode::METHOD_NOT_ALLOWED));
    assert_eq!(
        route("DELETE", "/Salesforce/Organization"),
        Err(StatusCode::METHOD_NOT_ALLOWED)
    );
    assert_eq!(route("GET", "/Nothing"), Err(StatusCode::NOT_FOUND));
    assert_eq!(
        emulator::strip_prefix("/webconsole/api/Login"),
        Some("/Login")
    );
    assert_eq!(emulator::strip_prefix("/commandcenter/apix/Login"), None);
}

// The real client against the sandbox on loopback.

async fn start(commvault: CommvaultConfig, tweak: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    // The tests' own HTTP client needs a TLS provider chosen, whichever test runs first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = SandboxConfig {
        commvault,
        seed: Some(20_261_123),
        ..SandboxConfig::default()
    };
    tweak(&mut config);
    Sandbox::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("sandbox starts")
}

fn cv_url(sandbox: &Sandbox) -> String {
    format!("{}/commandcenter/api", sandbox.base_url())
}

fn connect_with(spec: &Spec, secrets: SecretResolver) -> AnyProvider {
    let options = ConnectOptions {
        secrets,
        ..ConnectOptions::default()
    };
    AnyProvider::connect(&spec.providers["cv"], &options).expect("connect")
}

const LOGIN: &str = "POST /commandcenter/api/Login";
const LIST: &str = "GET /commandcenter/api/Salesforce/Organization";
const CREATE: &str = "POST /commandcenter/api/Salesforce/Organization";

fn served(sandbox: &Sandbox, endpoint: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get("commvault_salesforce")
        .and_then(|e| e.get(endpoint))
        .copied()
        .unwrap_or(0)
}

fn held(sandbox: &Sandbox) -> u64 {
    sandbox
        .stats()
        .organizations
        .get("commvault_salesforce")
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn client_creates_once_adopts_a_taken_name_and_explains_refusals() {
    let sandbox = start(
        CommvaultConfig {
            known_plans: Some(vec![(12, "Server plan".into())]),
            ..CommvaultConfig::default()
        },
        |_| {},
    )
    .await;
    let orgs = format!(
        "{}{}",
        full_org("acme", "Acme-SFDC"),
        small_org("odd_plan", "odd-plan", 99)
    );
    let spec = spec(&orgs, &cv_url(&sandbox));
    // The same name in another case, in specs of its own: one spec can't declare both
    // (validate refuses natural keys that differ only in case on one instance).
    let again = self::spec(&full_org("acme_again", "ACME-sfdc"), &cv_url(&sandbox));
    let cv = connect_with(&spec, secrets());
    cv.login().await.expect("login");
    let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
    assert!(cv.read(&keys).await.expect("read").is_empty());
    assert_eq!(served(&sandbox, LIST), 1);

    let created = cv
        .create(&spec.orgs["acme"], CreateContext::default())
        .await
        .expect("create");
    assert_eq!(created.remote_id, "1001");
    assert_eq!(served(&sandbox, CREATE), 1);

    // The same name in another case: Commvault's 409, which apply adopts.
    match cv
        .create(&again.orgs["acme_again"], CreateContext::default())
        .await
    {
        Err(ProviderError::AlreadyExists { message }) => {
            assert!(message.contains("already exists"), "{message}");
        }
        other => panic!("wanted AlreadyExists, got {other:?}"),
    }
    let found = cv
        .settle(&again.orgs["acme_again"], None)
        .await
        .expect("settle")
        .expect("found by a key in another case");
    assert_eq!(found.remote_id, "1001");
    assert_eq!(
        found.detail.get("instance_id").map(String::as_str),
        Some("51001")
    );

    // HTTP 200 with a non-zero errorCode: refused, nothing made.
    match cv
        .create(&spec.orgs["odd_plan"], CreateContext::default())
        .await
    {
        Err(ProviderError::Rejected { status, message }) => {
            assert_eq!(status, 200);
            assert!(
                message.contains("Plan [Server plan] with id [99]"),
                "{message}"
            );
        }
        other => panic!("wanted Rejected, got {other:?}"),
    }
    assert_eq!(held(&sandbox), 1);
    // One login for everything.
    assert_eq!(served(&sandbox, LOGIN), 1);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_logs_in_again_once_when_its_token_lapses() {
    // Each token serves two calls.
    let sandbox = start(
        CommvaultConfig {
            token_max_uses: Some(2),
            ..CommvaultConfig::default()
        },
        |_| {},
    )
    .await;
    let spec = spec(&small_org("a", "A", 1), &cv_url(&sandbox));
    let cv = connect_with(&spec, secrets());
    cv.read(&[]).await.expect("first");
    cv.read(&[]).await.expect("second");
    assert_eq!(served(&sandbox, LOGIN), 1);
    // The third call gets a 401: one login more, the call sent again, and it worked.
    cv.create(&spec.orgs["a"], CreateContext::default())
        .await
        .expect("create");
    assert_eq!(served(&sandbox, LOGIN), 2);
    assert_eq!(served(&sandbox, CREATE), 2);
    assert_eq!(held(&sandbox), 1);
    sandbox.shutdown().await.expect("shutdown");

    // A token refused even when fresh: one renewal, then Unauthorized, never a loop.
    let sandbox = start(
        CommvaultConfig {
            token_max_uses: Some(0),
            ..CommvaultConfig::default()
        },
        |_| {},
    )
    .await;
    let spec = self::spec(&small_org("a", "A", 1), &cv_url(&sandbox));
    let cv = connect_with(&spec, secrets());
    match cv.create(&spec.orgs["a"], CreateContext::default()).await {
        Err(ProviderError::Unauthorized { message }) => {
            assert!(message.contains("fresh token"), "{message}");
            assert!(!message.contains("QSDK"), "{message}");
        }
        other => panic!("wanted Unauthorized, got {other:?}"),
    }
    assert_eq!(served(&sandbox, LOGIN), 2);
    assert_eq!(served(&sandbox, CREATE), 2);
    assert_eq!(held(&sandbox), 0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_reports_a_refused_login_without_secrets() {
    let sandbox = start(CommvaultConfig::default(), |_| {}).await;
    let spec = spec(&small_org("a", "A", 1), &cv_url(&sandbox));
    let cv = connect_with(
        &spec,
        secrets_with(&[("CV_PASSWORD", "s3cret-wrong-password")]),
    );
    let error = cv.login().await.expect_err("refused");
    let text = error.to_string();
    assert!(matches!(error, ProviderError::Login { .. }), "{text}");
    assert!(text.contains("Invalid Username or Password"), "{text}");
    for secret in [
        "s3cret-wrong-password".to_string(),
        b64("s3cret-wrong-password"),
        emulator::USERNAME.to_string(),
    ] {
        assert!(!text.contains(&secret), "{text}");
    }
    sandbox.shutdown().await.expect("shutdown");
}

// End to end: the real binary against the sandbox on loopback.

use crate::harness::Run;

/// Runs the binary on `dir`'s specs and state, with the test secrets exported; nothing secret
/// may show in what it prints.
fn orgform(dir: &Path, args: &[&str]) -> Run {
    let run = crate::harness::run_on(dir, args, SECRETS);
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
    run
}

/// No secret value, in plain or in base64, and no session token.
fn assert_clean(what: &str, text: &str) {
    for (name, value) in SECRETS {
        assert!(
            !text.contains(value) && !text.contains(&b64(value)),
            "{what} leaks the value of {name}:\n{text}"
        );
    }
    assert!(!text.contains("QSDK"), "{what} shows a token:\n{text}");
}

const THREE_ORGS: &[(&str, &str)] = &[
    ("acme", "acme-sfdc-prod"),
    ("globex", "Globex-SFDC"),
    ("initech", "initech-sfdc"),
];

fn write_specs(dir: &Path, sandbox: &Sandbox, max_concurrency: u32) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let orgs: String = THREE_ORGS
        .iter()
        .map(|(address, name)| full_org(address, name))
        .collect();
    let text = format!(
        "{}{orgs}",
        provider_table(&cv_url(sandbox), max_concurrency)
    );
    std::fs::write(specs.join("cv.toml"), text).expect("write specs");
}

fn state_of(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state written");
    assert_clean("state", &text);
    serde_json::from_str(&text).expect("state json")
}

/// The stats as `GET /_sandbox/stats` serves them, to check the route too.
async fn stats_json(sandbox: &Sandbox) -> Value {
    reqwest::get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

/// The plan, apply, plan cycle is `scenario.rs`; here, the requests each run makes.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_one_login_and_one_list_per_run() {
    let sandbox = start(CommvaultConfig::default(), |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, 3);

    let plan = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    crate::harness::assert_run_snapshot!("plan_three", plan, dir.path());
    // One login, one list for all three, nothing created.
    assert_eq!(served(&sandbox, LOGIN), 1);
    assert_eq!(served(&sandbox, LIST), 1);
    assert_eq!(served(&sandbox, CREATE), 0);

    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let stats = stats_json(&sandbox).await;
    assert_eq!(stats["requests"]["commvault_salesforce"][CREATE], 3);
    assert_eq!(stats["requests"]["commvault_salesforce"][LIST], 2);
    assert_eq!(stats["requests"]["commvault_salesforce"][LOGIN], 2);
    assert_eq!(stats["organizations"]["commvault_salesforce"], 3);

    let state = state_of(dir.path());
    for (address, _) in THREE_ORGS {
        assert_eq!(state["orgs"][address]["status"], "created", "{state}");
        assert!(state["orgs"][address]["remote_id"].is_string(), "{state}");
    }
    // Debug logs carry no secret either (checked by `orgform` itself).
    orgform(dir.path(), &["plan", "-vv"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

/// Logs in and creates an organization straight through the API, as someone else would have.
async fn create_directly(sandbox: &Sandbox, name: &str) -> u64 {
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{}/Login", cv_url(sandbox)))
        .json(&json!({"username": emulator::USERNAME, "password": b64(emulator::PASSWORD)}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let token = login["token"].as_str().expect("token");
    // Another spelling of the path: Commvault's paths ignore case.
    let created: Value = client
        .post(format!("{}/salesforce/organization", cv_url(sandbox)))
        .header("Authtoken", token)
        .json(&create_body(name))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("create json");
    created["response"]["entity"]["clientId"]
        .as_u64()
        .expect("client id")
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_name_taken_in_another_case_is_adopted_never_duplicated() {
    let sandbox = start(CommvaultConfig::default(), |_| {}).await;
    let id = create_directly(&sandbox, "GLOBEX-sfdc").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, 3);

    let plan = orgform(dir.path(), &["plan"]).expect(0);
    crate::harness::assert_run_snapshot!("plan_adopts_another_case", plan, dir.path());
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 2);
    // The direct create's lower-case path was served by the catch-all, and counted there.
    assert_eq!(served(&sandbox, "POST /commandcenter/api/{*path}"), 1);
    assert_eq!(held(&sandbox), 3);
    assert_eq!(
        state_of(dir.path())["orgs"]["globex"]["remote_id"],
        id.to_string()
    );
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_lapsed_token_is_renewed_mid_run() {
    // Each token serves two calls, one create at a time: apply's list and the first create use
    // the first token; each later create finds its token lapsed (401), logs in again and is sent
    // again with the new one.
    let sandbox = start(
        CommvaultConfig {
            token_max_uses: Some(2),
            ..CommvaultConfig::default()
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, 1);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(held(&sandbox), 3);
    // The second create lapses the first token, the third goes through on the second.
    assert_eq!(served(&sandbox, CREATE), 4);
    assert_eq!(served(&sandbox, LOGIN), 2);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_lost_create_answers_are_settled_by_look_up() {
    // Every create is committed, then its answer is lost (HTTP 502): orgform must look each
    // name up and record what it finds, never send the create again.
    let sandbox = start(
        CommvaultConfig {
            lose_create_answers: 3,
            ..CommvaultConfig::default()
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, 3);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 3);
    assert_eq!(held(&sandbox), 3);
    let state = state_of(dir.path());
    for (address, _) in THREE_ORGS {
        assert_eq!(state["orgs"][address]["status"], "created", "{state}");
    }
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_answers_held_past_the_timeout_never_duplicate() {
    // Every request is done, then its answer held past the client's timeout: the login, the
    // list and every create. Nothing can succeed, and no create may ever be sent twice blind.
    let sandbox = start(CommvaultConfig::default(), |c| {
        c.fault_rate = 1.0;
        c.faults = vec![Fault::TimeoutAfterCommit];
        c.timeout_hang = Duration::from_millis(600);
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, 3);
    let run = orgform(
        dir.path(),
        &["apply", "--auto-approve", "--http-timeout", "200ms"],
    )
    .expect(1);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert_eq!(served(&sandbox, CREATE), 0);
    assert_eq!(held(&sandbox), 0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_injected_faults_never_duplicate() {
    let sandbox = start(CommvaultConfig::default(), |c| {
        c.fault_rate = 0.3;
        c.faults = Fault::ALL.to_vec();
        c.timeout_hang = Duration::from_millis(500);
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, 3);
    // A run may leave a create pending when its look-ups keep failing; the next run settles it.
    let mut runs = 0;
    loop {
        runs += 1;
        let run = orgform(
            dir.path(),
            &["apply", "--auto-approve", "--http-timeout", "250ms"],
        );
        if run.code == 0 || runs == 5 {
            run.expect(0);
            break;
        }
    }
    assert_eq!(held(&sandbox), 3, "{:?}", sandbox.stats());
    let faults: u64 = sandbox
        .stats()
        .faults
        .get("commvault_salesforce")
        .map_or(0, |f| f.values().sum());
    assert!(faults > 0, "faults were injected");
    orgform(
        dir.path(),
        &["plan", "--detailed-exitcode", "--http-timeout", "250ms"],
    )
    .expect(0);
    assert_eq!(held(&sandbox), 3);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_refusals_are_explained_and_not_recorded() {
    let sandbox = start(
        CommvaultConfig {
            known_plans: Some(vec![(1, "Server plan".into())]),
            ..CommvaultConfig::default()
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(
        specs.join("cv.toml"),
        format!(
            "{}{}",
            provider_table(&cv_url(&sandbox), 2),
            small_org("odd", "odd-plan", 77)
        ),
    )
    .expect("write");
    let run = orgform(dir.path(), &["apply", "--auto-approve"]).expect(1);
    assert!(
        run.stderr
            .contains("Plan [Server plan] with id [77] does not exist"),
        "{}",
        run.stderr
    );
    assert_eq!(held(&sandbox), 0);
    assert!(state_of(dir.path())["orgs"].get("odd").is_none());

    // A refused login (HTTP 200 with errList) stops the run before anything is sent.
    // The harness fails the run if the wrong password shows, as written or base64-encoded.
    let run = crate::harness::orgform(dir.path())
        .args(["plan", "--specs"])
        .arg(&specs)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .envs(SECRETS)
        .env("CV_PASSWORD", "s3cret-wrong-password")
        .run()
        .expect(1);
    assert!(
        run.stderr.contains("Invalid Username or Password"),
        "{}",
        run.stderr
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_embedded_sandbox_needs_no_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/commvault.toml"))
            .expect("example");
    // The example spec as it is: its credentials are not exported, its host is not ours.
    std::fs::write(specs.join("commvault.toml"), example).expect("write");
    orgform(dir.path(), &["apply", "--sandbox", "--auto-approve"]).expect(0);
    orgform(dir.path(), &["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
}
