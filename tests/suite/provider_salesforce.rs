//! Salesforce Trialforce sign-ups: the client's pure parts (SOQL quoting and chunking, which of
//! several sign-ups stands for a username, the error table, the JWT assertion), the emulator's
//! rules (validation, status on a clock, outcomes, SOQL, paging, quota, sessions), and the real
//! client against the emulator served on loopback.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use orgform::model::{NaturalKey, RemoteStatus, SecretRef};
use orgform::providers::salesforce::{
    self, SignupRecord, error_meaning, jwt_assertion, preferred, rsa_key_from_pem, soql_quote,
    username_queries,
};
use orgform::providers::{ConnectOptions, CreateContext, Provider, ProviderError};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

use orgform::sandbox::salesforce::{
    self as emulator, CLIENT_ID, CLIENT_SECRET, OverQuota, PASSWORD, Reply, Request,
    SalesforceConfig, SalesforceData, USERNAME,
};
use orgform::sandbox::{Fault, Sandbox, SandboxConfig};

pub(crate) const T0: u64 = 1_790_024_000_000;
const BASE: &str = "http://127.0.0.1:9";

// ---- the client's pure parts ----

#[test]
fn soql_literals_escape_quotes_and_backslashes() {
    assert_eq!(soql_quote("a@b.example"), "'a@b.example'");
    assert_eq!(soql_quote("o'brien@x.example"), r"'o\'brien@x.example'");
    assert_eq!(soql_quote(r"a\b"), r"'a\\b'");
    assert_eq!(soql_quote("a\nb\"c"), r#"'a\nb\"c'"#);
}

#[test]
fn usernames_are_looked_up_many_per_query_within_the_url_budget() {
    let select = salesforce::select("60.0");
    assert!(username_queries(&select, &[], 8000).is_empty());
    let names: Vec<String> = (0..500)
        .map(|i| format!("admin{i}@trial-{i}.example"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let queries = username_queries(&select, &refs, 2000);
    assert!(
        queries.len() > 1 && queries.len() < 100,
        "{}",
        queries.len()
    );
    let encoded = |q: &str| url::form_urlencoded::byte_serialize(q.as_bytes()).count();
    let mut seen = 0;
    for q in &queries {
        assert!(q.starts_with(&select), "{q}");
        assert!(q.contains(" WHERE Username IN ('"), "{q}");
        assert!(encoded(q) <= 2000 || q.matches('@').count() == 1);
        seen += q.matches('@').count();
    }
    assert_eq!(seen, 500, "every username asked exactly once");
    // Repeats, in any case, are asked once; a username longer than the budget gets its own.
    let long = format!("{}@x.example", "a".repeat(3000));
    let queries = username_queries(
        &select,
        &["A@x.example", "a@x.example", &long, "b@x.example"],
        2000,
    );
    assert_eq!(queries.len(), 3, "{queries:?}");
    assert_eq!(
        queries
            .iter()
            .map(|q| q.matches('@').count())
            .sum::<usize>(),
        3
    );
}

fn record(id: &str, status: &str, created: &str, code: Option<&str>) -> SignupRecord {
    SignupRecord {
        id: id.into(),
        username: "Admin@Acme.example".into(),
        status: status.into(),
        created_org_id: (status == "Success").then(|| "00D000000000001".into()),
        created_org_instance: (status == "Success").then(|| "NA224".into()),
        error_code: code.map(Into::into),
        created_date: Some(created.into()),
    }
}

#[test]
fn a_success_then_work_in_progress_then_the_newest_failure_stands_for_a_username() {
    let old_error = record("a", "Error", "2026-01-01T00:00:00.000+0000", Some("C-1019"));
    let new_error = record("b", "Error", "2026-01-02T00:00:00.000+0000", Some("T-0002"));
    let running = record("c", "In Progress", "2026-01-01T00:00:00.000+0000", None);
    let success = record("d", "Success", "2025-01-01T00:00:00.000+0000", None);
    let all = [
        old_error.clone(),
        new_error.clone(),
        running.clone(),
        success.clone(),
    ];
    assert_eq!(preferred(&all), Some(&success));
    assert_eq!(preferred(&all[..3]), Some(&running));
    assert_eq!(preferred(&all[..2]), Some(&new_error));
    assert_eq!(preferred(&[]), None);

    let remote = salesforce::to_remote(&success);
    assert_eq!(remote.natural_key, NaturalKey("admin@acme.example".into()));
    assert_eq!(remote.status, RemoteStatus::Ready);
    assert_eq!(
        remote.detail.get("created_org_id").map(String::as_str),
        Some("00D000000000001")
    );
    assert_eq!(
        remote
            .detail
            .get("created_org_instance")
            .map(String::as_str),
        Some("NA224")
    );
    assert_eq!(
        salesforce::to_remote(&new_error).status,
        RemoteStatus::Failed {
            code: "T-0002".into(),
            message: error_meaning("T-0002").into()
        }
    );
    assert_eq!(
        salesforce::to_remote(&record("e", "New", "", None)).status,
        RemoteStatus::InProgress {
            phase: "New".into()
        }
    );
}

#[test]
fn every_documented_error_code_has_its_meaning() {
    let codes = [
        ("C-1007", "duplicate username"),
        ("C-1015", "My Domain"),
        ("C-1016", "connected app"),
        ("C-1018", "invalid subdomain"),
        ("C-1019", "subdomain in use"),
        ("C-9999", "fatal"),
        ("S-1006", "e-mail"),
        ("S-2006", "country"),
        ("T-0001", "0TTxxxxxxxxxxxx"),
        ("T-0002", "not found"),
        ("T-0003", "not approved"),
    ];
    for (code, words) in codes {
        assert!(
            error_meaning(code).contains(words),
            "{code}: {}",
            error_meaning(code)
        );
    }
    assert!(error_meaning("X-0000").contains("does not document"));
}

/// A 2048-bit RSA key pair made by openssl, once per test run: (PKCS#8 PEM, public PEM).
fn rsa_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl must be on PATH for the JWT tests");
        assert!(private.status.success(), "openssl genpkey failed");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, &private.stdout).expect("write key");
        let public = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&path)
            .output()
            .expect("openssl pkey");
        assert!(public.status.success(), "openssl pkey -pubout failed");
        (
            String::from_utf8(private.stdout).expect("PEM is text"),
            String::from_utf8(public.stdout).expect("PEM is text"),
        )
    })
}

#[test]
fn the_jwt_assertion_carries_the_claims_salesforce_checks_and_a_valid_rs256_signature() {
    use base64::Engine as _;
    let (private, public) = rsa_key();
    let key = rsa_key_from_pem(private).expect("openssl's key loads");
    let jwt = jwt_assertion(
        "consumer-key",
        "admin@tmo.example",
        "https://login.salesforce.com",
        &key,
        1_000,
    )
    .expect("signs");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |p: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .expect("base64url")
    };
    let header: Value = serde_json::from_slice(&decode(parts[0])).expect("header");
    let claims: Value = serde_json::from_slice(&decode(parts[1])).expect("claims");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        claims,
        json!({"iss": "consumer-key", "sub": "admin@tmo.example", "aud": "https://login.salesforce.com", "exp": 1_300})
    );
    let der = emulator::rsa_public_key_der(public).expect("public key parses");
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, der)
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode(parts[2]),
        )
        .expect("the signature verifies with the public key");
}

#[test]
fn unusable_private_keys_say_why_without_quoting_the_key() {
    let pkcs1 = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretbits\n-----END RSA PRIVATE KEY-----\n";
    let why = rsa_key_from_pem(pkcs1).expect_err("refused");
    assert!(
        why.contains("PKCS#1") && why.contains("openssl pkcs8"),
        "{why}"
    );
    assert!(!why.contains("secretbits"));
    let garbage = "-----BEGIN PRIVATE KEY-----\nnot base64 secretbits!\n-----END PRIVATE KEY-----";
    let why = rsa_key_from_pem(garbage).expect_err("refused");
    assert!(!why.contains("secretbits"), "{why}");
    assert!(
        rsa_key_from_pem("hunter2")
            .expect_err("refused")
            .contains("not a PEM")
    );
}

// ---- the emulator's rules, on a clock ----

