//! The Heron Data emulator: CRM integrations under `/api` (`docs/providers/heron.md`, seed 003).
//!
//! Serves `POST /api/crm_integrations` (201, wrapped in `crm_integration`),
//! `GET /api/crm_integrations` (all of them, no paging) and `PATCH /api/crm_integrations/{id}`
//! (200 with the bare object: Heron's documented quirk), behind the `x-api-key` header and a
//! fixed 60-second rate-limit window per key with `x-ratelimit-*` headers on every answer to
//! an accepted key (not on 401s, nor on the framework's injected faults).
//! Errors are Heron's `{"code","description","name"}`; validation failures are marshmallow's
//! nested messages under `description.json`, from the schema in `schema.rs`.
//!
//! Invariant: **`auth` and `secret` are write-only**. They are checked, then dropped: never
//! stored, never returned. Unknown fields are accepted and echoed (`additionalProperties`).
//! Choices where Heron is silent: types are checked strictly (marshmallow would take `"true"`
//! for a boolean; orgform should not send it), duplicates of (`provider`, `instance_url`) are
//! allowed, and ids are `crm_` and a counter and a random tail.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::HERON_API_KEY;
use super::clock;
use super::state::SandboxState;

mod schema;

use schema::{Load, Rejected, load, parse};

pub(crate) const PREFIXES: &[&str] = &["/api"];

/// The length of a rate-limit window.
const WINDOW_SECS: u64 = 60;

/// Heron's section of the data file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct HeronData {
    /// Keys accepted besides [`HERON_API_KEY`]: configuration, kept by a reset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) api_keys: Vec<String>,
    /// The integrations as Heron returns them: keys sorted, no `auth`, no `secret`. Changed
    /// only through [`HeronData::created`] and [`HeronData::update`], which keep `rendered` in
    /// step.
    #[serde(default)]
    crm_integrations: Vec<Map<String, Value>>,
    /// Each integration's JSON as the list writes it, in order, so that a list of 100,000
    /// copies them rather than renders each again (it took 0.3 to 0.4 s). Never saved: after a
    /// load from the data file it is empty, the list renders what it lacks, and the next create
    /// fills it in.
    #[serde(skip)]
    rendered: Vec<Box<str>>,
    /// How many integrations were ever created: the counter part of new ids.
    #[serde(default)]
    created: u64,
    /// Rate-limit windows per API key; transient, never saved.
    #[serde(skip)]
    windows: HashMap<String, Window>,
}

impl HeronData {
    pub(crate) fn organizations(&self) -> usize {
        self.crm_integrations.len()
    }

    /// Adds a new integration, rendered for the list.
    fn created(&mut self, integration: Map<String, Value>) {
        self.crm_integrations.push(integration);
        self.render_missing();
    }

    /// Applies `changes` to the integration `heron_id` names: what it became, or `None` when
    /// there is none.
    fn update(
        &mut self,
        heron_id: &str,
        changes: Map<String, Value>,
    ) -> Option<Map<String, Value>> {
        let index = self
            .crm_integrations
            .iter()
            .position(|i| i.get("heron_id").and_then(Value::as_str) == Some(heron_id))?;
        let integration = self.crm_integrations.get_mut(index)?;
        integration.extend(changes);
        sort_keys(integration);
        let updated = integration.clone();
        // Rendered from here on again (only this one, unless the cache was short already).
        self.rendered.truncate(index);
        self.render_missing();
        Some(updated)
    }

    /// Renders every integration the cache lacks, in order; stops at one that can't be
    /// written (plain JSON maps always can), leaving the rest to the list.
    fn render_missing(&mut self) {
        for integration in self.crm_integrations.iter().skip(self.rendered.len()) {
            match serde_json::to_string(integration) {
                Ok(text) => self.rendered.push(text.into_boxed_str()),
                Err(_) => return,
            }
        }
    }

