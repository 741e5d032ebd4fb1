//! Where credentials may go, through the real binary: a redirect to another origin is never
//! followed (a second listener on another port proves nothing reached it), while one within the
//! provider's own origin still is; and the hosts the specs name are checked against
//! `ORGFORM_ALLOWED_HOSTS` / `--allowed-hosts` before any secret is read, or shown as a warning
//! in every plan format when no list is set.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::harness::{Run, assert_run_snapshot, run_on};

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
    // A plan checks the logins it promises, `--refresh=false` included.
    ("NEON_ORG_ID", "s3cret-neon-org"),
    ("NEON_API_KEY", "s3cret-neon-key"),
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
    crate::harness::serve_app(app).await
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
fn neon_specs(base_url: &str) -> String {
    format!(
        r#"[provider.neon_prod]
type = "neoncrm"
base_url = "{base_url}"
org_id = {{ env = "NEON_ORG_ID_NOT_SET" }}
api_key = {{ env = "NEON_API_KEY_NOT_SET" }}

[org.n]
provider = "neon_prod"
organization_name = "N"
"#
    )
}

/// With an allowed list, a host not on it is refused by `validate` and `plan`, with its place
/// in the specs, before any secret is read (none is set) and before any request leaves.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_off_the_allowed_list_is_refused_before_any_secret_or_request() {
    let (base, seen) = recorder().await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(
        dir.path(),
        &neon_specs(&format!("{base}/neonws/services/api")),
    );
    let env = [("ORGFORM_ALLOWED_HOSTS", "api.neoncrm.com, *.salesforce.com")];
    // Each names the provider, the host, where the list comes from (ORGFORM_ALLOWED_HOSTS) and
    // the base_url's place (main.toml:3:12), and is the only problem: neither secret is set, and
    // reading one would have failed with "is not set" first.
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let run = run_on(dir.path(), args, &env).expect(1);
        assert_run_snapshot!(format!("off_the_list_{}", args[0]), run, dir.path());
    }
    // The flag is named as the source when it is what set the list.
    let run = run_on(
        dir.path(),
        &["validate", "--allowed-hosts", "api.neoncrm.com"],
        &[],
    )
    .expect(1);
    assert_run_snapshot!("off_the_flag_list", run, dir.path());
    assert!(
        seen.lock().unwrap().is_empty(),
        "requests left: {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oracle_store_url_is_guarded_too_and_wildcards_match_subdomains_only() {
    let dir = tempfile::tempdir().unwrap();
    write_specs(
        dir.path(),
        r#"[provider.occ]
type = "oracle_commerce"
base_url = "https://p1234567c1dev-admin.occa.ocs.oraclecloud.com"
store_url = "https://oraclecloud.com.evil.example"
app_key = { env = "OCC_KEY_NOT_SET" }

[org.acme]
provider = "occ"
name = "Acme registration"
profile = { email = "jane@acme.example", first_name = "Jane", last_name = "Doe" }
"#,
    );
    let run = run_on(
        dir.path(),
        &["plan", "--allowed-hosts", "*.oraclecloud.com"],
        &[],
    )
    .expect(1);
    // The store URL's place (main.toml:4:13) and host, and no secret read.
    assert_run_snapshot!("oracle_store_url_refused", run, dir.path());
    // The bare suffix is not a subdomain of itself; case does not matter.
    let run = run_on(
        dir.path(),
        &[
            "validate",
            "--allowed-hosts",
            "*.ORACLECLOUD.com,*.evil.example",
        ],
        &[],
    )
    .expect(0);
    assert!(!run.stderr.contains("Warning"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_on_the_allowed_list_works_as_before() {
    let (elsewhere, _) = recorder().await;
    let (base, _) = redirector(StatusCode::TEMPORARY_REDIRECT, elsewhere, |m| {
        m == Method::POST
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &heron_specs("heron_prod", &base));
    let run = orgform_with(
        dir.path(),
        &["plan", "--detailed-exitcode"],
        &[("ORGFORM_ALLOWED_HOSTS", "127.0.0.1")],
    )
    .expect(2);
    assert!(run.stdout.contains("+ create"), "{}", run.stdout);
}

fn orgform_with(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let env: Vec<(&str, &str)> = SECRETS.iter().chain(extra).copied().collect();
    run_on(dir, args, &env)
}

#[test]
/// A usage error, so exit 1 as every error is (never the 2 of "changes present").
fn a_malformed_allowed_list_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_specs(
        dir.path(),
        &heron_specs("heron_prod", "https://app.herondata.io"),
    );
    for bad in [
        "",
        "app.herondata.io,,x.example",
        "https://app.herondata.io",
        "app.herondata.io:443",
        "a.*.example",
        "*",
    ] {
        let run = run_on(dir.path(), &["validate", "--allowed-hosts", bad], &[]);
        assert_eq!(run.code, 1, "{bad:?}: {}", run.stderr);
        assert!(run.stderr.contains("allowed"), "{bad:?}: {}", run.stderr);
        let run = run_on(dir.path(), &["validate"], &[("ORGFORM_ALLOWED_HOSTS", bad)]);
        assert_eq!(run.code, 1, "{bad:?} from the environment: {}", run.stderr);
        assert!(
            run.stderr.contains("ORGFORM_ALLOWED_HOSTS"),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

/// Without a list: vendor hosts and loopback pass quietly, any other host passes with a
/// warning in text, JSON and markdown, and on stderr for `validate`.
#[test]
fn without_a_list_another_host_is_shown_to_the_reviewer() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = heron_specs("heron_prod", "https://heron.attacker.example");
    text.push_str(
        r#"
[provider.neon_prod]
type = "neoncrm"
base_url = "https://api.neoncrm.com/neonws/services/api"
org_id = { env = "NEON_ORG_ID" }
api_key = { env = "NEON_API_KEY" }

[provider.local]
type = "heron"
base_url = "http://127.0.0.1:9"
api_key = { env = "HERON_API_KEY" }

[org.n]
provider = "neon_prod"
organization_name = "N"

[org.l]
provider = "local"
crm_provider = "hubspot"
instance_url = "https://l.example"
auth = { client_secret = { env = "ACME_CLIENT_SECRET" } }
secret = { env = "ACME_SECRET" }
config = { default_id = { external_name = "Account", alias = "Company" } }
"#,
    );
    write_specs(dir.path(), &text);

    let validate = run_on(dir.path(), &["validate"], &[]).expect(0);
    assert!(
        validate
            .stderr
            .contains("credentials for `heron_prod` go to `heron.attacker.example`"),
        "{}",
        validate.stderr
    );
    for quiet in ["neon_prod", "`local`", "127.0.0.1"] {
        assert!(!validate.stderr.contains(quiet), "{}", validate.stderr);
    }

    let plan = orgform(dir.path(), &["plan", "--refresh=false"]).expect(0);
    assert!(
        plan.stdout
            .contains("credentials for `heron_prod` go to `heron.attacker.example`"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("neon_prod` go to"), "{}", plan.stdout);

    let json = orgform(dir.path(), &["plan", "--refresh=false", "--format", "json"]).expect(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let warnings = value["endpoint_warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["provider"], "heron_prod");
    assert_eq!(warnings[0]["host"], "heron.attacker.example");
    assert_eq!(warnings[0]["setting"], "base_url");

    let markdown = orgform(
        dir.path(),
        &["plan", "--refresh=false", "--format", "markdown"],
    )
    .expect(0);
    let top: String = markdown
        .stdout
        .lines()
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(top.contains("> **Warning:**"), "{}", markdown.stdout);
    assert!(
        top.contains(
            "credentials for <code>heron&#95;prod</code> go to <code>heron&#46;attacker&#46;example</code>"
        ),
        "{}",
        markdown.stdout
    );

    // A saved plan keeps its warnings (plans saved without them load: the field has a default).
    let out = dir.path().join("plan.json");
    orgform(
        dir.path(),
        &["plan", "--refresh=false", "--out", out.to_str().unwrap()],
    )
    .expect(0);
    let saved = std::fs::read_to_string(&out).unwrap();
    assert!(saved.contains("heron.attacker.example"), "{saved}");
}

/// A host is user input: in markdown every character that could close its `<code>` or make
/// markup is a character reference.
#[test]
fn a_host_cannot_break_out_of_its_markdown_code_span() {
    let dir = tempfile::tempdir().unwrap();
    write_specs(
        dir.path(),
        &heron_specs("heron_prod", "https://a``b`*x*.example"),
    );
    let markdown = orgform(
        dir.path(),
        &["plan", "--refresh=false", "--format", "markdown"],
    )
    .expect(0);
    let line = markdown
        .stdout
        .lines()
        .find(|l| l.contains("go to"))
        .unwrap_or_else(|| panic!("{}", markdown.stdout));
    assert!(
        line.contains("go to <code>a&#96;&#96;b&#96;&#42;x&#42;&#46;example</code>"),
        "{line}"
    );
}

/// `--sandbox` sends every request, with the sandbox's own credentials, to the embedded sandbox
/// on loopback: the specs' hosts receive nothing, so they are neither refused nor warned about.
#[test]
fn sandbox_runs_ignore_the_specs_hosts() {
    let dir = tempfile::tempdir().unwrap();
    write_specs(
        dir.path(),
        &heron_specs("heron_prod", "https://heron.attacker.example"),
    );
    let listed = crate::harness::run(
        dir.path(),
        &["plan", "--sandbox", "--detailed-exitcode"],
        &[("ORGFORM_ALLOWED_HOSTS", "api.neoncrm.com")],
    )
    .expect(2);
    assert!(listed.stdout.contains("+ create"), "{}", listed.stdout);
    let unlisted = crate::harness::run(
        dir.path(),
        &["plan", "--sandbox", "--detailed-exitcode"],
        &[],
    )
    .expect(2);
    assert!(!unlisted.stdout.contains("Warning"), "{}", unlisted.stdout);
}

/// What a create redirected elsewhere means, at the HTTP layer: 307 and 308 ask for the same
/// request elsewhere, so nothing was done; after 301, 302 or 303 it may have been, so apply
/// looks it up rather than report it as not done. The query (maybe a session id) is never shown.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_redirected_elsewhere_is_classified_by_its_status() {
    use orgform::providers::http::Effect;
    use orgform::providers::{Http, HttpOptions, ProviderError};

    let (elsewhere, seen_elsewhere) = recorder().await;
    let limits = orgform::spec::Limits {
        max_concurrency: 4,
        requests_per_second: None,
        creates_per_day: None,
        max_creates: None,
    };
    for (status, done_maybe) in [
        (StatusCode::TEMPORARY_REDIRECT, false),
        (StatusCode::PERMANENT_REDIRECT, false),
        (StatusCode::SEE_OTHER, true),
        (StatusCode::FOUND, true),
    ] {
        let (base, _) = redirector(status, format!("{elsewhere}/x?session=s3cret"), |_| true).await;
        let http = Http::new(&base, &limits, &HttpOptions::default()).unwrap();
        let error = http
            .send(
                http.request(reqwest::Method::POST, "/create").body("{}"),
                Effect::Creates,
            )
            .await
            .expect_err("not followed");
        let message = error.to_string();
        match error {
            ProviderError::OutcomeUnknown { .. } => assert!(done_maybe, "{status}: {message}"),
            ProviderError::Redirected { .. } => assert!(!done_maybe, "{status}: {message}"),
            other => panic!("{status}: {other}"),
        }
        assert!(message.contains(&elsewhere), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
    assert!(seen_elsewhere.lock().unwrap().is_empty());
}

/// Redirects within one origin are bounded: a loop fails instead of spinning.
#[tokio::test(flavor = "multi_thread")]
async fn a_same_origin_redirect_loop_stops() {
    use orgform::providers::http::Effect;
    use orgform::providers::{Http, HttpOptions};

    let log: Log = Arc::default();
    let seen = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                record(&seen, &method, &uri, &headers, &body);
                (StatusCode::FOUND, [(header::LOCATION, "/again")], "")
            }
        },
    );
    let base = listen(app).await;
    let limits = orgform::spec::Limits {
        max_concurrency: 1,
        requests_per_second: None,
        creates_per_day: None,
        max_creates: None,
    };
    let http = Http::new(&base, &limits, &HttpOptions::default()).unwrap();
    let error = http
        .send(http.request(reqwest::Method::GET, "/start"), Effect::Safe)
        .await
        .expect_err("a loop fails");
    assert!(error.to_string().contains("redirects"), "{error}");
    assert_eq!(
        log.lock().unwrap().len(),
        6,
        "the first request and 5 redirects"
    );
}
