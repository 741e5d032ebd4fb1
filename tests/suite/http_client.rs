//! The HTTP layer every provider client shares, against a tiny server of the test's own that
//! answers 429 with a `Retry-After`: the wait is the whole instance's, not one request's, and a
//! wait too long for a run fails the request at once instead of holding the job.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use orgform::providers::http::{Effect, MAX_RETRY_AFTER};
use orgform::providers::{Http, HttpOptions, ProviderError};
use orgform::spec::Limits;

/// When each request arrived, and what `/limited` answers the first time.
#[derive(Clone)]
struct Server {
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
    first_retry_after: &'static str,
}

async fn serve(server: Server) -> String {
    let record = |server: Server, path: &'static str| {
        move || {
            let server = server.clone();
            async move {
                let first = {
                    let mut arrivals = server.arrivals.lock().unwrap();
                    arrivals.push((path.to_string(), Instant::now()));
                    arrivals.iter().filter(|(p, _)| p == path).count() == 1
                };
                let mut headers = HeaderMap::new();
                if path == "/limited" && first {
                    headers.insert(
                        header::RETRY_AFTER,
                        server.first_retry_after.parse().unwrap(),
                    );
                    return (StatusCode::TOO_MANY_REQUESTS, headers, "slow down");
                }
                (StatusCode::OK, headers, "ok")
            }
        }
    };
    let app = Router::new()
        .route("/limited", get(record(server.clone(), "/limited")))
        .route("/other", get(record(server, "/other")));
    crate::harness::serve_app(app).await
}

fn client(base_url: &str) -> Http {
    let limits = Limits {
        max_concurrency: 4,
        requests_per_second: None,
        creates_per_day: None,
        max_creates: None,
    };
    Http::new(base_url, &limits, &HttpOptions::default()).expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_holds_every_request_to_the_instance() {
    let server = Server {
        arrivals: Arc::default(),
        first_retry_after: "1",
    };
    let http = client(&serve(server.clone()).await);
    let limited = {
        let http = http.clone();
        tokio::spawn(async move {
            http.send_retrying(|| http.request(reqwest::Method::GET, "/limited"))
                .await
                .map(|r| r.status())
        })
    };
    // Once the 429 is in, another request to the same instance starts.
    while server.arrivals.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = http
        .send(http.request(reqwest::Method::GET, "/other"), Effect::Safe)
        .await
        .expect("other");
    assert_eq!(other.status(), 200);
    assert_eq!(limited.await.unwrap().expect("limited"), 200);

    let arrivals = server.arrivals.lock().unwrap().clone();
    let told = arrivals[0].1;
    assert_eq!(arrivals.len(), 3, "{arrivals:?}");
    for (path, at) in &arrivals[1..] {
        assert!(
            at.duration_since(told) >= Duration::from_secs(1),
            "{path} was sent {:?} after the 429 that said to wait 1 s",
            at.duration_since(told)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_too_long_for_a_run_fails_at_once_and_holds_nothing() {
    let server = Server {
        arrivals: Arc::default(),
        first_retry_after: "86400",
    };
    assert!(MAX_RETRY_AFTER < Duration::from_secs(86_400));
    let http = client(&serve(server.clone()).await);
    let error = http
        .send_retrying(|| http.request(reqwest::Method::GET, "/limited"))
        .await
        .expect_err("a day's wait is not waited");
    assert!(
        matches!(error, ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(86_400)),
        "{error}"
    );
    assert!(error.to_string().contains("retry after 86400s"), "{error}");
    let other = http
        .send(http.request(reqwest::Method::GET, "/other"), Effect::Safe)
        .await
        .expect("other");
    assert_eq!(other.status(), 200);
    assert_eq!(server.arrivals.lock().unwrap().len(), 2);
}

/// `Retry-After` may be an HTTP date (RFC 9110 §10.2.3), as much as a number of seconds: a
/// date far ahead fails at once, like a long wait in seconds, and so does a number too large
/// to hold; both were ignored, and the request sent again at once, six times.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_given_as_a_date_or_a_huge_number_is_a_wait_too() {
    for first_retry_after in [
        "Wed, 21 Oct 2099 07:28:00 GMT",
        "99999999999999999999999999",
    ] {
        let server = Server {
            arrivals: Arc::default(),
            first_retry_after,
        };
        let http = client(&serve(server.clone()).await);
        let error = http
            .send_retrying(|| http.request(reqwest::Method::GET, "/limited"))
            .await
            .expect_err("a wait of decades is not waited");
        assert!(
            matches!(error, ProviderError::RateLimited { retry_after: Some(d), .. } if d > MAX_RETRY_AFTER),
            "{first_retry_after}: {error}"
        );
        assert_eq!(
            server.arrivals.lock().unwrap().len(),
            1,
            "{first_retry_after}: sent again"
        );
    }
}