    /// The list's documented envelope, `{"crm_integrations":[...]}`, written as serde_json
    /// writes it: the rendered integrations copied, any not rendered yet written here.
    fn list_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let rendered: usize = self.rendered.iter().map(|r| r.len() + 1).sum();
        let mut body = Vec::with_capacity(rendered + 32);
        body.extend_from_slice(b"{\"crm_integrations\":[");
        for (index, integration) in self.crm_integrations.iter().enumerate() {
            if index > 0 {
                body.push(b',');
            }
            match self.rendered.get(index) {
                Some(text) => body.extend_from_slice(text.as_bytes()),
                None => serde_json::to_writer(&mut body, integration)?,
            }
        }
        body.extend_from_slice(b"]}");
        Ok(body)
    }

    pub(crate) fn reset(&mut self) {
        *self = HeronData {
            api_keys: std::mem::take(&mut self.api_keys),
            ..HeronData::default()
        };
    }

    fn accepts(&self, key: &str) -> bool {
        key == HERON_API_KEY || self.api_keys.iter().any(|k| k == key)
    }

    /// Counts one request against `key`'s window, opening a new window when the last has ended.
    fn hit(&mut self, key: &str, limit: u32, now: u64) -> Verdict {
        let window = self.windows.entry(key.to_owned()).or_insert(Window {
            start: now,
            count: 0,
        });
        if now >= window.start + WINDOW_SECS {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
        let reset = window.start + WINDOW_SECS;
        Verdict {
            limit,
            allowed: window.count <= limit,
            remaining: limit.saturating_sub(window.count),
            reset,
            retry_after: reset.saturating_sub(now).max(1),
        }
    }
}

/// A fixed rate-limit window, from its first request.
#[derive(Clone, Debug)]
struct Window {
    /// Unix seconds.
    start: u64,
    count: u32,
}

/// The outcome of one request against its window.
struct Verdict {
    limit: u32,
    allowed: bool,
    remaining: u32,
    /// Unix seconds at which the window ends.
    reset: u64,
    retry_after: u64,
}

impl Verdict {
    fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset));
        if !self.allowed {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after));
        }
    }
}

pub(crate) fn routes(state: &SandboxState) -> Router<SandboxState> {
    Router::new()
        .route("/api/crm_integrations", get(list).post(create))
        .route("/api/crm_integrations/{heron_id}", patch(update))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
}

/// Heron's error envelope.
fn error(status: StatusCode, description: impl Into<Value>) -> Response {
    let body = json!({
        "code": status.as_u16(),
        "description": description.into(),
        "name": status.canonical_reason().unwrap_or("Error"),
    });
    (status, Json(body)).into_response()
}

/// The error Heron (Flask, werkzeug) gives for a bare status: injected faults, unknown routes.
pub(crate) fn status_error(state: &SandboxState, status: StatusCode) -> Response {
    let description = match status {
        StatusCode::TOO_MANY_REQUESTS => format!("{} per 1 minute", shown_limit(state)),
        StatusCode::NOT_FOUND => "The requested URL was not found on the server. If you entered \
            the URL manually please check your spelling and try again."
            .to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "The method is not allowed for the requested URL.".to_owned()
        }
        StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong - sorry about that! If you \
            continue having issues please email help@herondata.io"
            .to_owned(),
        StatusCode::SERVICE_UNAVAILABLE => "The server is temporarily unable to service your \
            request due to maintenance downtime or capacity problems. Please try again later."
            .to_owned(),
        _ => status.canonical_reason().unwrap_or("Error").to_owned(),
    };
    error(status, description)
}

/// The limit named in 429 descriptions; an unlimited sandbox names Heron's default.
fn shown_limit(state: &SandboxState) -> u32 {
    match state.config().heron_rate_limit {
        0 => super::SandboxConfig::default().heron_rate_limit,
        limit => limit,
    }
}

/// Authentication, then the rate limit, in front of every Heron route.
async fn guard(State(state): State<SandboxState>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !state.read(|data| data.heron.accepts(&key)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Missing or invalid API key in the x-api-key header",
        );
    }
    let limit = state.config().heron_rate_limit;
    if limit == 0 {
        return next.run(request).await;
    }
    let verdict = state.touch(|data| data.heron.hit(&key, limit, clock::now_ms() / 1000));
    let mut response = if verdict.allowed {
        next.run(request).await
    } else {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{limit} per 1 minute"),
        )
    };
    verdict.apply(response.headers_mut());
    response
}

