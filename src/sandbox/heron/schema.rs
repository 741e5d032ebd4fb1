//! Heron's marshmallow schema for a CRM integration, as data: what a create or a patch body
//! must hold (types, required fields, defaults filled, unknown fields kept, `auth` and `secret`
//! dropped once checked), and the 400 or 422 answer with marshmallow's nested messages when it
//! does not.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error;

/// A body Heron refuses before looking at its data.
pub(super) enum Rejected {
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
pub(super) fn parse(body: &[u8]) -> Result<Value, Rejected> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|_| Rejected::MalformedJson)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Load {
    /// `CrmIntegrationSchema`: required fields enforced, defaults filled.
    Create,
    /// `CrmIntegrationPatchSchema`: top-level fields optional and not defaulted; nested
    /// objects that are given are still complete ones.
    Patch,
}

/// Validates a create or patch body as Heron's marshmallow schema would, returning what gets
/// stored (defaults filled, write-only fields dropped) or why it is refused.
pub(super) fn load(input: &Value, mode: Load) -> Result<Map<String, Value>, Rejected> {
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
