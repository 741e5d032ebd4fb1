//! A provider that echoes what it was sent: a 422 quoting the request's headers and body, as
//! some APIs do in their errors. orgform sends secrets (the API key, an organization's tokens)
//! where the vendor wants them, but whatever comes back holding one is scrubbed at every edge
//! the run writes to: stdout, stderr, logs, the JSON report and the state.

use std::collections::BTreeMap;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

use crate::harness::run;

/// A Heron of the test's own: an empty list, and every create refused with a 422 whose
/// description is everything the request carried: its headers, then its body.
async fn echoing_heron() -> String {
    let app = Router::new().route(
        "/api/crm_integrations",
        get(|| async { (StatusCode::OK, r#"{"crm_integrations": []}"#) }).post(
            |headers: HeaderMap, body: String| async move {
                let headers: BTreeMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let description = format!("invalid request: headers {headers:?} body {body}");
                let answer = serde_json::json!({
                    "code": 422,
                    "name": "Unprocessable Entity",
                    "description": description,
                });
                (StatusCode::UNPROCESSABLE_ENTITY, answer.to_string())
            },
        ),
    );
    crate::harness::serve_app(app).await
}

const SECRETS: [(&str, &str); 3] = [
    ("ECHO_HERON_KEY", "heron-key-TOPSECRET-1"),
    ("ECHO_TOKEN", "oauth-token \"TOPSECRET\"-2"),
    ("ECHO_WEBHOOK", "webhook+TOPSECRET/3"),
];

#[tokio::test(flavor = "multi_thread")]
async fn secrets_a_provider_echoes_in_an_error_are_shown_nowhere() {
    let base_url = echoing_heron().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(
        dir.path().join("specs/heron.toml"),
        format!(
            "[provider.heron_echo]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"ECHO_HERON_KEY\" }}\n\n\
             [org.acme]\nprovider = \"heron_echo\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://acme.example\"\n\
             auth = {{ access_token = {{ env = \"ECHO_TOKEN\" }} }}\nsecret = {{ env = \"ECHO_WEBHOOK\" }}\n\n\
             [org.acme.config]\ndefault_id = {{ external_name = \"Company\" }}\n"
        ),
    )
    .expect("write specs");
    let mut seen = String::new();
    for args in [
        &["apply", "--auto-approve"][..],
        &["apply", "--auto-approve", "--format", "json"],
        &["apply", "--auto-approve", "-vv"],
    ] {
        let out = run(dir.path(), args, &SECRETS);
        assert_ne!(out.code, 0, "the create was refused: {}", out.stderr);
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    }
    // The echo did reach orgform: its words are in the report, the secrets are not.
    assert!(seen.contains("invalid request"), "{seen}");
    assert!(seen.contains("[secret]"), "{seen}");
    for dir_entry in std::fs::read_dir(dir.path().join("state"))
        .into_iter()
        .flatten()
    {
        let path = dir_entry.expect("entry").path();
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(&path).unwrap_or_default(),
        ));
    }
    for (_, value) in SECRETS {
        assert!(
            !seen.contains("TOPSECRET"),
            "{value} (or part of it) shown:\n{seen}"
        );
    }
}