async fn list(State(state): State<SandboxState>) -> Response {
    let body = state.read(|data| data.heron.list_body());
    match body {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn create(State(state): State<SandboxState>, body: Bytes) -> Result<Response, Rejected> {
    let mut integration = load(&parse(&body)?, Load::Create)?;
    let tail = state.random() & 0xffff_ffff_ffff;
    let integration = state
        .mutate(move |data| {
            data.heron.created += 1;
            let id = format!("crm_{:04}{tail:012x}", data.heron.created);
            integration.insert("heron_id".to_owned(), Value::String(id));
            sort_keys(&mut integration);
            data.heron.created(integration.clone());
            integration
        })
        .await;
    let body = json!({ "crm_integration": integration });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn update(
    State(state): State<SandboxState>,
    Path(heron_id): Path<String>,
    body: Bytes,
) -> Result<Response, Rejected> {
    let changes = load(&parse(&body)?, Load::Patch)?;
    let updated = state
        .mutate(|data| data.heron.update(&heron_id, changes))
        .await;
    Ok(match updated {
        // Unwrapped, unlike create's answer: Heron's documented quirk.
        Some(integration) => Json(Value::Object(integration)).into_response(),
        None => error(StatusCode::NOT_FOUND, "CRM integration not found"),
    })
}

/// Sorts keys at every depth, as Heron's JSON encoder does, so answers read like Heron's.
fn sort_keys(object: &mut Map<String, Value>) {
    object.sort_keys();
    object.values_mut().for_each(sort_nested);
}

fn sort_nested(value: &mut Value) {
    match value {
        Value::Object(object) => sort_keys(object),
        Value::Array(items) => items.iter_mut().for_each(sort_nested),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(id: &str, url: &str) -> Map<String, Value> {
        let mut integration = json!({
            "heron_id": id,
            "provider": "salesforce",
            "instance_url": url,
            "config": { "b": [1, "two\n"], "a": null },
        });
        let Value::Object(map) = integration.take() else {
            unreachable!("an object literal")
        };
        map
    }

    /// What the list wrote before rendered integrations were kept: serde_json over the whole.
    fn rendered_whole(data: &HeronData) -> Vec<u8> {
        serde_json::to_vec(&json!({ "crm_integrations": data.crm_integrations }))
            .unwrap_or_default()
    }

    #[test]
    fn the_list_is_what_rendering_the_whole_gave_after_creates_updates_and_a_load() {
        let mut data = HeronData::default();
        assert_eq!(data.list_body().ok(), Some(rendered_whole(&data)));
        data.created(integration("crm_1", "https://a.example"));
        data.created(integration("crm_2", "https://b.example"));
        assert_eq!(data.list_body().ok(), Some(rendered_whole(&data)));

        let mut changes = Map::new();
        changes.insert("instance_url".into(), json!("https://c.example"));
        assert!(data.update("crm_1", changes.clone()).is_some());
        assert!(data.update("crm_9", changes).is_none());
        let listed = data.list_body().ok();
        assert_eq!(listed, Some(rendered_whole(&data)));
        assert!(String::from_utf8_lossy(&listed.unwrap_or_default()).contains("c.example"));

        // Loaded from the data file: nothing rendered yet; the list renders, a create fills in.
        let saved = serde_json::to_vec(&data).unwrap_or_default();
        let mut loaded: HeronData = serde_json::from_slice(&saved).unwrap_or_default();
        assert!(loaded.rendered.is_empty());
        assert_eq!(loaded.list_body().ok(), Some(rendered_whole(&data)));
        loaded.created(integration("crm_3", "https://d.example"));
        assert_eq!(loaded.rendered.len(), 3);
        assert_eq!(loaded.list_body().ok(), Some(rendered_whole(&loaded)));
    }
}
