//! The Heron Data emulator: CRM integrations under `/api` (`docs/providers/heron.md`, seed 003).
//!
//! Serves `POST /api/crm_integrations` (201, wrapped in `crm_integration`),
//! `GET /api/crm_integrations` (all of them, no paging) and `PATCH /api/crm_integrations/{id}`
//! (200 with the bare object: Heron's documented quirk), behind the `x-api-key` header and a
//! fixed 60-second rate-limit window per key with `x-ratelimit-*` headers on every answer to
//! an accepted key (not on 401s, nor on the framework's injected faults).
//! Errors are Heron's `{"code","description","name"}`; validation failures are marshmallow's
//! nested messages under `description.json`.
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

pub const PREFIXES: &[&str] = &["/api"];

/// The length of a rate-limit window.
const WINDOW_SECS: u64 = 60;

/// Heron's section of the data file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeronData {
    /// Keys accepted besides [`HERON_API_KEY`]: configuration, kept by a reset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// The integrations as Heron returns them: keys sorted, no `auth`, no `secret`.
    #[serde(default)]
    pub crm_integrations: Vec<Map<String, Value>>,
    /// How many integrations were ever created: the counter part of new ids.
    #[serde(default)]
    created: u64,
    /// Rate-limit windows per API key; transient, never saved.
    #[serde(skip)]
    windows: HashMap<String, Window>,
}

impl HeronData {
    pub fn organizations(&self) -> usize {
        self.crm_integrations.len()
    }

    pub fn reset(&mut self) {
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

pub fn routes(state: &SandboxState) -> Router<SandboxState> {
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
pub fn status_error(state: &SandboxState, status: StatusCode) -> Response {
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
    let all = state.read(|data| data.heron.crm_integrations.clone());
    Json(json!({ "crm_integrations": all })).into_response()
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
            data.heron.crm_integrations.push(integration.clone());
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
        .mutate(|data| {
            let integration =
                data.heron.crm_integrations.iter_mut().find(|i| {
                    i.get("heron_id").and_then(Value::as_str) == Some(heron_id.as_str())
                })?;
            integration.extend(changes);
            sort_keys(integration);
            Some(integration.clone())
        })
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

/// A body Heron refuses before looking at its data.
enum Rejected {
    /// 400: not JSON.
    MalformedJson,
    /// 422: marshmallow's messages, field by field.
    Invalid(Value),
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            Rejected::MalformedJson => error(
                StatusCode::BAD_REQUEST,
                json!({"json": ["Invalid JSON body."]}),
            ),
            Rejected::Invalid(errors) => {
                error(StatusCode::UNPROCESSABLE_ENTITY, json!({ "json": errors }))
            }
        }
    }
}

/// The JSON body; an empty body is an empty object, so that it fails on missing fields.
fn parse(body: &[u8]) -> Result<Value, Rejected> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|_| Rejected::MalformedJson)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// `CrmIntegrationSchema`: required fields enforced, defaults filled.
    Create,
    /// `CrmIntegrationPatchSchema`: top-level fields optional and not defaulted; nested
    /// objects that are given are still complete ones.
    Patch,
}

/// Validates a create or patch body as Heron's marshmallow schema would, returning what gets
/// stored (defaults filled, write-only fields dropped) or why it is refused.
fn load(input: &Value, mode: Load) -> Result<Map<String, Value>, Rejected> {
    let Some(object) = input.as_object() else {
        return Err(Rejected::Invalid(
            json!({"_schema": ["Invalid input type."]}),
        ));
    };
    let mut loaded = load_object(INTEGRATION, object, mode == Load::Patch)
        .map_err(|errors| Rejected::Invalid(Value::Object(errors)))?;
    // `auth` and `secret` are write-only and `heron_id` read-only: none is kept from a body.
    for dropped in ["auth", "secret", "heron_id"] {
        loaded.remove(dropped);
    }
    Ok(loaded)
}

/// A field of a Heron schema.
struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
    /// What an absent field becomes; fields defaulting to something other than null refuse
    /// null, as marshmallow's do.
    fill: Fill,
}

const fn required(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        fill: Fill::Absent,
    }
}

