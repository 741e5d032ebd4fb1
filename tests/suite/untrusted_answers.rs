//! A create's answer is the provider's word about one organization, checked before it is
//! recorded: an id that state holds for another address, or an organization of another
//! natural key, is never written for the address that sent the create. Against a Heron of the
//! test's own that answers wrongly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use crate::harness::run;

/// How the test's Heron answers a create.
#[derive(Clone, Copy)]
enum Answer {
    /// Every create gets the same id.
    OneId,
    /// The integration answered is another one: another instance URL, another id.
    OtherKey,
}

async fn heron(answer: Answer) -> (String, Arc<AtomicUsize>) {
    let creates = Arc::new(AtomicUsize::new(0));
    let counted = creates.clone();
    let app = Router::new().route(
        "/api/crm_integrations",
        get(|| async { (StatusCode::OK, r#"{"crm_integrations": []}"#) }).post(
            move |body: String| async move {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let mut integration: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or_default();
                match answer {
                    Answer::OneId => integration["heron_id"] = "FIXED-ID-1".into(),
                    Answer::OtherKey => {
                        integration["heron_id"] = format!("OTHER-{n}").into();
                        integration["instance_url"] = "https://someone-else.example".into();
                    }
                }
                (
                    StatusCode::CREATED,
                    serde_json::json!({ "crm_integration": integration }).to_string(),
                )
            },
        ),
    );
    (crate::harness::serve_app(app).await, creates)
}

fn specs(dir: &std::path::Path, base_url: &str) {
    let mut text = format!(
        "[provider.h]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"UA_KEY\" }}\n"
    );
    for name in ["acme", "globex"] {
        text.push_str(&format!(
            "\n[org.{name}]\nprovider = \"h\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://{name}.example\"\n\
             auth = {{ access_token = {{ env = \"UA_TOKEN\" }} }}\nsecret = {{ env = \"UA_TOKEN\" }}\n\
             config = {{ default_id = {{ external_name = \"Company\" }} }}\n"
        ));
    }
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/heron.toml"), text).expect("write specs");
}

const ENV: &[(&str, &str)] = &[("UA_KEY", "ua-key-value"), ("UA_TOKEN", "ua-token-value")];

/// `(address, status, remote id)` of every record in state.
fn records(dir: &std::path::Path) -> Vec<(String, String, Option<String>)> {
    let out = run(dir, &["state", "list", "--format", "json"], &[]).expect(0);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let rows = listed
        .as_array()
        .or_else(|| listed["addresses"].as_array())
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["remote_id"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_creates_answered_with_one_id_never_record_it_twice() {
    let (base_url, creates) = heron(Answer::OneId).await;
    let dir = tempfile::tempdir().expect("tempdir");
    specs(dir.path(), &base_url);
    let out = run(dir.path(), &["apply", "--auto-approve"], ENV);
    assert_eq!(creates.load(Ordering::SeqCst), 2);
    assert_ne!(out.code, 0, "one answer was refused: {}", out.stderr);
    assert!(
        out.stderr.contains("already recorded for"),
        "{}",
        out.stderr
    );
    let records = records(dir.path());
    assert_eq!(records.len(), 2, "{records:?}");
    let holders = records
        .iter()
        .filter(|(_, _, id)| id.as_deref() == Some("FIXED-ID-1"))
        .count();
    assert_eq!(holders, 1, "{records:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_answered_with_another_organization_is_not_recorded_as_made() {
    let (base_url, creates) = heron(Answer::OtherKey).await;
    let dir = tempfile::tempdir().expect("tempdir");
    specs(dir.path(), &base_url);
    let out = run(dir.path(), &["apply", "--auto-approve"], ENV);
    assert_eq!(creates.load(Ordering::SeqCst), 2);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("under the natural key"),
        "{}",
        out.stderr
    );
    let records = records(dir.path());
    assert_eq!(records.len(), 2, "{records:?}");
    for (address, status, id) in records {
        assert!(
            id.as_deref().is_none_or(|id| !id.starts_with("OTHER-")),
            "{address} recorded the other organization's id"
        );
        assert_eq!(status, "pending", "{address}");
    }
}
