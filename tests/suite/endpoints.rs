//! Where credentials may go, through the real binary: a redirect to another origin is never
//! followed (a second listener on another port proves nothing reached it), while one within the
//! provider's own origin still is.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::harness::{Run, run_on};

const HERON_KEY: &str = "s3cret-heron-api-key";
const CV_PASSWORD: &str = "s3cret-commvault-password";

const SECRETS: &[(&str, &str)] = &[
    ("HERON_API_KEY", HERON_KEY),
    ("ACME_CLIENT_SECRET", "s3cret-acme-client"),
    ("ACME_SECRET", "s3cret-acme-webhook"),
    ("CV_USERNAME", "admin"),
    ("CV_PASSWORD", CV_PASSWORD),
    ("SF_PASSWORD", "s3cret-sf-password"),
    ("SF_CONSUMER_SECRET", "s3cret-sf-consumer"),
];

/// One request a listener saw: method, path, headers and body, as text.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: String,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn record(log: &Log, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    log.lock().unwrap().push(Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: format!("{headers:?}"),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

/// A listener that records every request and answers 200 `{}`: where a redirect would lead.
async fn recorder() -> (String, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                record(&seen, &method, &uri, &headers, &body);
                (StatusCode::OK, "{}")
            }
        },
    );
    (listen(app).await, log)
}

/// A provider that answers `status` with `Location` at `target` (same path and query) to every
/// request for which `redirects` says so, and Heron's empty list to the others.
async fn redirector(
    status: StatusCode,
    target: String,
    redirects: fn(&Method) -> bool,
) -> (String, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            let target = target.clone();
            async move {
                record(&seen, &method, &uri, &headers, &body);
                if redirects(&method) {
                    let location = format!("{target}{uri}");
                    let response: Response =
                        (status, [(header::LOCATION, location)], "moved").into_response();
                    return response;
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"crm_integrations": []}"#,
                )
                    .into_response()
            }
        },
    );
    (listen(app).await, log)
}

fn write_specs(dir: &Path, text: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("main.toml"), text).unwrap();
}

fn heron_specs(name: &str, base_url: &str) -> String {
    format!(
        r#"[provider.{name}]
type = "heron"
base_url = "{base_url}"
api_key = {{ env = "HERON_API_KEY" }}

[org.acme]
provider = "{name}"
crm_provider = "salesforce"
instance_url = "https://acme.my.salesforce.com"
auth = {{ client_secret = {{ env = "ACME_CLIENT_SECRET" }} }}
secret = {{ env = "ACME_SECRET" }}
config = {{ default_id = {{ external_name = "Account", alias = "Company" }} }}
"#
    )
}

fn commvault_specs(base_url: &str) -> String {
    format!(
        r#"[provider.cv_prod]
type = "commvault_salesforce"
base_url = "{base_url}"
username = {{ env = "CV_USERNAME" }}
password = {{ env = "CV_PASSWORD" }}

[org.min]
provider = "cv_prod"
organization_name = "Min Org"
download_cache_path = "/cache"
plan = {{ plan_name = "Server plan", plan_id = 1, entity_info = {{ company_id = 0 }} }}

[org.min.salesforce_account]
authentication_type = 1
user_credentials = {{ user_name = "u@example.com", password = {{ env = "SF_PASSWORD" }} }}
consumer_id = "key"
consumer_secret = {{ env = "SF_CONSUMER_SECRET" }}
"#
    )
}

fn orgform(dir: &Path, args: &[&str]) -> Run {
    run_on(dir, args, SECRETS)
}

fn assert_redirect_refused(run: &Run, provider: &str, status: &str) {
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains(provider), "names the provider:\n{all}");
    assert!(all.contains(status), "names the status {status}:\n{all}");
    assert!(
        all.contains("does not follow redirects to another origin"),
        "says why:\n{all}"
    );
    for (name, value) in SECRETS {
        assert!(!all.contains(value), "output leaks {name}:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_key_never_follows_a_redirect_to_another_port() {
    let (elsewhere, seen_elsewhere) = recorder().await;
    let (base, seen_here) = redirector(StatusCode::TEMPORARY_REDIRECT, elsewhere, |_| true).await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &heron_specs("heron_prod", &base));

    let plan = orgform(dir.path(), &["plan"]).expect(1);
    assert_redirect_refused(&plan, "heron_prod", "307");
    assert!(
        !seen_here.lock().unwrap().is_empty(),
        "the provider was asked"
    );
    assert!(
        seen_elsewhere.lock().unwrap().is_empty(),
        "the other origin received {:?}",
        seen_elsewhere.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_create_redirected_to_another_origin_is_not_sent_there() {
    let (elsewhere, seen_elsewhere) = recorder().await;
    // Reads answer; the create is redirected with its body (308 keeps method and body).
    let (base, seen_here) = redirector(StatusCode::PERMANENT_REDIRECT, elsewhere, |m| {
        m == Method::POST
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &heron_specs("heron_prod", &base));

    let apply = orgform(dir.path(), &["apply", "--auto-approve"]).expect(1);
    assert_redirect_refused(&apply, "acme", "308");
    let posts = seen_here
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "POST")
        .count();
    assert_eq!(posts, 1, "one create sent, to the named host only");
    assert!(
        seen_elsewhere.lock().unwrap().is_empty(),
        "the other origin received {:?}",
        seen_elsewhere.lock().unwrap()
    );
    // 308 says the request was not acted on: nothing is left pending, the next plan creates.
    let again = orgform(dir.path(), &["plan", "--refresh=false"]).expect(0);
    assert!(again.stdout.contains("+ create"), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn commvault_login_body_never_follows_a_redirect_to_another_port() {
    let (elsewhere, seen_elsewhere) = recorder().await;
    let (base, seen_here) = redirector(StatusCode::TEMPORARY_REDIRECT, elsewhere, |_| true).await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(
        dir.path(),
        &commvault_specs(&format!("{base}/commandcenter/api")),
    );

    let plan = orgform(dir.path(), &["plan"]).expect(1);
    assert_redirect_refused(&plan, "cv_prod", "307");
    let here = seen_here.lock().unwrap();
    assert!(
        here.iter()
            .any(|s| s.uri.ends_with("/Login") && s.body.contains("admin")),
        "the login went to the named host: {here:?}"
    );
    assert!(
        seen_elsewhere.lock().unwrap().is_empty(),
        "the other origin received {:?}",
        seen_elsewhere.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_within_the_same_origin_is_followed() {
    // `/api/crm_integrations` moved to `/v2/api/crm_integrations` on the same host and port.
    let log: Log = Arc::default();
    let seen = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                record(&seen, &method, &uri, &headers, &body);
                if uri.path().starts_with("/v2/") {
                    return (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        r#"{"crm_integrations": []}"#.to_string(),
                    )
                        .into_response();
                }
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, format!("/v2{uri}"))],
                    String::new(),
                )
                    .into_response()
            }
        },
    );
    let base = listen(app).await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &heron_specs("heron_prod", &base));

    let plan = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(plan.stdout.contains("+ create"), "{}", plan.stdout);
    let log = log.lock().unwrap();
    assert!(log.iter().any(|s| s.uri.starts_with("/v2/")), "{log:?}");
    assert!(
        log.iter().all(|s| s.headers.contains(HERON_KEY)),
        "the key went with the same-origin redirect: {log:?}"
    );
}
