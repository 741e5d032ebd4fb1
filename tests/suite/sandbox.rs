//! The sandbox through real HTTP on 127.0.0.1:0: the Heron emulator's wire contract, injected
//! faults, stats, persistence across restarts, and logs free of secrets.

use std::net::SocketAddr;
use std::time::Duration;

use orgform::sandbox::{Fault, HERON_API_KEY, Sandbox, SandboxConfig, SandboxError, Stats};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "webhook-shared-secret-7f3a";
const REFRESH_TOKEN: &str = "refresh-token-91b2";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn client() -> Client {
    // Already installed by another test is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().expect("a reqwest client")
}

/// A running sandbox and a client for it.
pub(crate) struct Heron {
    sandbox: Sandbox,
    http: Client,
}

impl Heron {
    pub(crate) async fn start(config: SandboxConfig) -> Heron {
        let sandbox = Sandbox::start(loopback(), config)
            .await
            .expect("sandbox starts");
        Heron {
            sandbox,
            http: client(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    pub(crate) async fn create(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/crm_integrations"))
            .header("x-api-key", HERON_API_KEY)
            .json(body)
            .send()
            .await
            .expect("create answered")
    }

    pub(crate) async fn patch(&self, heron_id: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(&format!("/api/crm_integrations/{heron_id}")))
            .header("x-api-key", HERON_API_KEY)
            .json(body)
            .send()
            .await
            .expect("patch answered")
    }

    pub(crate) async fn list(&self) -> Vec<Value> {
        let response = self
            .http
            .get(self.url("/api/crm_integrations"))
            .header("x-api-key", HERON_API_KEY)
            .send()
            .await
            .expect("list answered");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("list body is JSON");
        body["crm_integrations"]
            .as_array()
            .expect("crm_integrations is an array")
            .clone()
    }

    async fn stats(&self) -> Stats {
        self.http
            .get(self.url("/_sandbox/stats"))
            .send()
            .await
            .expect("stats answered")
            .json()
            .await
            .expect("stats body")
    }

    pub(crate) async fn stop(self) {
        self.sandbox.shutdown().await.expect("clean shutdown");
    }
}

/// A small valid create body, with an unknown field and a field mapping left to its defaults.
pub(crate) fn integration(instance_url: &str) -> Value {
    json!({
        "provider": "salesforce",
        "instance_url": instance_url,
        "auth": {"client_id": "cid", "refresh_token": REFRESH_TOKEN},
        "secret": SECRET,
        "config": {
            "data_source_accounts_config": {
                "external_name": "Account",
                "key": "Account",
                "field_mappings": [{"field_name": "Name", "heron_company_attribute_label": "company_name"}]
            },
            "default_id": {"external_name": "Account", "alias": "Company"}
        },
        "orgform_note": "kept"
    })
}

/// The request body of seed 003, placeholders and all.
fn seed_request() -> Value {
    json!({
        "auth": {},
        "config": {
            "data_source_accounts_config": {
                "description": "A company or person",
                "external_lookup_config": {
                    "external_lookup_fields_and": ["<string>"],
                    "external_lookup_fields_or": ["<string>"],
                    "sort_field_name": "CreatedDate",
                    "sort_order": "ASC"
                },
                "external_name": "Account",
                "field_mappings": [{
                    "external_lookup_field_name": "<string>",
                    "external_object_name_for_id": "Account",
                    "field_name": "Name",
                    "heron_company_attribute_label": "owner_1_first_name",
                    "max_length": 255,
                    "overwrite_on_update": true,
                    "regex_remove": "pattern",
                    "required": true,
                    "static_value": "static value",
                    "static_value_key": "date_today",
                    "value_mapping_name": "state",
                    "value_type": "Text"
                }],
                "is_optional": false,
                "key": "Account",
                "required_ids": [{"alias": "Company", "external_name": "Account"}],
                "static_data": [{"key": "status", "value": "<any>"}]
            },
            "default_id": {"alias": "Company", "external_name": "Account"},
            "object_configs": [],
            "policy_evaluation_config": {
                "external_object_name": "Opportunity",
                "failure_reason_external_name": "Failure_Reason__c",
                "result_external_name": "Submission_Result_from_Heron__c"
            },
            "sync_file_classes": {},
            "value_mappings": []
        },
        "failure_notification_channel": null,
        "instance_url": "https://sandbox.salesforce.com",
        "is_enabled": true,
        "is_live": true,
        "provider": "salesforce",
        "secret": "<string>"
    })
}

fn heron_error(code: u16, description: Value, name: &str) -> Value {
    json!({"code": code, "description": description, "name": name})
}

#[tokio::test]
async fn heron_refuses_a_missing_or_wrong_api_key() {
    let heron = Heron::start(SandboxConfig::default()).await;
    for key in [None, Some("not-the-key")] {
        let mut request = heron.http.get(heron.url("/api/crm_integrations"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["code"], 401);
        assert_eq!(body["name"], "Unauthorized");
        assert!(body["description"].is_string());
    }
    heron.stop().await;
}

#[tokio::test]
async fn heron_create_wraps_fills_defaults_and_never_returns_write_only_fields() {
    let heron = Heron::start(SandboxConfig::default()).await;
    let response = heron
        .create(&integration("https://acme.my.salesforce.com"))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = response.text().await.expect("body");
    assert!(!text.contains(SECRET) && !text.contains(REFRESH_TOKEN));
    let at = |key: &str| text.find(&format!("\"{key}\"")).expect(key);
    assert!(
        at("config") < at("heron_id") && at("heron_id") < at("provider"),
        "keys sorted as Heron sorts them: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("JSON");
    let created = &body["crm_integration"];
    let heron_id = created["heron_id"].as_str().expect("a heron_id");
    assert!(heron_id.starts_with("crm_"), "{heron_id}");
    assert_eq!(
        *created,
        json!({
            "config": {
                "child_file_filtering_enabled": true,
                "data_source_accounts_config": {
                    "external_name": "Account",
                    "field_mappings": [{
                        "external_lookup_field_name": null,
                        "external_object_name_for_id": null,
                        "field_name": "Name",
                        "heron_company_attribute_label": "company_name",
                        "max_length": null,
                        "overwrite_on_update": true,
                        "regex_remove": null,
                        "required": false,
                        "static_value": null,
                        "static_value_key": null,
                        "value_mapping_name": null,
                        "value_type": null
                    }],
                    "is_optional": false,
                    "key": "Account"
                },
                "default_id": {"alias": "Company", "external_name": "Account"},
                "download_legacy_attachments": false,
                "object_configs": [],
                "small_file_filtering_enabled": false,
                "sync_file_classes": {},
                "value_mappings": []
            },
            "failure_notification_channel": null,
            "heron_id": heron_id,
            "instance_url": "https://acme.my.salesforce.com",
            "is_enabled": true,
            "is_live": true,
            "orgform_note": "kept",
            "provider": "salesforce"
        })
    );
    heron.stop().await;
}

#[tokio::test]
async fn heron_accepts_the_seed_request_and_answers_like_the_seed() {
    let heron = Heron::start(SandboxConfig::default()).await;
    let response = heron.create(&seed_request()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("JSON");
    let created = &body["crm_integration"];
    let mut expected = seed_request();
    let fields = expected.as_object_mut().expect("an object");
    fields.remove("auth");
    fields.remove("secret");
    fields.insert("heron_id".into(), created["heron_id"].clone());
    let config = fields["config"].as_object_mut().expect("config");
    config.insert("child_file_filtering_enabled".into(), json!(true));
    config.insert("small_file_filtering_enabled".into(), json!(false));
    config.insert("download_legacy_attachments".into(), json!(false));
    assert_eq!(*created, expected);
    heron.stop().await;
}

#[tokio::test]
async fn heron_validation_errors_are_marshmallow_shaped_422s() {
    let heron = Heron::start(SandboxConfig::default()).await;

    let response = heron.create(&json!({})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = ["Missing data for required field."];
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        heron_error(
            422,
            json!({"json": {
                "auth": missing, "config": missing, "instance_url": missing,
                "provider": missing, "secret": missing
            }}),
            "Unprocessable Entity"
        )
    );

    let mut body = integration("not a url");
    body["config"] = json!({
        "default_id": {"alias": "Company"},
        "data_source_accounts_config": {
            "external_name": "Account",
            "key": "Account",
            "external_lookup_config": {"sort_order": "UP"},
            "field_mappings": [{"field_name": "Name"}, {"static_value_key": "yesterday"}]
        },
        "sync_file_classes": {"pdf": "yes"},
        "value_mappings": "none"
    });
    body["is_live"] = json!(null);
    let response = heron.create(&body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        heron_error(
            422,
            json!({"json": {
                "config": {
                    "data_source_accounts_config": {
                        "external_lookup_config": {"sort_order": ["Must be one of: ASC, DESC."]},
                        "field_mappings": {"1": {
                            "field_name": missing,
                            "static_value_key": ["Must be one of: date_today."]
                        }}
                    },
                    "default_id": {"external_name": missing},
                    "sync_file_classes": {"pdf": {"value": ["Not a valid boolean."]}},
                    "value_mappings": ["Not a valid list."]
                },
                "instance_url": ["Not a valid URL."],
                "is_live": ["Field may not be null."]
            }}),
            "Unprocessable Entity"
        )
    );

    let response = heron.create(&json!([1, 2])).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json::<Value>().await.expect("JSON")["description"],
        json!({"json": {"_schema": ["Invalid input type."]}})
    );

    assert!(heron.list().await.is_empty(), "nothing invalid is stored");
    heron.stop().await;
}

#[tokio::test]
async fn heron_answers_400_to_malformed_json_and_its_own_404_and_405() {
    let heron = Heron::start(SandboxConfig::default()).await;
    let response = heron
        .http
        .post(heron.url("/api/crm_integrations"))
        .header("x-api-key", HERON_API_KEY)
        .header("content-type", "application/json")
        .body("{\"provider\": ")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        heron_error(400, json!({"json": ["Invalid JSON body."]}), "Bad Request")
    );

    let response = heron
        .http
        .get(heron.url("/api/transactions"))
        .header("x-api-key", HERON_API_KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        (body["code"].clone(), body["name"].clone()),
        (json!(404), json!("Not Found"))
    );

    let response = heron
        .http
        .delete(heron.url("/api/crm_integrations/crm_1"))
        .header("x-api-key", HERON_API_KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], 405);
    assert_eq!(body["name"], "Method Not Allowed");
    heron.stop().await;
}

#[tokio::test]
async fn heron_lists_every_integration_duplicates_included() {
    let heron = Heron::start(SandboxConfig::default()).await;
    let mut created = Vec::new();
    for url in [
        "https://a.my.salesforce.com",
        "https://a.my.salesforce.com",
        "https://b.example.com",
    ] {
        let response = heron.create(&integration(url)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("JSON");
        created.push(body["crm_integration"].clone());
    }
    let listed = heron.list().await;
    assert_eq!(listed, created);
    assert_ne!(listed[0]["heron_id"], listed[1]["heron_id"]);
    heron.stop().await;
}

#[tokio::test]
async fn heron_patch_answers_the_bare_object_and_404s_unknown_ids() {
    let heron = Heron::start(SandboxConfig::default()).await;
    let body: Value = heron
        .create(&integration("https://acme.my.salesforce.com"))
        .await
        .json()
        .await
        .expect("JSON");
    let original = body["crm_integration"].clone();
    let heron_id = original["heron_id"].as_str().expect("id").to_owned();

    let response = heron
        .patch(
            &heron_id,
            &json!({"is_enabled": false, "secret": "rotated-secret", "heron_id": "crm_forged"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    assert!(!text.contains("rotated-secret"));
    let patched: Value = serde_json::from_str(&text).expect("JSON");
    let mut expected = original.clone();
    expected["is_enabled"] = json!(false);
    assert_eq!(patched, expected, "unwrapped, only is_enabled changed");
    assert_eq!(heron.list().await, vec![expected]);

    let response = heron.patch(&heron_id, &json!({"is_live": "no"})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = heron
        .patch("crm_unknown", &json!({"is_enabled": false}))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        heron_error(404, json!("CRM integration not found"), "Not Found")
    );
    heron.stop().await;
}

fn header_u64(response: &reqwest::Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn heron_rate_limit_counts_a_fixed_window_and_answers_429_with_retry_after() {
    let heron = Heron::start(SandboxConfig {
        heron_rate_limit: 2,
        ..SandboxConfig::default()
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let get = || {
        heron
            .http
            .get(heron.url("/api/crm_integrations"))
            .header("x-api-key", HERON_API_KEY)
            .send()
    };
    for remaining in [1, 0] {
        let response = get().await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_u64(&response, "x-ratelimit-limit"), 2);
        assert_eq!(header_u64(&response, "x-ratelimit-remaining"), remaining);
        let reset = header_u64(&response, "x-ratelimit-reset");
        assert!(
            (now..=now + 70).contains(&reset),
            "reset {reset}, now {now}"
        );
        assert!(response.headers().get("retry-after").is_none());
    }
    let response = get().await.expect("answered");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_u64(&response, "x-ratelimit-remaining"), 0);
    let retry_after = header_u64(&response, "retry-after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        heron_error(429, json!("2 per 1 minute"), "Too Many Requests")
    );
    heron.stop().await;
}

#[tokio::test]
async fn stats_count_requests_per_endpoint_and_reset_clears_everything() {
    let heron = Heron::start(SandboxConfig::default()).await;
    let created: Value = heron
        .create(&integration("https://acme.my.salesforce.com"))
        .await
        .json()
        .await
        .expect("JSON");
    heron.create(&json!({})).await;
    heron.list().await;
    let heron_id = created["crm_integration"]["heron_id"].as_str().expect("id");
    heron.patch(heron_id, &json!({"is_live": false})).await;
    heron.patch("crm_unknown", &json!({})).await;
    heron
        .http
        .get(heron.url("/api/nothing/here"))
        .send()
        .await
        .expect("answered");

    let stats = heron.stats().await;
    let expected: Stats = serde_json::from_value(json!({
        "requests": {"heron": {
            "POST /api/crm_integrations": 2,
            "GET /api/crm_integrations": 1,
            "PATCH /api/crm_integrations/{heron_id}": 2,
            "GET (unmatched)": 1
        }},
        "faults": {},
        "organizations": {"commvault_salesforce": 0, "heron": 1, "neoncrm": 0, "oracle_commerce": 0, "salesforce": 0}
    }))
    .expect("Stats");
    // The sandbox's own CPU time moves between two reads: it is there, and compared apart.
    let cpu = |stats: &Stats| stats.cpu_ms.is_some();
    let without_cpu = |mut stats: Stats| {
        stats.cpu_ms = None;
        stats
    };
    assert!(cpu(&stats), "process CPU time reported");
    assert_eq!(without_cpu(stats), expected);
    assert_eq!(
        without_cpu(heron.sandbox.stats()),
        expected,
        "the same as over HTTP"
    );

    let response = heron
        .http
        .post(heron.url("/_sandbox/reset"))
        .send()
        .await
        .expect("answered");
    assert!(response.status().is_success());
    assert!(heron.list().await.is_empty());
    let stats = heron.stats().await;
    assert_eq!(stats.organizations["heron"], 0);
    assert_eq!(
        stats.requests["heron"].iter().collect::<Vec<_>>(),
        vec![(&"GET /api/crm_integrations".to_owned(), &1)],
        "only the list made after the reset"
    );
    heron.stop().await;
}

#[tokio::test]
async fn control_routes_answer_and_unknown_paths_are_404() {
    let sandbox = Sandbox::start(loopback(), SandboxConfig::default())
        .await
        .expect("sandbox starts");
    let http = client();
    let url = |path: &str| format!("{}{path}", sandbox.base_url());
    let stats: Stats = http
        .get(url("/_sandbox/stats"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("stats body");
    // The process's CPU time moves between the two reads; everything else is the same.
    let without_cpu = |mut s: Stats| {
        s.cpu_ms = None;
        s
    };
    assert_eq!(without_cpu(stats), without_cpu(sandbox.stats()));
    let reset = http
        .post(url("/_sandbox/reset"))
        .send()
        .await
        .expect("answered");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let missing = http.get(url("/nowhere")).send().await.expect("answered");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    sandbox.shutdown().await.expect("clean shutdown");
}

fn faulty(fault: Fault) -> SandboxConfig {
    SandboxConfig {
        fault_rate: 1.0,
        faults: vec![fault],
        seed: Some(7),
        ..SandboxConfig::default()
    }
}

#[tokio::test]
async fn status_faults_answer_in_herons_shape_before_any_work() {
    let cases = [
        (Fault::TooManyRequests, 429, false),
        (Fault::TooManyRequestsRetryAfter, 429, true),
        (Fault::InternalError, 500, false),
        (Fault::Unavailable, 503, false),
    ];
    for (fault, status, retry_after) in cases {
        let heron = Heron::start(faulty(fault)).await;
        let response = heron
            .create(&integration("https://acme.my.salesforce.com"))
            .await;
        assert_eq!(response.status().as_u16(), status, "{fault}");
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ASCII").to_owned()),
            retry_after.then(|| "1".to_owned()),
            "{fault}"
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["code"], status, "{fault}");
        assert!(body["name"].is_string() && body["description"].is_string());
        let stats = heron.stats().await;
        assert_eq!(stats.organizations["heron"], 0, "{fault}: no work done");
        assert_eq!(stats.faults["heron"][fault.name()], 1, "{fault}");
        assert_eq!(stats.requests["heron"]["POST /api/crm_integrations"], 1);
        heron.stop().await;
    }
}

#[tokio::test]
async fn reset_fault_drops_the_connection_without_an_answer() {
    let heron = Heron::start(faulty(Fault::Reset)).await;
    let result = heron
        .http
        .post(heron.url("/api/crm_integrations"))
        .header("x-api-key", HERON_API_KEY)
        .json(&integration("https://acme.my.salesforce.com"))
        .send()
        .await;
    assert!(result.is_err(), "a transport error, got {result:?}");
    let stats = heron.stats().await;
    assert_eq!(stats.organizations["heron"], 0);
    assert_eq!(stats.faults["heron"]["reset"], 1);
    heron.stop().await;
}

#[tokio::test]
async fn timeout_fault_commits_the_create_then_withholds_the_answer() {
    let heron = Heron::start(SandboxConfig {
        timeout_hang: Duration::from_millis(800),
        ..faulty(Fault::TimeoutAfterCommit)
    })
    .await;
    let result = heron
        .http
        .post(heron.url("/api/crm_integrations"))
        .header("x-api-key", HERON_API_KEY)
        .json(&integration("https://acme.my.salesforce.com"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    let error = result.expect_err("the client gives up first");
    assert!(error.is_timeout(), "{error:?}");
    // The list is held back too, but this client waits for it.
    let listed = heron.list().await;
    assert_eq!(listed.len(), 1, "the create was committed");
    assert_eq!(listed[0]["instance_url"], "https://acme.my.salesforce.com");
    assert_eq!(heron.stats().await.faults["heron"]["timeout"], 2);
    heron.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_held_answer() {
    let heron = Heron::start(SandboxConfig {
        timeout_hang: Duration::from_secs(3600),
        ..faulty(Fault::TimeoutAfterCommit)
    })
    .await;
    let request = heron
        .http
        .get(heron.url("/api/crm_integrations"))
        .header("x-api-key", HERON_API_KEY)
        .timeout(Duration::from_millis(100))
        .send();
    assert!(request.await.is_err());
    tokio::time::timeout(Duration::from_secs(10), heron.sandbox.shutdown())
        .await
        .expect("shutdown does not hang")
        .expect("clean shutdown");
}

#[tokio::test]
async fn data_file_survives_a_restart_without_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sandbox.json");
    let config = SandboxConfig {
        data_file: Some(path.clone()),
        ..SandboxConfig::default()
    };
    let heron = Heron::start(config.clone()).await;
    let body: Value = heron
        .create(&integration("https://acme.my.salesforce.com"))
        .await
        .json()
        .await
        .expect("JSON");
    let created = body["crm_integration"].clone();

    let saved = std::fs::read_to_string(&path).expect("saved after the create");
    assert!(!saved.contains(SECRET) && !saved.contains(REFRESH_TOKEN));
    let saved: Value = serde_json::from_str(&saved).expect("JSON");
    assert_eq!(saved["heron"]["crm_integrations"], json!([created]));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    heron.stop().await;

    let heron = Heron::start(config.clone()).await;
    assert_eq!(heron.list().await, vec![created.clone()]);
    let second: Value = heron
        .create(&integration("https://b.example.com"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_ne!(second["crm_integration"]["heron_id"], created["heron_id"]);
    heron.stop().await;

    let heron = Heron::start(config).await;
    assert_eq!(heron.list().await.len(), 2);
    heron.stop().await;
}

#[tokio::test]
async fn data_file_keys_and_unknown_sections_are_honoured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sandbox.json");
    std::fs::write(
        &path,
        json!({"heron": {"api_keys": ["team-key"]}, "future_api": {"orgs": [1]}}).to_string(),
    )
    .expect("written");
    let heron = Heron::start(SandboxConfig {
        data_file: Some(path.clone()),
        ..SandboxConfig::default()
    })
    .await;
    let response = heron
        .http
        .get(heron.url("/api/crm_integrations"))
        .header("x-api-key", "team-key")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    heron.stop().await;
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    assert_eq!(saved["future_api"], json!({"orgs": [1]}));
    assert_eq!(saved["heron"]["api_keys"], json!(["team-key"]));
}

#[tokio::test]
async fn a_corrupt_data_file_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sandbox.json");
    std::fs::write(&path, "{not json").expect("written");
    let result = Sandbox::start(
        loopback(),
        SandboxConfig {
            data_file: Some(path.clone()),
            ..SandboxConfig::default()
        },
    )
    .await;
    assert!(matches!(result, Err(SandboxError::ParseData { .. })));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "{not json");
}

#[tokio::test]
async fn latency_still_answers() {
    let heron = Heron::start(SandboxConfig {
        latency: Duration::from_millis(20),
        ..SandboxConfig::default()
    })
    .await;
    assert!(heron.list().await.is_empty());
    heron.stop().await;
}

#[tokio::test]
async fn bad_fault_settings_are_refused() {
    for (fault_rate, faults) in [(1.5, Fault::ALL.to_vec()), (-0.1, vec![]), (0.5, vec![])] {
        let result = Sandbox::start(
            loopback(),
            SandboxConfig {
                fault_rate,
                faults,
                ..SandboxConfig::default()
            },
        )
        .await;
        assert!(result.is_err(), "fault rate {fault_rate}");
    }
}

#[test]
fn fault_names_round_trip() {
    for fault in Fault::ALL {
        assert_eq!(fault.name().parse::<Fault>().expect("known"), fault);
        assert_eq!(fault.to_string(), fault.name());
    }
    assert_eq!(
        "429-retry-after".parse::<Fault>().ok(),
        Some(Fault::TooManyRequestsRetryAfter)
    );
    assert!("502".parse::<Fault>().is_err());
}

/// The real `orgform sandbox` binary at the most verbose level: what it logs on stderr never
/// carries a key or a secret. A separate process, so that no other test's logging interferes.
#[tokio::test]
async fn logs_at_every_level_carry_no_secret() {
    use std::io::{BufRead, BufReader, Read};

    let mut child = crate::harness::orgform(std::path::Path::new("."))
        .args(["sandbox", "--listen", "127.0.0.1:0", "-vv"])
        .env("RUST_LOG", "trace")
        .secret("the webhook secret", SECRET)
        .secret("the refresh token", REFRESH_TOKEN)
        .spawn();
    let mut stderr = BufReader::new(child.take_stderr());
    let mut logs = String::new();
    // The address is on stdout, the logs on stderr.
    let mut stdout = BufReader::new(child.take_stdout());
    let mut said = String::new();
    let base_url = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read") == 0 {
            panic!("the sandbox exited: {said}");
        }
        said.push_str(&line);
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new();
    let created: Value = client
        .post(format!("{base_url}/api/crm_integrations"))
        .header("x-api-key", HERON_API_KEY)
        .json(&integration("https://acme.my.salesforce.com"))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("JSON");
    let heron_id = created["crm_integration"]["heron_id"].as_str().expect("id");
    client
        .patch(format!("{base_url}/api/crm_integrations/{heron_id}"))
        .header("x-api-key", HERON_API_KEY)
        .json(&json!({"secret": SECRET, "auth": {"refresh_token": REFRESH_TOKEN}}))
        .send()
        .await
        .expect("patch");
    client
        .post(format!("{base_url}/api/crm_integrations"))
        .header("x-api-key", HERON_API_KEY)
        .json(&json!({"secret": SECRET}))
        .send()
        .await
        .expect("invalid create");
    // SIGINT: the sandbox stops gracefully and flushes its logs.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    stderr.read_to_string(&mut logs).expect("read the rest");
    assert!(
        logs.contains("sandbox request"),
        "the capture works: {logs}"
    );
    // The key, the webhook secret and the refresh token, as written or base64-encoded.
    child.check("stderr", &logs);
    child.wait();
}
