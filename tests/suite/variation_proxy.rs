//! A real HTTP proxy on loopback that stands between a client and the sandbox and rewrites the
//! JSON answers the way a vendor documents they may vary (numbers as strings, a one-element
//! list as the object itself, names in another case, fields the client has never seen). The
//! tolerant-reader tests point a spec's `base_url` at it, so the client meets the variations
//! while the emulator stays as documented.
//!
//! Requests pass through unchanged; only answers are rewritten, by a function the test gives.
//! A `Location` header naming the upstream is turned back to the proxy's origin, as a reverse
//! proxy does, so redirects stay same-origin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};

/// What the rewrite function is told about the answer it rewrites.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// The request path, without the query.
    pub path: &'a str,
    pub query: &'a str,
    pub status: u16,
}

/// Rewrites one JSON answer in place.
pub type Rewrite = fn(&Exchange<'_>, &mut Value);

/// A running proxy; it stops when dropped.
pub struct VariationProxy {
    addr: SocketAddr,
    rewritten: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    origin: String,
    client: reqwest::Client,
    rewrite: Rewrite,
    rewritten: Arc<AtomicU64>,
}

impl VariationProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (an origin, like the sandbox's
    /// `base_url()`), rewriting every JSON answer with `rewrite`.
    pub async fn start(upstream: &str, rewrite: Rewrite) -> VariationProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let rewritten = Arc::new(AtomicU64::new(0));
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            origin: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy client"),
            rewrite,
            rewritten: rewritten.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        VariationProxy {
            addr,
            rewritten,
            task,
        }
    }

    /// The origin to put in a spec's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many answers the rewrite function changed, so a test can show it met variations.
    pub fn rewritten(&self) -> u64 {
        self.rewritten.load(Ordering::SeqCst)
    }
}

impl Drop for VariationProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let url = if query.is_empty() {
        format!("{}{path}", shared.upstream)
    } else {
        format!("{}{path}?{query}", shared.upstream)
    };
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(body) => body,
        Err(_) => return status_only(StatusCode::BAD_REQUEST),
    };
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    let upstream = shared
        .client
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(upstream) = upstream else {
        return status_only(StatusCode::BAD_GATEWAY);
    };
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    let Ok(bytes) = upstream.bytes().await else {
        return status_only(StatusCode::BAD_GATEWAY);
    };
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    relocate(&mut headers, &shared.upstream, &shared.origin);
    let exchange = Exchange {
        method: parts.method.as_str(),
        path: &path,
        query: &query,
        status: status.as_u16(),
    };
    let bytes = rewrite_json(&shared, &exchange, &headers, bytes);
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The answer rewritten when it is JSON; any other body passes as it came.
fn rewrite_json(
    shared: &Shared,
    exchange: &Exchange<'_>,
    headers: &HeaderMap,
    bytes: Bytes,
) -> Bytes {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return bytes;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    let before = value.clone();
    (shared.rewrite)(exchange, &mut value);
    if value == before {
        return bytes;
    }
    shared.rewritten.fetch_add(1, Ordering::SeqCst);
    Bytes::from(serde_json::to_vec(&value).expect("serialize"))
}

/// A `Location` that names the upstream names the proxy instead.
fn relocate(headers: &mut HeaderMap, upstream: &str, origin: &str) {
    let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if let Some(rest) = location.strip_prefix(upstream) {
        let moved = format!("{origin}{rest}");
        if let Ok(value) = HeaderValue::from_str(&moved) {
            headers.insert(header::LOCATION, value);
        }
    }
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

// The variations, as pieces a provider's rewrite puts together.

/// Every number under one of `keys`, anywhere in `value`, turned into its decimal string.
pub fn numbers_as_strings(value: &mut Value, keys: &[&str]) {
    walk_objects(value, &mut |object| {
        for (key, field) in object.iter_mut() {
            if keys.contains(&key.as_str()) && field.is_number() {
                *field = Value::String(field.to_string());
            }
        }
    });
}

/// Every one-element array under one of `keys`, anywhere in `value`, replaced by its element.
pub fn singletons_as_objects(value: &mut Value, keys: &[&str]) {
    walk_objects(value, &mut |object| {
        for (key, field) in object.iter_mut() {
            if keys.contains(&key.as_str())
                && let Value::Array(items) = field
                && items.len() == 1
            {
                let only = items.remove(0);
                *field = only;
            }
        }
    });
}

/// A string of digits that reads back the same as a number, made that number: whether it
/// changed.
pub fn digits_as_number(value: &mut Value) -> bool {
    let Some(n) = value.as_str().and_then(|s| s.parse::<u64>().ok()) else {
        return false;
    };
    if value.as_str() != Some(n.to_string().as_str()) {
        return false;
    }
    *value = Value::from(n);
    true
}

/// An extra field, of a shape no client expects, added to every object in `value`.
pub fn extra_fields(value: &mut Value) {
    walk_objects(value, &mut |object| {
        // An array holding no object, so the walk that follows finds nothing new to extend.
        object.insert(
            "proxyAddedField".to_string(),
            serde_json::json!([1, "two", null, true, [2.5]]),
        );
    });
}

/// Every object in `value`, outermost first, given to `visit` before its children are walked.
pub fn walk_objects(value: &mut Value, visit: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(object) => {
            visit(object);
            for field in object.values_mut() {
                walk_objects(field, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk_objects(item, visit);
            }
        }
        _ => {}
    }
}

/// The round every tolerant-reader test ends with, once an apply through the proxy has created
/// `n` organizations: the plan is clean; with `state` removed, the plan adopts all `n` and
/// creates nothing; `apply` records them; the plan after is clean again. `run` runs the binary
/// with the test's own specs and environment.
pub fn adopt_from_fresh_state(
    run: &dyn Fn(&[&str]) -> crate::harness::Run,
    state: &std::path::Path,
    n: usize,
    apply: &[&str],
) {
    let plan = run(&["plan", "--detailed-exitcode"]).expect(0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    if state.is_dir() {
        std::fs::remove_dir_all(state).expect("forget state");
    } else {
        std::fs::remove_file(state).expect("forget state");
    }
    let adopt = run(&["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        adopt.stdout.contains(&format!("Plan: {n} to adopt.")),
        "{}",
        adopt.stdout
    );
    assert!(!adopt.stdout.contains("to create"), "{}", adopt.stdout);
    run(apply).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);
}
