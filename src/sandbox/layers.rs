//! The router around the emulators: latency and logging on every request; counting and fault
//! injection on provider routes; provider-shaped 404 and 405 answers; the `/_sandbox` control
//! routes (`GET /_sandbox/stats`, `POST /_sandbox/reset`), which no fault ever touches.

use std::time::Instant;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::conn::Connection;
use super::state::SandboxState;
use super::{Emulated, Fault, Stats, owner};
use crate::model::ProviderType;

/// The whole application: every emulator's routes, then the control routes.
pub(crate) fn router(state: &SandboxState) -> Router {
    let mut providers = ProviderType::ALL
        .into_iter()
        .fold(Router::new(), |router, provider| {
            router.merge(provider.routes(state))
        })
        .method_not_allowed_fallback(method_not_allowed);
    // After the merge, so it wraps every provider route, outside the providers' own layers
    // (axum refuses a route layer on a router without routes).
    if providers.has_routes() {
        providers = providers.route_layer(middleware::from_fn_with_state(state.clone(), endpoint));
    }
    providers
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/reset", post(reset))
        .fallback(not_found)
        .layer(match state.config().max_body_bytes {
            0 => DefaultBodyLimit::disable(),
            limit => DefaultBodyLimit::max(limit),
        })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state.clone())
}

/// The most bytes of a request body read (`SandboxConfig::max_body_bytes`, 0 for no limit).
fn body_limit(state: &SandboxState) -> usize {
    match state.config().max_body_bytes {
        0 => usize::MAX,
        limit => limit,
    }
}

/// Every request: the configured latency first, then one debug line. Only the method, the path
/// (never the query, which carries session ids at some providers), the status and the time.
async fn observe(State(state): State<SandboxState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    state.sleep(state.latency()).await;
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis(),
        "sandbox request"
    );
    response
}

/// Provider routes: count the request under its route pattern, then maybe inject a fault.
async fn endpoint(State(state): State<SandboxState>, request: Request, next: Next) -> Response {
    let Some(api) = owner(request.uri().path()) else {
        return next.run(request).await;
    };
    let pattern = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    state.count_request(api, format!("{} {pattern}", request.method()));
    // The same request sent again (same method, route, query and body) is a retry: was it
    // told to wait longer?
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, body_limit(&state)).await else {
        return api.status_error(&state, StatusCode::PAYLOAD_TOO_LARGE);
    };
    let digest = {
        use sha2::{Digest as _, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(parts.method.as_str());
        hasher.update(pattern.as_bytes());
        hasher.update(parts.uri.query().unwrap_or("").as_bytes());
        hasher.update(&bytes);
        <[u8; 32]>::from(hasher.finalize())
    };
    state.check_retry(api, digest);
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = answer(&state, api, request, next).await;
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if response.status() == StatusCode::TOO_MANY_REQUESTS
        && let Some(seconds) = retry_after
    {
        state.told_to_wait(
            digest,
            Instant::now() + std::time::Duration::from_secs(seconds),
        );
    }
    response
}

/// The answer to a provider request: the emulator's, or an injected fault.
async fn answer(state: &SandboxState, api: ProviderType, request: Request, next: Next) -> Response {
    let state = state.clone();
    let Some(fault) = state.pick_fault() else {
        return next.run(request).await;
    };
    state.count_fault(api, fault);
    tracing::debug!(api = api.stats_name(), %fault, "injecting a fault");
    match fault {
        Fault::TooManyRequests => api.status_error(&state, StatusCode::TOO_MANY_REQUESTS),
        Fault::TooManyRequestsRetryAfter => {
            let mut response = api.status_error(&state, StatusCode::TOO_MANY_REQUESTS);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Fault::InternalError => api.status_error(&state, StatusCode::INTERNAL_SERVER_ERROR),
        Fault::Unavailable => api.status_error(&state, StatusCode::SERVICE_UNAVAILABLE),
        Fault::Reset => match request.extensions().get::<ConnectInfo<Connection>>() {
            Some(ConnectInfo(connection)) => {
                connection.reset();
                // Never written: the connection fails before hyper can send it.
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            // Only when served without the sandbox's listener, which `Sandbox::start` never does.
            None => api.status_error(&state, StatusCode::BAD_GATEWAY),
        },
        Fault::TimeoutAfterCommit => {
            let response = next.run(request).await;
            state.sleep(state.config().timeout_hang).await;
            response
        }
    }
}

/// A known path with a method it does not serve, in the provider's error shape.
async fn method_not_allowed(
    State(state): State<SandboxState>,
    method: Method,
    uri: Uri,
    matched: Option<MatchedPath>,
) -> Response {
    let Some(api) = owner(uri.path()) else {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let pattern = matched.map_or_else(|| uri.path().to_owned(), |m| m.as_str().to_owned());
    state.count_request(api, format!("{method} {pattern}"));
    api.status_error(&state, StatusCode::METHOD_NOT_ALLOWED)
}

/// An unknown path: in the provider's error shape under a provider's prefix, counted there
/// under `METHOD (unmatched)` so that raw paths do not grow the stats without bound.
async fn not_found(State(state): State<SandboxState>, method: Method, uri: Uri) -> Response {
    match owner(uri.path()) {
        Some(api) => {
            state.count_request(api, format!("{method} (unmatched)"));
            api.status_error(&state, StatusCode::NOT_FOUND)
        }
        None => (StatusCode::NOT_FOUND, "no such sandbox path\n").into_response(),
    }
}

async fn stats(State(state): State<SandboxState>) -> Json<Stats> {
    Json(state.stats())
}

async fn reset(State(state): State<SandboxState>) -> StatusCode {
    state.reset().await;
    StatusCode::NO_CONTENT
}