/// The emulator's rules without a server: its knobs, its data, and a seed per request.
pub(crate) struct Emu {
    config: SalesforceConfig,
    data: SalesforceData,
    requests: u64,
}

impl Emu {
    fn handle(&mut self, request: &Request<'_>, base_url: &str, now: u64) -> Reply {
        self.requests += 1;
        self.data
            .handle(&self.config, request, base_url, now, self.requests)
    }
}

pub(crate) fn emulator_with(config: SalesforceConfig) -> Emu {
    Emu {
        config,
        data: SalesforceData::default(),
        requests: 0,
    }
}

pub(crate) fn token(emu: &mut Emu) -> String {
    token_at(emu, T0)
}

fn token_at(emu: &mut Emu, now: u64) -> String {
    let form = format!(
        "grant_type=password&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&username={}&password={PASSWORD}",
        url::form_urlencoded::byte_serialize(USERNAME.as_bytes()).collect::<String>()
    );
    let reply = emu.handle(
        &Request {
            method: "POST",
            path: "/services/oauth2/token",
            body: form.as_bytes(),
            ..Request::default()
        },
        BASE,
        now,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.body.expect("body");
    assert_eq!(body["instance_url"], BASE);
    body["access_token"].as_str().expect("token").to_string()
}

pub(crate) fn call(
    emu: &mut Emu,
    token: &str,
    method: &'static str,
    path_and_query: &str,
    body: &Value,
    now: u64,
) -> Reply {
    let (path, query) = path_and_query
        .split_once('?')
        .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
    let bearer = format!("Bearer {token}");
    let body = body.to_string();
    emu.handle(
        &Request {
            method,
            path,
            query,
            authorization: Some(&bearer),
            query_options: None,
            body: body.as_bytes(),
        },
        BASE,
        now,
    )
}

pub(crate) fn signup(username: &str) -> Value {
    json!({
        "Company": "Acme", "Country": "US", "LastName": "Doe",
        "SignupEmail": "admin@acme.example", "Username": username,
        "TemplateId": "0TT000000000001",
    })
}

/// Signs up `count` usernames `{prefix}{i}@trial.example` at `T0`, each accepted (201); their ids.
fn sign_up_many(emu: &mut Emu, token: &str, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let username = format!("{prefix}{i}@trial.example");
            let reply = call(emu, token, "POST", CREATE, &signup(&username), T0);
            assert_eq!(reply.status, 201, "{username}");
            reply.body.expect("body")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect()
}

pub(crate) fn soql(emu: &mut Emu, token: &str, q: &str, now: u64) -> Reply {
    let path = format!(
        "/services/data/v60.0/query?q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    call(emu, token, "GET", &path, &Value::Null, now)
}

pub(crate) const CREATE: &str = "/services/data/v60.0/sobjects/SignupRequest/";

#[test]
fn create_validates_like_salesforce_and_answers_error_arrays() {
    let mut emu = emulator_with(SalesforceConfig::default());
    let t = token(&mut emu);
    let bad = json!({
        "company": "Acme", "Edition": "Enterprize", "Foo": 1, "Status": "Success",
        "PreferredLanguage": "xx", "SignupSource": "s".repeat(61),
    });
    let reply = call(&mut emu, &t, "POST", CREATE, &bad, T0);
    assert_eq!(reply.status, 400);
    let errors = reply.body.expect("body");
    let codes: Vec<&str> = errors
        .as_array()
        .expect("a top-level array")
        .iter()
        .map(|e| e["errorCode"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(codes.len(), 6, "{codes:?}");
    let find = |code: &str| {
        errors
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["errorCode"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("no {code} in {errors}"))
    };
    assert_eq!(
        find("REQUIRED_FIELD_MISSING"),
        json!({"message": "Required fields are missing: [Country, LastName, SignupEmail, Username, TemplateId]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Country", "LastName", "SignupEmail", "Username", "TemplateId"]})
    );
    assert_eq!(
        find("INVALID_FIELD")["message"],
        "No such column 'Foo' on sobject of type SignupRequest"
    );
    assert_eq!(
        find("INVALID_FIELD_FOR_INSERT_UPDATE")["fields"],
        json!(["Status"])
    );
    assert_eq!(find("STRING_TOO_LONG")["fields"], json!(["SignupSource"]));
    let picklists: Vec<Value> = errors
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
        .map(|e| e["fields"].clone())
        .collect();
    assert_eq!(
        picklists,
        [json!(["Edition"]), json!(["PreferredLanguage"])]
    );
    assert!(emu.data.signups.is_empty(), "nothing created");

    // The official sample's lower camel case names are accepted: names match without case.
    let sample = json!({
        "TemplateId": "0TT000000000001", "SignupEmail": "a@acme.example", "username": "a@trial.example",
        "Country": "US", "Company": "Acme", "lastName": "Doe",
    });
    let reply = call(&mut emu, &t, "POST", CREATE, &sample, T0);
    assert_eq!(reply.status, 201, "{reply:?}");
    let body = reply.body.expect("body");
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    assert!(body["id"].as_str().is_some_and(|id| id.len() == 18));

    // Neither a template nor an edition.
    let mut no_template = signup("b@trial.example");
    no_template
        .as_object_mut()
        .expect("object")
        .remove("TemplateId");
    let reply = call(&mut emu, &t, "POST", CREATE, &no_template, T0);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body.expect("body")[0]["fields"],
        json!(["TemplateId"])
    );
}

#[test]
fn signups_move_from_new_through_in_progress_to_their_outcome_on_the_clock() {
    let mut emu = emulator_with(SalesforceConfig {
        new_for: Duration::from_secs(2),
        in_progress_for: Duration::from_secs(3),
        ..SalesforceConfig::default()
    });
    let t = token(&mut emu);
    let reply = call(&mut emu, &t, "POST", CREATE, &signup("a@trial.example"), T0);
    let id = reply.body.expect("body")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let status_at = |emu: &mut Emu, now: u64| {
        let reply = call(
            emu,
            &t,
            "GET",
            &format!("/services/data/v60.0/sobjects/SignupRequest/{id}"),
            &Value::Null,
            now,
        );
        assert_eq!(reply.status, 200);
        reply.body.expect("body")
    };
    assert_eq!(status_at(&mut emu, T0 + 1_999)["Status"], "New");
    assert_eq!(status_at(&mut emu, T0 + 2_000)["Status"], "In Progress");
    assert_eq!(status_at(&mut emu, T0 + 4_999)["CreatedOrgId"], Value::Null);
    let done = status_at(&mut emu, T0 + 5_000);
    assert_eq!(done["Status"], "Success");
    assert!(
        done["CreatedOrgId"]
            .as_str()
            .is_some_and(|o| o.starts_with("00D") && o.len() == 15)
    );
    assert_eq!(done["ErrorCode"], Value::Null);
    assert_eq!(done["CreatedDate"], "2026-09-21T20:53:20.000+0000");
    assert_eq!(emu.data.organizations(), 1);
}

#[test]
fn outcomes_follow_the_documented_error_codes() {
    let mut emu = emulator_with(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        signups_per_day: 0,
        ..SalesforceConfig::default()
    });
    let t = token(&mut emu);
    let with = |username: &str, changes: Value| {
        let mut body = signup(username);
        for (k, v) in changes.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            with("ok@trial.example", json!({"Subdomain": "acme-trial"})),
            None,
        ),
        (with("OK@Trial.example", json!({})), Some("C-1007")),
        (
            with("t1@trial.example", json!({"TemplateId": "0TX000000000001"})),
            Some("T-0001"),
        ),
        (
            with("t2@trial.example", json!({"TemplateId": "0TT000000000404"})),
            Some("T-0002"),
        ),
        (
            with("t3@trial.example", json!({"TemplateId": "0TT000000000403"})),
            Some("T-0003"),
        ),
        (
            with("c@trial.example", json!({"Country": "XX"})),
            Some("S-2006"),
        ),
        (
            with("e@trial.example", json!({"SignupEmail": "nobody"})),
            Some("S-1006"),
        ),
        (
            with(
                "k@trial.example",
                json!({"ConnectedAppConsumerKey": "3MVG9"}),
            ),
            Some("C-1016"),
        ),
        (
            with(
                "d1@trial.example",
                json!({"Edition": "Developer", "Subdomain": "a".repeat(34)}),
            ),
            Some("C-1018"),
        ),
        (
            with("d2@trial.example", json!({"Subdomain": "-bad"})),
            Some("C-1018"),
        ),
        (
            with("d3@trial.example", json!({"Subdomain": "ACME-trial"})),
            Some("C-1019"),
        ),
    ];
    for (body, _) in &cases {
        let reply = call(&mut emu, &t, "POST", CREATE, body, T0);
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let reply = soql(
        &mut emu,
        &t,
        "SELECT Username, Status, ErrorCode FROM SignupRequest ORDER BY CreatedDate",
        T0 + 1,
    );
    let records = reply.body.expect("body")["records"].clone();
    for ((body, code), got) in cases.iter().zip(records.as_array().expect("records")) {
        assert_eq!(got["Username"], body["Username"]);
        match code {
            None => assert_eq!(got["Status"], "Success", "{got}"),
            Some(code) => {
                assert_eq!(got["Status"], "Error", "{got}");
                assert_eq!(got["ErrorCode"], *code, "{got}");
            }
        }
    }
}

/// A query's later pages read as the query ran: a sign-up that settled or was deleted since
/// shows as it was then, each page rendered from the query's own time.
#[test]
fn a_query_locator_pages_what_the_query_found_as_it_was_then() {
    let mut emu = emulator_with(SalesforceConfig {
        batch_size: 2,
        in_progress_for: Duration::from_secs(10),
        signups_per_day: 0,
        ..SalesforceConfig::default()
    });
    let t = token(&mut emu);
    let ids = sign_up_many(&mut emu, &t, "u", 5);
    let first = soql(
        &mut emu,
        &t,
        "SELECT Id, Status, IsDeleted FROM SignupRequest",
        T0 + 1,
    )
    .body
    .expect("body");
    assert_eq!(
        (first["totalSize"].as_u64(), first["done"].as_bool()),
        (Some(5), Some(false))
    );
    // Written as text record by record, in the order a tree of it serialized: the record's
    // `attributes`, then the fields as selected.
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(
        keys(&first),
        ["totalSize", "done", "nextRecordsUrl", "records"]
    );
    assert_eq!(
        keys(&first["records"][0]),
        ["attributes", "Id", "Status", "IsDeleted"]
    );
    assert_eq!(
        first["records"][0]["attributes"],
        serde_json::json!({
            "type": "SignupRequest",
            "url": format!("/services/data/v60.0/sobjects/SignupRequest/{}", ids[0]),
        })
    );
    let reply = call(
        &mut emu,
        &t,
        "DELETE",
        &format!("{CREATE}{}", ids[3]),
        &Value::Null,
        T0 + 2,
    );
    assert_eq!(reply.status, 204);
    let mut records: Vec<Value> = first["records"].as_array().expect("records").clone();
    let mut next = first["nextRecordsUrl"].as_str().map(str::to_string);
    while let Some(url) = next {
        // Long after every sign-up settled.
        let body = call(&mut emu, &t, "GET", &url, &Value::Null, T0 + 60_000)
            .body
            .expect("body");
        assert_eq!(body["totalSize"], 5);
        // Salesforce's example order on every page: the head before the records.
        let mut expected = vec!["totalSize", "done"];
        if body["done"] == false {
            expected.push("nextRecordsUrl");
        }
        expected.push("records");
        assert_eq!(keys(&body), expected);
        records.extend(body["records"].as_array().expect("records").iter().cloned());
        next = body["nextRecordsUrl"].as_str().map(str::to_string);
    }
    let seen: Vec<(&str, &str, bool)> = records
        .iter()
        .map(|r| {
            (
                r["Id"].as_str().expect("id"),
                r["Status"].as_str().expect("status"),
                r["IsDeleted"].as_bool().expect("deleted"),
            )
        })
        .collect();
    let expected: Vec<(&str, &str, bool)> = ids
        .iter()
        .map(|id| (id.as_str(), "In Progress", false))
        .collect();
    assert_eq!(seen, expected);
    // A query now finds four, settled.
    let now = soql(
        &mut emu,
        &t,
        "SELECT Id, Status FROM SignupRequest",
        T0 + 60_000,
    )
    .body
    .expect("body");
    assert_eq!(now["totalSize"], 4);
    assert_eq!(now["records"][0]["Status"], "Success");
}

#[test]
fn soql_subset_filters_escapes_limits_and_pages_through_next_records_url() {
    let mut emu = emulator_with(SalesforceConfig {
        batch_size: 3,
        in_progress_for: Duration::ZERO,
        signups_per_day: 0,
        ..SalesforceConfig::default()
    });
    let t = token(&mut emu);
    sign_up_many(&mut emu, &t, "u", 7);
    let reply = call(
        &mut emu,
        &t,
        "POST",
        CREATE,
        &signup("o'brien@trial.example"),
        T0,
    );
    assert_eq!(reply.status, 201);

    let q = format!(
        "SELECT Id, Username, Status FROM SignupRequest WHERE Username IN ({}, 'U1@TRIAL.example', 'nobody@x.example')",
        soql_quote("O'Brien@trial.example")
    );
    let body = soql(&mut emu, &t, &q, T0 + 1).body.expect("body");
    assert_eq!(body["totalSize"], 2);
    assert_eq!(body["done"], true);
    assert!(body.get("nextRecordsUrl").is_none());
    let rec = &body["records"][0];
    assert_eq!(rec["attributes"]["type"], "SignupRequest");
    assert!(
        rec["attributes"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("/services/data/v60.0/sobjects/SignupRequest/0TR"))
    );
    assert_eq!(
        rec.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["attributes", "Id", "Username", "Status"]
    );

    // Paging: 8 records in pages of 3.
    let mut body = soql(
        &mut emu,
        &t,
        "select id, username from signuprequest where status = 'success' and country = 'US'",
        T0 + 1,
    )
    .body
    .expect("body");
    let mut usernames = Vec::new();
    let mut pages = 1;
    loop {
        assert_eq!(body["totalSize"], 8);
        for r in body["records"].as_array().expect("records") {
            usernames.push(r["Username"].as_str().expect("username").to_string());
        }
        if body["done"] == true {
            break;
        }
        let next = body["nextRecordsUrl"].as_str().expect("next").to_string();
        assert!(next.starts_with("/services/data/v60.0/query/01g"), "{next}");
        body = call(&mut emu, &t, "GET", &next, &Value::Null, T0 + 2)
            .body
            .expect("body");
        pages += 1;
    }
    assert_eq!((pages, usernames.len()), (3, 8));

    let body = soql(
        &mut emu,
        &t,
        "SELECT Id FROM SignupRequest WHERE Username LIKE 'u%' LIMIT 2",
        T0 + 1,
    )
    .body
    .expect("body");
    assert_eq!(body["totalSize"], 2);
    let body = soql(&mut emu, &t, "SELECT COUNT() FROM SignupRequest WHERE (Username = 'u1@trial.example' OR Username = 'u2@trial.example')", T0 + 1)
        .body
        .expect("body");
    assert_eq!(body["totalSize"], 2);

    for (q, code) in [
        ("", "MALFORMED_QUERY"),
        ("SELECT Id FROM SignupRequest WHERE", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM SignupRequest WHERE Username = 'a' AND Status = 'b' OR Id = 'c'",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT Id FROM SignupRequest WHERE Username = 'unterminated",
            "MALFORMED_QUERY",
        ),
        ("SELECT Foo FROM SignupRequest", "INVALID_FIELD"),
        ("SELECT Id FROM Account", "INVALID_TYPE"),
    ] {
        let reply = soql(&mut emu, &t, q, T0);
        assert_eq!(reply.status, 400, "{q}");
        assert_eq!(reply.body.expect("body")[0]["errorCode"], code, "{q}");
    }
    let reply = call(
        &mut emu,
        &t,
        "GET",
        "/services/data/v60.0/query/01gnope-3",
        &Value::Null,
        T0,
    );
    assert_eq!(
        reply.body.expect("body")[0]["errorCode"],
        "INVALID_QUERY_LOCATOR"
    );
}

#[test]
fn the_daily_quota_rejects_or_fails_later_as_configured() {
    let mut emu = emulator_with(SalesforceConfig {
        signups_per_day: 2,
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    });
    let t = token(&mut emu);
    sign_up_many(&mut emu, &t, "q", 2);
    let reply = call(
        &mut emu,
        &t,
        "POST",
        CREATE,
        &signup("q2@trial.example"),
        T0 + 1,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body.expect("body"),
        json!([{"message": "Sign-up limit exceeded", "errorCode": "LIMIT_EXCEEDED"}])
    );
    assert_eq!(emu.data.signups.len(), 2, "nothing created over the quota");
    // 24 hours after the first sign-ups, the quota has room again.
    let day = 24 * 60 * 60 * 1000;
    // (The session lapsed in the meantime: 2 hours unused.)
    assert_eq!(
        soql(&mut emu, &t, "SELECT Id FROM SignupRequest", T0 + day).status,
        401
    );
    let t = token_at(&mut emu, T0 + day);
    let reply = call(
        &mut emu,
        &t,
        "POST",
        CREATE,
        &signup("q2@trial.example"),
        T0 + day,
    );
    assert_eq!(reply.status, 201);

    let reply = call(
        &mut emu,
        &t,
        "POST",
        CREATE,
        &signup("q3@trial.example"),
        T0 + day,
    );
    assert_eq!(reply.status, 201);

    emu.config.over_quota = OverQuota::FailLater;
    let reply = call(
        &mut emu,
        &t,
        "POST",
        CREATE,
        &signup("q4@trial.example"),
        T0 + day,
    );
    assert_eq!(reply.status, 201, "accepted, to fail later");
    let body = soql(
        &mut emu,
        &t,
        "SELECT Status, ErrorCode FROM SignupRequest WHERE Username = 'q4@trial.example'",
        T0 + day + 1,
    )
    .body
    .expect("body");
    assert_eq!(body["records"][0]["ErrorCode"], "C-9999");
    assert_eq!("fail-later".parse::<OverQuota>(), Ok(OverQuota::FailLater));
}

#[test]
fn tokens_are_checked_and_sessions_lapse() {
    let mut emu = emulator_with(SalesforceConfig {
        session_max_requests: Some(2),
        ..SalesforceConfig::default()
    });
    let login = |emu: &mut Emu, form: &str| {
        emu.handle(
            &Request {
                method: "POST",
                path: "/services/oauth2/token",
                body: form.as_bytes(),
                ..Request::default()
            },
            BASE,
            T0,
        )
    };
    let wrong = login(
        &mut emu,
        &format!(
            "grant_type=password&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&username=x&password=y"
        ),
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.body.expect("body"),
        json!({"error": "invalid_grant", "error_description": "authentication failure"})
    );
    let bad_client = login(&mut emu, "grant_type=password&client_id=nope");
    assert_eq!(bad_client.body.expect("body")["error"], "invalid_client_id");
    let no_grant = login(&mut emu, "");
    assert_eq!(
        no_grant.body.expect("body")["error_description"],
        "grant type is missing"
    );

    let t = token(&mut emu);
    let q = "SELECT Id FROM SignupRequest";
    assert_eq!(soql(&mut emu, &t, q, T0).status, 200);
    let second = soql(&mut emu, &t, q, T0);
    assert_eq!(second.status, 200);
    assert!(
        second
            .headers
            .iter()
            .any(|(k, v)| *k == "Sforce-Limit-Info" && v == "api-usage=2/15000")
    );
    let lapsed = soql(&mut emu, &t, q, T0);
    assert_eq!(lapsed.status, 401);
    assert_eq!(
        lapsed.body.expect("body"),
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert_eq!(soql(&mut emu, "made-up", q, T0).status, 401);
    let old = call(
        &mut emu,
        &t,
        "GET",
        "/services/data/v26.0/query?q=x",
        &Value::Null,
        T0,
    );
    assert_eq!(old.status, 404, "SignupRequest needs API 27.0");
}

// ---- the real client against the emulator in the sandbox, on loopback ----

fn only_salesforce(config: SalesforceConfig) -> SandboxConfig {
    SandboxConfig {
        salesforce: config,
        ..SandboxConfig::default()
    }
}

/// Requests the sandbox served at one Salesforce endpoint (its route pattern).
async fn served(sandbox: &Sandbox, endpoint: &str) -> u64 {
    crate::e2e::served(sandbox, "salesforce", endpoint).await
}

const TOKEN: &str = "POST /services/oauth2/token";
const CREATES: &str = "POST /services/data/{version}/sobjects/SignupRequest/";
const QUERIES: &str = "GET /services/data/{version}/query";
const NEXT_PAGES: &str = "GET /services/data/{version}/query/{locator}";

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

/// The sandbox credentials, as the environment variables the specs refer to.
const ENV: &[(&str, &str)] = &[
    ("SF_USERNAME", USERNAME),
    ("SF_PASSWORD", PASSWORD),
    ("SF_CLIENT_ID", CLIENT_ID),
    ("SF_CLIENT_SECRET", CLIENT_SECRET),
];

/// A provider `sf` at `base_url` (password flow unless `extra` says `auth = "jwt"`) and one
/// Enterprise-edition organization per username, `o0`, `o1`, ...
fn specs_text(base_url: &str, usernames: &[&str], extra: &str) -> String {
    let mut text = format!(
        "[provider.sf]\ntype = \"salesforce_signup\"\nbase_url = \"{base_url}\"\nusername = {{ env = \"SF_USERNAME\" }}\nclient_id = {{ env = \"SF_CLIENT_ID\" }}\n{extra}\n"
    );
    if !extra.contains("auth = \"jwt\"") {
        text.push_str(
            "password = { env = \"SF_PASSWORD\" }\nclient_secret = { env = \"SF_CLIENT_SECRET\" }\n",
        );
    }
    for (i, username) in usernames.iter().enumerate() {
        text.push_str(&format!(
            "\n[org.o{i}]\nprovider = \"sf\"\ncompany = \"Acme {i}\"\ncountry = \"US\"\nlast_name = \"Doe\"\nsignup_email = \"admin@acme.example\"\nusername = {}\nedition = \"Enterprise\"\n",
            serde_json::to_string(username).expect("a JSON string is a TOML basic string")
        ));
    }
    text
}

fn specs(base_url: &str, usernames: &[&str], extra: &str) -> Spec {
    Spec::load(&[SourceFile::new(
        "sf.toml",
        specs_text(base_url, usernames, extra),
    )])
    .expect("valid specs")
}

fn connect(spec: &Spec, secrets: SecretResolver) -> salesforce::Salesforce {
    let options = ConnectOptions {
        secrets,
        ..ConnectOptions::default()
    };
    salesforce::Salesforce::connect(&spec.providers["sf"], &options).expect("connects")
}

#[tokio::test]
async fn the_client_signs_up_reads_in_bulk_across_pages_and_renews_lapsed_sessions() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        batch_size: 2,
        in_progress_for: Duration::from_millis(300),
        session_max_requests: Some(4),
        ..SalesforceConfig::default()
    }))
    .await;
    let usernames = [
        "a@trial.example",
        "O'Brien@trial.example",
        "c@trial.example",
        "d@trial.example",
        "e@trial.example",
    ];
    let spec = specs(&sandbox.base_url(), &usernames, "");
    let client = connect(&spec, credentials());
    client.login().await.expect("logs in");

    for org in spec.orgs.values() {
        let created = client
            .create(org, CreateContext::default())
            .await
            .expect("created");
        assert!(created.remote_id.starts_with("0TR"));
        assert_eq!(
            created.status,
            RemoteStatus::InProgress {
                phase: "New".into()
            }
        );
    }
    let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
    let reality = client.read(&keys).await.expect("reads");
    assert_eq!(reality.len(), 5);
    let obrien = NaturalKey("o'brien@trial.example".into());
    assert!(matches!(
        reality.find(&obrien)[0].status,
        RemoteStatus::InProgress { .. }
    ));
    // One query for the five usernames, its rows in pages of two.
    assert_eq!(served(&sandbox, QUERIES).await, 1);
    assert_eq!(served(&sandbox, NEXT_PAGES).await, 2);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let reality = client.read(&keys).await.expect("reads");
    for key in &keys {
        let found = reality.find(key);
        assert_eq!(found.len(), 1, "{key}");
        assert_eq!(found[0].status, RemoteStatus::Ready, "{key}");
        assert!(
            found[0]
                .detail
                .get("created_org_id")
                .is_some_and(|id| id.starts_with("00D"))
        );
    }
    let settled = client
        .settle(&spec.orgs["o1"], None)
        .await
        .expect("settles")
        .expect("found");
    assert_eq!(settled.natural_key, obrien);

    // A look hands over each sign-up's status once its query is read to the end, no attributes.
    let queries = served(&sandbox, QUERIES).await;
    let (found, mut batches) = tokio::sync::mpsc::channel(8);
    client.look(&keys, &found).await.expect("looks");
    drop(found);
    let mut looked = Vec::new();
    while let Some(batch) = batches.recv().await {
        looked.extend(batch);
    }
    looked.sort_by(|a, b| a.natural_key.cmp(&b.natural_key));
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(
        looked
            .iter()
            .map(|o| o.natural_key.clone())
            .collect::<Vec<_>>(),
        expected
    );
    assert!(
        looked
            .iter()
            .all(|o| o.status == RemoteStatus::Ready && o.attributes.is_empty())
    );
    // One query (sent again where its session had lapsed).
    assert!(served(&sandbox, QUERIES).await > queries);

    // Sessions lapsed every 4 requests; the client logged in again each time, and sent each
    // sign-up once (a 401 is refused before any work, so resending it is safe).
    assert!(served(&sandbox, TOKEN).await >= 3);
    let creates = served(&sandbox, CREATES).await;
    assert!((5..=7).contains(&creates), "{creates}");
    assert_eq!(
        crate::e2e::stats(&sandbox).await["organizations"]["salesforce"],
        5
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_session_refused_right_after_login_is_renewed_once_then_reported() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        session_max_requests: Some(0),
        ..SalesforceConfig::default()
    }))
    .await;
    let spec = specs(&sandbox.base_url(), &["a@trial.example"], "");
    let client = connect(&spec, credentials());
    let err = client
        .create(&spec.orgs["o0"], CreateContext::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the provider refused the credentials: INVALID_SESSION_ID: Session expired or invalid"
    );
    assert_eq!(served(&sandbox, TOKEN).await, 2, "one login, one renewal");
    assert_eq!(served(&sandbox, CREATES).await, 2);
    assert_eq!(
        crate::e2e::stats(&sandbox).await["organizations"]["salesforce"],
        0
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn refusals_are_classified_and_carry_salesforces_words_but_no_secret() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        signups_per_day: 1,
        ..SalesforceConfig::default()
    }))
    .await;
    let spec = specs(
        &sandbox.base_url(),
        &["a@trial.example", "b@trial.example"],
        "",
    );

    // Wrong password: a login error naming Salesforce's code, not the password.
    let mut wrong = credentials();
    wrong.overrides.insert(
        SecretRef::Env("SF_PASSWORD".into()),
        SecretString::new("hunter2-wrong"),
    );
    let err = connect(&spec, wrong).login().await.expect_err("refused");
    assert!(matches!(err, ProviderError::Login { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "login failed: invalid_grant: authentication failure"
    );

    let client = connect(&spec, credentials());
    client
        .create(&spec.orgs["o0"], CreateContext::default())
        .await
        .expect("the first fits the quota");
    let err = client
        .create(&spec.orgs["o1"], CreateContext::default())
        .await
        .expect_err("over quota");
    match &err {
        ProviderError::Rejected {
            status: 400,
            message,
        } => assert_eq!(message, "LIMIT_EXCEEDED: Sign-up limit exceeded"),
        other => panic!("{other:?}"),
    }
    let all = format!("{err} {err:?}");
    for (_, secret) in ENV {
        assert!(!all.contains(secret));
    }
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn jwt_bearer_login_is_signed_with_the_key_file_and_verified() {
    let (private, public) = rsa_key();
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        jwt_public_key: Some(public.clone()),
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tmo.pem"), private).expect("key file");
    let spec = specs(
        &sandbox.base_url(),
        &["jwt@trial.example"],
        "auth = \"jwt\"\nprivate_key = { file = \"tmo.pem\" }",
    );
    let with_key_dir = || SecretResolver {
        base_dir: Some(dir.path().to_path_buf()),
        ..credentials()
    };
    let client = connect(&spec, with_key_dir());
    client.login().await.expect("JWT login");
    client
        .create(&spec.orgs["o0"], CreateContext::default())
        .await
        .expect("created with the JWT session");

    // Another key: the signature does not verify.
    let other = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl");
    std::fs::write(dir.path().join("tmo.pem"), &other.stdout).expect("key file");
    let err = connect(&spec, with_key_dir())
        .login()
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "login failed: invalid_grant: invalid assertion: bad signature"
    );
    sandbox.shutdown().await.expect("shutdown");
}

// ---- end to end: the orgform binary against the sandbox ----

/// Runs the binary in `dir` with `--specs DIR/specs --state DIR/state.json` and the sandbox
/// credentials exported.
fn orgform(dir: &Path, args: &[&str]) -> crate::harness::Run {
    crate::harness::run_on(dir, args, ENV)
}

fn write_specs(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/sf.toml"), text).expect("write specs");
}

/// No credential, and no access token (they start with the sandbox TMO's org id), in `text`.
fn assert_no_secrets(what: &str, text: &str) {
    for (name, value) in ENV {
        assert!(!text.contains(value), "{what} leaks the value of {name}");
    }
    assert!(!text.contains("00DSB0000000001!"), "{what} leaks a token");
}

fn state(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state written");
    assert_no_secrets("state", &text);
    serde_json::from_str(&text).expect("state json")
}

const APPLY: &[&str] = &["apply", "--auto-approve", "--poll-interval", "50ms"];

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_plan_apply_poll_then_no_changes() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::from_millis(300),
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let usernames = [
        "admin@acme-trial.example",
        "O'Brien@OBrien-Trial.example",
        "x@globex.example",
    ];
    write_specs(dir.path(), &specs_text(&sandbox.base_url(), &usernames, ""));

    let plan = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    // Three sign-ups, and the daily quota of 20.
    crate::harness::assert_run_snapshot!("plan_three_signups", plan, dir.path());

    let apply = orgform(dir.path(), APPLY).expect(0);
    assert!(apply.stderr.contains("3 created"), "{}", apply.stderr);
    assert_eq!(served(&sandbox, CREATES).await, 3);

    let recorded = state(dir.path());
    for address in ["o0", "o1", "o2"] {
        let record = &recorded["orgs"][address];
        assert_eq!(record["status"], "created", "{record}");
        assert!(
            record["remote_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("0TR"))
        );
        assert!(
            record["detail"]["created_org_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("00D"))
        );
    }
    assert_eq!(
        recorded["orgs"]["o1"]["natural_key"],
        "o'brien@obrien-trial.example"
    );

    let again = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_eq!(served(&sandbox, CREATES).await, 3);
    // One login per run, reused by every read and create of that run.
    assert_eq!(served(&sandbox, TOKEN).await, 3);
    let loud = orgform(dir.path(), &["plan", "-vv"]).expect(0);
    for run in [&plan, &apply, &again, &loud] {
        assert_no_secrets("output", &run.stdout);
        assert_no_secrets("messages", &run.stderr);
    }
    sandbox.shutdown().await.expect("shutdown");
}

/// Sign-ups still in progress when the settle timeout passes are left `pending`, each looked at
/// once at least, and the apply ends: the rounds stop with the timeout.
#[tokio::test(flavor = "multi_thread")]
async fn sign_ups_past_the_settle_timeout_are_left_pending_after_a_look() {
    let (sandbox, dir) =
        slow_sign_ups(&["a@slow.example", "b@slow.example", "c@slow.example"]).await;
    let apply = orgform(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--poll-interval",
            "50ms",
            "--settle-timeout",
            "300ms",
        ],
    )
    .expect(0);
    assert!(apply.stderr.contains("3 pending"), "{}", apply.stderr);
    let recorded = state(dir.path());
    for address in ["o0", "o1", "o2"] {
        assert_eq!(recorded["orgs"][address]["status"], "pending", "{recorded}");
    }
    // The plan's read, then rounds of one query each for all three: at least one, and no more
    // than the timeout leaves room for.
    let rounds = served(&sandbox, QUERIES).await - 1;
    assert!((1..=8).contains(&rounds), "{rounds} rounds");
    assert_eq!(served(&sandbox, CREATES).await, 3);
    sandbox.shutdown().await.expect("shutdown");
}

/// An interrupt while sign-ups are polled ends the apply at once: they are left `pending`, as
/// recorded, for the next run to settle, and no round follows.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_leaves_sign_ups_being_polled_pending() {
    let (sandbox, dir) = slow_sign_ups(&["a@slow.example", "b@slow.example"]).await;
    // The default settle timeout (15 minutes): only the interrupt ends the waiting.
    let child = crate::harness::orgform(dir.path())
        .args(["apply", "--auto-approve", "--poll-interval", "50ms"])
        .arg("--specs")
        .arg(dir.path().join("specs"))
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .envs(ENV)
        .spawn();
    // Polled: both sent and a round (past the plan's read) answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while served(&sandbox, CREATES).await < 2 || served(&sandbox, QUERIES).await < 2 {
        assert!(std::time::Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let signal = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(signal.success());
    let run = child.wait().expect(1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("Interrupted"), "{}", run.stderr);
    let recorded = state(dir.path());
    for address in ["o0", "o1"] {
        assert_eq!(recorded["orgs"][address]["status"], "pending", "{recorded}");
    }
    assert_eq!(served(&sandbox, CREATES).await, 2);
    sandbox.shutdown().await.expect("shutdown");
}

/// Logs in to the sandbox with the password grant, as a client would, outside orgform: the
/// token answer (`instance_url`, `access_token`).
pub(crate) async fn sandbox_token(http: &reqwest::Client, sandbox: &Sandbox) -> Value {
    password_token(http, &sandbox.base_url()).await
}

/// A password-grant token from the sandbox at `base_url`.
async fn password_token(http: &reqwest::Client, base_url: &str) -> Value {
    http.post(format!("{base_url}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token")
}

/// Logs in to the sandbox as a client would and signs `username` up directly, with what
/// [`specs_text`] declares for its first organization (an adopt compares what is reported).
async fn sign_up_directly(sandbox: &Sandbox, username: &str) {
    let mut body = signup(username);
    body["Company"] = json!("Acme 0");
    body["Edition"] = json!("Enterprise");
    let http = reqwest::Client::new();
    let token = sandbox_token(&http, sandbox).await;
    let created = http
        .post(format!(
            "{}/services/data/v60.0/sobjects/SignupRequest/",
            token["instance_url"].as_str().expect("instance_url")
        ))
        .bearer_auth(token["access_token"].as_str().expect("token"))
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_signups_are_adopted_by_username_in_any_case_and_failures_are_reported() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    sign_up_directly(&sandbox, "Admin@Initech-Trial.example").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = specs_text(&sandbox.base_url(), &["admin@initech-trial.example"], "");
    text.push_str("\n[org.no_template]\nprovider = \"sf\"\ncompany = \"Hooli\"\ncountry = \"US\"\nlast_name = \"Belson\"\nsignup_email = \"gavin@hooli.example\"\nusername = \"gavin@hooli-trial.example\"\ntemplate_id = \"0TT000000000404\"\n");
    write_specs(dir.path(), &text);

    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(plan.stdout.contains("1 to create"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 to adopt"), "{}", plan.stdout);

    let apply = orgform(dir.path(), APPLY).expect(0);
    assert!(apply.stderr.contains("T-0002"), "{}", apply.stderr);
    assert!(
        apply.stderr.contains("template not found"),
        "{}",
        apply.stderr
    );
    assert_eq!(
        served(&sandbox, CREATES).await,
        2,
        "one by hand, one by orgform"
    );
    let recorded = state(dir.path());
    assert_eq!(recorded["orgs"]["o0"]["status"], "created");
    assert_eq!(recorded["orgs"]["no_template"]["status"], "failed");
    assert_eq!(recorded["orgs"]["no_template"]["error"]["code"], "T-0002");

    // The failure is shown, not retried blindly: the declaration must change first.
    let again = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(again.stdout.contains("T-0002"), "{}", again.stdout);
    orgform(dir.path(), APPLY).expect(0);
    assert_eq!(served(&sandbox, CREATES).await, 2);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_sign_ups_a_day_the_rest_wait_for_tomorrow() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let names: Vec<String> = (0..22)
        .map(|i| format!("trial{i:02}@quota.example"))
        .collect();
    let usernames: Vec<&str> = names.iter().map(String::as_str).collect();
    write_specs(dir.path(), &specs_text(&sandbox.base_url(), &usernames, ""));

    let plan = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan json");
    assert_eq!(
        plan["quotas"],
        json!([{"provider": "sf", "limit": 20, "used": 0, "provider_count": 0, "planned": 20, "deferred": 2}])
    );
    let apply = orgform(dir.path(), APPLY).expect(0);
    assert!(apply.stderr.contains("20 created"), "{}", apply.stderr);
    assert_eq!(served(&sandbox, CREATES).await, 20);

    // The same day: the last two still wait, and nothing more is sent.
    let again = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(again.stdout.contains("2 to create"), "{}", again.stdout);
    orgform(dir.path(), APPLY).expect(0);
    assert_eq!(served(&sandbox, CREATES).await, 20);
    assert_eq!(
        crate::e2e::stats(&sandbox).await["organizations"]["salesforce"],
        20
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_up_salesforce_refuses_over_its_quota_is_an_error_not_a_retry() {
    // The emulator allows fewer sign-ups than orgform expects: the third is refused with 400.
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        signups_per_day: 2,
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let usernames = ["a@q.example", "b@q.example", "c@q.example"];
    let text = specs_text(&sandbox.base_url(), &usernames, "max_concurrency = 1");
    write_specs(dir.path(), &text);
    let apply = orgform(dir.path(), APPLY).expect(1);
    assert!(
        apply
            .stderr
            .contains("LIMIT_EXCEEDED: Sign-up limit exceeded"),
        "{}",
        apply.stderr
    );
    assert_eq!(
        served(&sandbox, CREATES).await,
        3,
        "sent once each, the refused one not resent"
    );
    assert_eq!(
        crate::e2e::stats(&sandbox).await["organizations"]["salesforce"],
        2
    );
    let recorded = state(dir.path());
    assert_eq!(
        recorded["orgs"].as_object().map(serde_json::Map::len),
        Some(2)
    );
    let again = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(again.stdout.contains("1 to create"), "{}", again.stdout);
    sandbox.shutdown().await.expect("shutdown");
}

/// The usernames of every SignupRequest the sandbox kept in its data file.
fn signed_up(data_file: &Path) -> Vec<String> {
    let data: Value = serde_json::from_str(&std::fs::read_to_string(data_file).expect("data file"))
        .expect("json");
    let mut usernames: Vec<String> = data["salesforce"]["signups"]
        .as_array()
        .expect("signups")
        .iter()
        .map(|s| {
            s["fields"]["Username"]
                .as_str()
                .expect("username")
                .to_lowercase()
        })
        .collect();
    usernames.sort();
    usernames
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_lapsing_after_every_request_never_duplicate_a_sign_up() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_file = data.path().join("sandbox.json");
    let sandbox = crate::e2e::start(SandboxConfig {
        data_file: Some(data_file.clone()),
        ..only_salesforce(SalesforceConfig {
            session_max_requests: Some(1),
            in_progress_for: Duration::ZERO,
            ..SalesforceConfig::default()
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let usernames = [
        "a@lapse.example",
        "b@lapse.example",
        "c@lapse.example",
        "d@lapse.example",
    ];
    // One create at a time: with a session good for one request, concurrent creates would
    // only keep taking each other's fresh sessions.
    write_specs(
        dir.path(),
        &specs_text(&sandbox.base_url(), &usernames, "max_concurrency = 1"),
    );
    orgform(dir.path(), APPLY).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    // Each create met a lapsed session at least once and was sent again after a new login.
    assert!(served(&sandbox, CREATES).await > 4);
    assert!(served(&sandbox, TOKEN).await > 4);
    sandbox.shutdown().await.expect("shutdown");
    assert_eq!(
        signed_up(&data_file),
        usernames,
        "each username signed up exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_and_lost_answers_never_duplicate_a_sign_up() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_file = data.path().join("sandbox.json");
    let sandbox = crate::e2e::start(SandboxConfig {
        fault_rate: 0.3,
        faults: vec![
            Fault::TooManyRequestsRetryAfter,
            Fault::InternalError,
            Fault::Unavailable,
            Fault::Reset,
            Fault::TimeoutAfterCommit,
        ],
        timeout_hang: Duration::from_millis(1500),
        seed: Some(11),
        data_file: Some(data_file.clone()),
        ..only_salesforce(SalesforceConfig {
            in_progress_for: Duration::ZERO,
            ..SalesforceConfig::default()
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let usernames = [
        "a@fault.example",
        "b@fault.example",
        "c@fault.example",
        "d@fault.example",
    ];
    write_specs(dir.path(), &specs_text(&sandbox.base_url(), &usernames, ""));
    let mut settled = false;
    for _ in 0..6 {
        // A run may end early on a fault; the next one settles what it left pending.
        let _ = orgform(dir.path(), &[APPLY, &["--http-timeout", "1s"]].concat());
        let plan = orgform(
            dir.path(),
            &["plan", "--detailed-exitcode", "--http-timeout", "1s"],
        );
        if plan.code == 0 {
            settled = true;
            break;
        }
    }
    assert!(settled, "apply converges despite the faults");
    let stats = crate::e2e::stats(&sandbox).await;
    let faults: u64 = stats["faults"]["salesforce"]
        .as_object()
        .map_or(0, |f| f.values().filter_map(Value::as_u64).sum());
    assert!(faults > 0, "faults were injected: {stats}");
    sandbox.shutdown().await.expect("shutdown");
    assert_eq!(
        signed_up(&data_file),
        usernames,
        "each username signed up exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_bearer_end_to_end() {
    let (private, public) = rsa_key();
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        jwt_public_key: Some(public.clone()),
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tmo.pem"), private).expect("key");
    write_specs(
        dir.path(),
        &specs_text(
            &sandbox.base_url(),
            &["jwt@trial.example"],
            "auth = \"jwt\"\nprivate_key = { file = \"tmo.pem\" }",
        ),
    );
    let apply = orgform(dir.path(), APPLY).expect(0);
    assert!(apply.stderr.contains("1 created"), "{}", apply.stderr);
    assert!(!apply.stderr.contains("BEGIN") && !apply.stdout.contains("BEGIN"));
    assert!(!state(dir.path()).to_string().contains("PRIVATE KEY"));
    sandbox.shutdown().await.expect("shutdown");
}

#[test]
fn the_example_specs_run_against_the_embedded_sandbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/salesforce.toml");
    std::fs::copy(example, dir.path().join("specs/salesforce.toml")).expect("copy example");
    let run = |args: &[&str]| crate::harness::run(dir.path(), args, &[]);
    let plan = run(&["plan", "--sandbox", "--detailed-exitcode"]).expect(2);
    crate::harness::assert_run_snapshot!("example_plan", plan, dir.path());
    let apply = run(&[
        "apply",
        "--sandbox",
        "--auto-approve",
        "--poll-interval",
        "200ms",
    ])
    .expect(0);
    assert!(apply.stderr.contains("3 created"), "{}", apply.stderr);
    run(&["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
}

/// The daily quota, as the exactly-once issue states it: ten applies in a row, each wanting five
/// more sign-ups, never send more than 20 in 24 hours; the rest wait, shown as deferred.
#[tokio::test(flavor = "multi_thread")]
async fn ten_applies_wanting_five_more_each_never_send_more_than_twenty_a_day() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut usernames: Vec<String> = Vec::new();
    for round in 0..10 {
        for i in 0..5 {
            usernames.push(format!("admin{round}-{i}@quota.example"));
        }
        let refs: Vec<&str> = usernames.iter().map(String::as_str).collect();
        write_specs(dir.path(), &specs_text(&sandbox.base_url(), &refs, ""));
        let run = orgform(dir.path(), APPLY);
        assert!(run.code == 0, "round {round}: {}", run.stderr);
        let sent = served(&sandbox, CREATES).await;
        assert!(sent <= 20, "round {round}: {sent} sign-ups sent in a day");
        assert_eq!(
            sent,
            (5 * (round + 1)).min(20),
            "round {round}: every sign-up the quota allows is sent"
        );
    }
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("30 deferred by quota"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("20 of 20 creates used in the last 24 hours"),
        "{}",
        plan.stdout
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// No path sends a sign-up over the quota: a pending create that a plan without remote reads
/// leaves to apply, and that apply finds absent, still waits when the day's 20 are spent.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_create_found_absent_still_respects_the_quota() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &specs_text(&sandbox.base_url(), &["late@quota.example"], ""),
    );
    let spec = Spec::load(&[SourceFile::new(
        "sf.toml",
        specs_text(&sandbox.base_url(), &["late@quota.example"], ""),
    )])
    .expect("valid");
    let org = &spec.orgs["o0"];
    let hour_ago = orgform::time::format(orgform::time::now() - 3600);
    let state = json!({
        "version": 1,
        "lineage": "11111111-2222-4333-8444-555555555555",
        "serial": 4,
        "orgs": {"o0": {
            "provider": "sf", "provider_type": "salesforce_signup",
            "natural_key": org.natural_key.0, "digest": org.digest, "status": "pending",
            "attributes": {}, "attempted_at": hour_ago, "updated_at": hour_ago,
        }},
        "creates_sent": {"sf": vec![hour_ago.clone(); 20]},
    });
    std::fs::write(dir.path().join("state.json"), state.to_string()).expect("write state");
    let run = orgform(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--poll-interval",
            "50ms",
        ],
    );
    assert!(
        run.stderr.contains("daily quota of 20 creates"),
        "{}",
        run.stderr
    );
    assert_eq!(
        served(&sandbox, CREATES).await,
        0,
        "nothing sent over the quota"
    );
    sandbox.shutdown().await.expect("shutdown");
}

// ---- issue 13: the JWT audience is the login host, never the sandbox's own URL ----

/// The emulator's answer to a JWT bearer grant whose `aud` is `audience`.
fn jwt_grant(audience: &str) -> Reply {
    let key = rsa_key_from_pem(&rsa_key().0).expect("key");
    let assertion =
        jwt_assertion(CLIENT_ID, USERNAME, audience, &key, T0 / 1000).expect("assertion");
    let form =
        format!("grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={assertion}");
    emulator_with(SalesforceConfig::default()).handle(
        &Request {
            method: "POST",
            path: "/services/oauth2/token",
            body: form.as_bytes(),
            ..Request::default()
        },
        BASE,
        T0,
    )
}

#[test]
fn the_emulator_takes_only_a_login_host_as_the_jwt_audience_never_its_own_url() {
    for login in [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
    ] {
        assert_eq!(jwt_grant(login).status, 200, "{login}");
    }
    // Its own URL stands for a My Domain host, which Salesforce refuses as an audience.
    for wrong in [BASE, "https://acme-tmo.my.salesforce.com", ""] {
        let reply = jwt_grant(wrong);
        assert_eq!(reply.status, 400, "{wrong}");
        assert_eq!(
            reply.body.expect("body"),
            json!({"error": "invalid_grant", "error_description": "audience is invalid"}),
            "{wrong}"
        );
    }
}

#[test]
fn the_jwt_audience_is_the_login_host_of_the_base_url_or_the_one_stated() {
    let audience = salesforce::jwt_audience;
    let login = "https://login.salesforce.com";
    let test = "https://test.salesforce.com";
    assert_eq!(audience("https://login.salesforce.com", None), login);
    assert_eq!(audience("https://acme-tmo.my.salesforce.com", None), login);
    assert_eq!(audience("http://127.0.0.1:9", None), login);
    assert_eq!(audience("https://test.salesforce.com/", None), test);
    assert_eq!(
        audience("https://acme-tmo--uat.sandbox.my.salesforce.com", None),
        test
    );
    assert_eq!(
        audience(
            "https://acme-tmo.my.salesforce.com",
            Some("https://test.salesforce.com/")
        ),
        test
    );
}

/// A JWT provider at `base_url` (and `extra` keys), one organization, and its key file.
fn jwt_specs(dir: &Path, base_url: &str, extra: &str) {
    std::fs::write(dir.join("tmo.pem"), &rsa_key().0).expect("key file");
    write_specs(
        dir,
        &specs_text(
            base_url,
            &["jwt@trial.example"],
            &format!("auth = \"jwt\"\nprivate_key = {{ file = \"tmo.pem\" }}\n{extra}"),
        ),
    );
}

#[test]
fn jwt_with_a_my_domain_base_url_logs_in_at_the_embedded_sandbox() {
    // The sandbox stands in for the My Domain host; the audience is still the login host.
    let dir = tempfile::tempdir().expect("tempdir");
    jwt_specs(dir.path(), "https://acme-tmo.my.salesforce.com", "");
    let apply = orgform(
        dir.path(),
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "--poll-interval",
            "50ms",
        ],
    )
    .expect(0);
    assert!(apply.stderr.contains("1 created"), "{}", apply.stderr);
    let again = orgform(dir.path(), &["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
    assert!(!again.stderr.contains("audience"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stated_audience_that_is_not_a_login_host_is_refused_before_any_create() {
    let (_, public) = rsa_key();
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        jwt_public_key: Some(public.clone()),
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    jwt_specs(
        dir.path(),
        &sandbox.base_url(),
        "audience = \"https://acme-tmo.my.salesforce.com\"",
    );
    let plan = orgform(dir.path(), &["plan"]).expect(1);
    assert!(
        plan.stderr.contains("audience is invalid"),
        "{}",
        plan.stderr
    );
    let apply = orgform(dir.path(), APPLY).expect(1);
    assert!(
        apply.stderr.contains("audience is invalid"),
        "{}",
        apply.stderr
    );
    assert_eq!(served(&sandbox, CREATES).await, 0, "no create sent");

    // A stated login host is what Salesforce takes.
    jwt_specs(
        dir.path(),
        &sandbox.base_url(),
        "audience = \"https://test.salesforce.com\"",
    );
    orgform(dir.path(), &["plan"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

// ---- issue 13: the daily quota is counted at the provider too ----

#[test]
fn the_emulator_counts_sign_ups_since_a_soql_datetime_and_refuses_a_quoted_one() {
    let mut emu = emulator_with(SalesforceConfig::default());
    let hour = 3_600_000;
    for (i, at) in [T0 - 30 * hour, T0 - 2 * hour, T0 - hour]
        .into_iter()
        .enumerate()
    {
        let t = token_at(&mut emu, at);
        let reply = call(
            &mut emu,
            &t,
            "POST",
            "/services/data/v60.0/sobjects/SignupRequest/",
            &json!({"Company": "Acme", "Country": "US", "LastName": "Doe",
                    "SignupEmail": "a@acme.example", "Username": format!("u{i}@acme.example"),
                    "Edition": "Enterprise"}),
            at,
        );
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let t = token(&mut emu);
    let since = orgform::time::format((T0 - 24 * hour) / 1000);
    let count = |emu: &mut Emu, soql: &str| {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        call(
            emu,
            &t,
            "GET",
            &format!("/services/data/v60.0/queryAll?q={q}"),
            &Value::Null,
            T0,
        )
    };
    let reply = count(
        &mut emu,
        &format!("SELECT COUNT() FROM SignupRequest WHERE CreatedDate > {since}"),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body.expect("body"),
        json!({"totalSize": 2, "done": true, "records": []})
    );
    // Salesforce takes a date-time unquoted; quoted, it is a string and refused.
    let quoted = count(
        &mut emu,
        &format!("SELECT COUNT() FROM SignupRequest WHERE CreatedDate > '{since}'"),
    );
    assert_eq!(quoted.status, 400, "{quoted:?}");
    assert!(
        quoted.body.expect("body")[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be of type dateTime")),
    );
}

/// A folder whose specs declare `n` sign-ups `PREFIX0@trial.example`, ... on `sandbox`, as one
/// team's state would: two such folders are two states sharing one Trialforce org's quota.
fn sign_up_specs(sandbox: &Sandbox, prefix: &str, n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let users: Vec<String> = (0..n)
        .map(|i| format!("{prefix}{i}@trial.example"))
        .collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    write_specs(dir.path(), &specs_text(&sandbox.base_url(), &users, ""));
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_ups_another_state_made_count_against_the_quota_before_any_create() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    // One team's state: 15 sign-ups today.
    let first = sign_up_specs(&sandbox, "first", 15);
    orgform(first.path(), APPLY).expect(0);
    assert_eq!(served(&sandbox, CREATES).await, 15);

    // Another state, the same Trialforce org: 5 of its 10 fit in today's 20.
    let second = sign_up_specs(&sandbox, "second", 10);
    let plan = orgform(second.path(), &["plan", "--format", "json"]).expect(0);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan json");
    let quota = &plan["quotas"][0];
    assert_eq!(
        (&quota["used"], &quota["planned"], &quota["deferred"]),
        (&json!(15), &json!(5), &json!(5)),
        "{quota}"
    );
    let deferred: Vec<&Value> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["deferred"] == true)
        .collect();
    assert_eq!(deferred.len(), 5);
    assert!(
        deferred[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("15 in the last 24 hours by the provider's count")),
        "{}",
        deferred[0]["reason"]
    );

    let apply = orgform(second.path(), APPLY).expect(0);
    assert!(!apply.stderr.contains("LIMIT_EXCEEDED"), "{}", apply.stderr);
    assert_eq!(
        served(&sandbox, CREATES).await,
        20,
        "only the 5 the quota takes were sent"
    );
    // The next plan offers nothing more today.
    let again = orgform(second.path(), &["plan", "--format", "json"]).expect(0);
    let again: Value = serde_json::from_str(&again.stdout).expect("plan json");
    assert_eq!(again["quotas"][0]["planned"], 0, "{}", again["quotas"]);
    assert_eq!(served(&sandbox, CREATES).await, 20);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_a_refreshed_plan_counts_the_providers_sign_ups_before_creating() {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::ZERO,
        ..SalesforceConfig::default()
    }))
    .await;
    let first = sign_up_specs(&sandbox, "first", 18);
    orgform(first.path(), APPLY).expect(0);

    // A plan from specs and state alone promises 4; apply looks again and sends only 2.
    let second = sign_up_specs(&sandbox, "second", 4);
    let apply = orgform(
        second.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--poll-interval",
            "50ms",
        ],
    )
    .expect(0);
    assert!(!apply.stderr.contains("LIMIT_EXCEEDED"), "{}", apply.stderr);
    assert!(apply.stderr.contains("2 created"), "{}", apply.stderr);
    assert_eq!(served(&sandbox, CREATES).await, 20);
    sandbox.shutdown().await.expect("shutdown");
}

/// The daily sign-up limit is a flag of `orgform sandbox` (Trialforce's 20 by default), so a
/// benchmark can lift it: with 2, the third sign-up of the day is refused; with 0, there is none.
#[tokio::test(flavor = "multi_thread")]
async fn the_daily_sign_up_limit_is_a_sandbox_flag() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for (limit, tries, accepted) in [("2", 3, 2), ("0", 25, 25)] {
        let (child, url) = crate::provider_oracle::serve(&["--salesforce-signups-per-day", limit]);
        let http = reqwest::Client::new();
        let token = password_token(&http, &url).await;
        let mut created = 0;
        for i in 0..tries {
            let status = http
                .post(format!(
                    "{}/services/data/v60.0/sobjects/SignupRequest/",
                    token["instance_url"].as_str().expect("instance_url")
                ))
                .bearer_auth(token["access_token"].as_str().expect("token"))
                .json(&signup(&format!("user{i}@limit.example")))
                .send()
                .await
                .expect("create")
                .status();
            if status == reqwest::StatusCode::CREATED {
                created += 1;
            } else {
                assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "limit {limit}");
            }
        }
        assert_eq!(created, accepted, "limit {limit}");
        drop(child);
    }
}

/// A sandbox whose sign-ups stay in progress for ten minutes, and specs declaring `usernames`
/// (addresses `o0`, `o1`, ...) against it.
async fn slow_sign_ups(usernames: &[&str]) -> (orgform::sandbox::Sandbox, tempfile::TempDir) {
    let sandbox = crate::e2e::start(only_salesforce(SalesforceConfig {
        in_progress_for: Duration::from_secs(600),
        ..SalesforceConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &specs_text(&sandbox.base_url(), usernames, ""));
    (sandbox, dir)
}