const fn optional(name: &'static str, ty: Ty, fill: Fill) -> Field {
    Field {
        name,
        ty,
        required: false,
        fill,
    }
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    Url,
    Any,
    OneOf(&'static [&'static str]),
    /// A string-keyed mapping of values of one type.
    Dict(&'static Ty),
    List(&'static Ty),
    Object(&'static [Field]),
}

#[derive(Clone, Copy)]
enum Fill {
    Absent,
    Null,
    Bool(bool),
    Str(&'static str),
    EmptyList,
    EmptyDict,
}

impl Fill {
    fn value(self) -> Option<Value> {
        match self {
            Fill::Absent => None,
            Fill::Null => Some(Value::Null),
            Fill::Bool(b) => Some(Value::Bool(b)),
            Fill::Str(s) => Some(Value::String(s.to_owned())),
            Fill::EmptyList => Some(Value::Array(Vec::new())),
            Fill::EmptyDict => Some(Value::Object(Map::new())),
        }
    }
}

const S: Ty = Ty::Str;

/// `CrmObjectId`.
const OBJECT_ID: &[Field] = &[
    required("external_name", S),
    optional("alias", S, Fill::Absent),
];

/// `CrmExternalLookupConfig`.
const LOOKUP_CONFIG: &[Field] = &[
    optional("external_lookup_fields_and", Ty::List(&S), Fill::Absent),
    optional("external_lookup_fields_or", Ty::List(&S), Fill::Absent),
    optional("sort_field_name", S, Fill::Str("CreatedDate")),
    optional("sort_order", Ty::OneOf(&["ASC", "DESC"]), Fill::Absent),
];

/// `CrmFieldMapping`: optional scalars come back as null, as in Heron's list example.
const FIELD_MAPPING: &[Field] = &[
    required("field_name", S),
    optional("external_lookup_field_name", S, Fill::Null),
    optional("external_object_name_for_id", S, Fill::Null),
    optional("heron_company_attribute_label", S, Fill::Null),
    optional("max_length", Ty::Int, Fill::Null),
    optional("overwrite_on_update", Ty::Bool, Fill::Bool(true)),
    optional("regex_remove", S, Fill::Null),
    optional("required", Ty::Bool, Fill::Bool(false)),
    optional("static_value", Ty::Any, Fill::Null),
    optional("static_value_key", Ty::OneOf(&["date_today"]), Fill::Null),
    optional("value_mapping_name", S, Fill::Null),
    optional("value_type", S, Fill::Null),
];

/// `CrmStaticData`.
const STATIC_DATA: &[Field] = &[required("key", S), required("value", Ty::Any)];

/// `CrmObjectConfig`.
const OBJECT_CONFIG: &[Field] = &[
    required("external_name", S),
    required("key", S),
    optional("description", S, Fill::Absent),
    optional(
        "external_lookup_config",
        Ty::Object(LOOKUP_CONFIG),
        Fill::Absent,
    ),
    optional(
        "field_mappings",
        Ty::List(&Ty::Object(FIELD_MAPPING)),
        Fill::Absent,
    ),
    optional("is_optional", Ty::Bool, Fill::Bool(false)),
    optional(
        "required_ids",
        Ty::List(&Ty::Object(OBJECT_ID)),
        Fill::Absent,
    ),
    optional(
        "static_data",
        Ty::List(&Ty::Object(STATIC_DATA)),
        Fill::Absent,
    ),
];

/// `CrmValueMapping`.
const VALUE_MAPPING: &[Field] = &[
    required("mapping", Ty::Dict(&Ty::Any)),
    required("name", S),
    optional("use_partial_match", Ty::Bool, Fill::Bool(false)),
];

/// `CrmPolicyEvaluationConfig`.
const POLICY_EVALUATION: &[Field] = &[
    required("external_object_name", S),
    optional("failure_reason_external_name", S, Fill::Absent),
    optional("result_external_name", S, Fill::Absent),
];

/// `CrmConfig`.
const CONFIG: &[Field] = &[
    optional("child_file_filtering_enabled", Ty::Bool, Fill::Bool(true)),
    optional(
        "data_source_accounts_config",
        Ty::Object(OBJECT_CONFIG),
        Fill::Absent,
    ),
    optional("default_id", Ty::Object(OBJECT_ID), Fill::Absent),
    optional("download_legacy_attachments", Ty::Bool, Fill::Bool(false)),
    optional(
        "object_configs",
        Ty::List(&Ty::Object(OBJECT_CONFIG)),
        Fill::EmptyList,
    ),
    optional(
        "policy_evaluation_config",
        Ty::Object(POLICY_EVALUATION),
        Fill::Absent,
    ),
    optional("small_file_filtering_enabled", Ty::Bool, Fill::Bool(false)),
    optional("sync_file_classes", Ty::Dict(&Ty::Bool), Fill::EmptyDict),
    optional(
        "value_mappings",
        Ty::List(&Ty::Object(VALUE_MAPPING)),
        Fill::EmptyList,
    ),
];

/// `CrmIntegrationSchema`.
const INTEGRATION: &[Field] = &[
    required("auth", Ty::Dict(&Ty::Any)),
    required("config", Ty::Object(CONFIG)),
    optional("failure_notification_channel", S, Fill::Null),
    required("instance_url", Ty::Url),
    optional("is_enabled", Ty::Bool, Fill::Bool(true)),
    optional("is_live", Ty::Bool, Fill::Bool(true)),
    required("provider", S),
    required("secret", S),
];

const MISSING: &str = "Missing data for required field.";

fn messages(message: impl Into<String>) -> Value {
    Value::Array(vec![Value::String(message.into())])
}

/// Loads one object: every field checked, defaults filled (unless `partial`), unknown fields
/// kept as given. Errors come back as marshmallow's map from field name to messages.
fn load_object(
    fields: &[Field],
    input: &Map<String, Value>,
    partial: bool,
) -> Result<Map<String, Value>, Map<String, Value>> {
    let mut loaded = Map::new();
    let mut errors = Map::new();
    for field in fields {
        let name = field.name.to_owned();
        match input.get(field.name) {
            None if partial => {}
            None if field.required => {
                errors.insert(name, messages(MISSING));
            }
            None => {
                if let Some(value) = field.fill.value() {
                    loaded.insert(name, value);
                }
            }
            Some(Value::Null) => {
                if !field.required && matches!(field.fill, Fill::Absent | Fill::Null) {
                    loaded.insert(name, Value::Null);
                } else {
                    errors.insert(name, messages("Field may not be null."));
                }
            }
            Some(value) => match load_value(field.ty, value) {
                Ok(value) => {
                    loaded.insert(name, value);
                }
                Err(error) => {
                    errors.insert(name, error);
                }
            },
        }
    }
    for (name, value) in input {
        if !fields.iter().any(|field| field.name == name) {
            loaded.insert(name.clone(), value.clone());
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

fn load_value(ty: Ty, value: &Value) -> Result<Value, Value> {
    match ty {
        Ty::Any => Ok(value.clone()),
        Ty::Str => value
            .is_string()
            .then(|| value.clone())
            .ok_or_else(|| messages("Not a valid string.")),
        Ty::Bool => value
            .is_boolean()
            .then(|| value.clone())
            .ok_or_else(|| messages("Not a valid boolean.")),
        Ty::Int => (value.is_i64() || value.is_u64())
            .then(|| value.clone())
            .ok_or_else(|| messages("Not a valid integer.")),
        Ty::Url => match value.as_str() {
            Some(text) if is_url(text) => Ok(value.clone()),
            Some(_) => Err(messages("Not a valid URL.")),
            None => Err(messages("Not a valid string.")),
        },
        Ty::OneOf(choices) => match value.as_str() {
            Some(text) if choices.contains(&text) => Ok(value.clone()),
            Some(_) => Err(messages(format!("Must be one of: {}.", choices.join(", ")))),
            None => Err(messages("Not a valid string.")),
        },
        Ty::Dict(of) => {
            let Some(object) = value.as_object() else {
                return Err(messages("Not a valid mapping type."));
            };
            let mut loaded = Map::new();
            let mut errors = Map::new();
            for (key, item) in object {
                match load_value(*of, item) {
                    Ok(item) => {
                        loaded.insert(key.clone(), item);
                    }
                    Err(error) => {
                        errors.insert(key.clone(), json!({ "value": error }));
                    }
                }
            }
            if errors.is_empty() {
                Ok(Value::Object(loaded))
            } else {
                Err(Value::Object(errors))
            }
        }
        Ty::List(of) => {
            let Some(items) = value.as_array() else {
                return Err(messages("Not a valid list."));
            };
            let mut loaded = Vec::with_capacity(items.len());
            let mut errors = Map::new();
            for (index, item) in items.iter().enumerate() {
                match load_value(*of, item) {
                    Ok(item) => loaded.push(item),
                    Err(error) => {
                        errors.insert(index.to_string(), error);
                    }
                }
            }
            if errors.is_empty() {
                Ok(Value::Array(loaded))
            } else {
                Err(Value::Object(errors))
            }
        }
        Ty::Object(fields) => match value.as_object() {
            Some(object) => load_object(fields, object, false)
                .map(Value::Object)
                .map_err(Value::Object),
            None => Err(json!({"_schema": ["Invalid input type."]})),
        },
    }
}

/// marshmallow's `fields.Url`: an absolute http(s) or ftp(s) URL with a host, no whitespace.
fn is_url(text: &str) -> bool {
    if text.chars().any(char::is_whitespace) {
        return false;
    }
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let scheme_ok = matches!(url.scheme(), "http" | "https" | "ftp" | "ftps");
    let host_ok = match url.host() {
        Some(url::Host::Domain(domain)) => domain.contains('.') || domain == "localhost",
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        None => false,
    };
    scheme_ok && host_ok
}
