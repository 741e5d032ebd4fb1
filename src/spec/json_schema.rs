//! The spec format as JSON Schema (draft 2020-12), generated from the same schema data the
//! validator uses, so editors and `orgform validate` agree.

use serde_json::{Map, Value, json};

use crate::catalog::schema::{BaseUrl, COMMON_INSTANCE_FIELDS, Field, Kind, STATE_FIELDS};
use crate::model::ProviderType;

/// Addresses, provider instance and template names, as `validate` checks them: at most 64 characters of
/// ASCII letters, digits, `_` and `-`, starting with a letter or `_`.
const NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$";

pub(crate) fn json_schema() -> Value {
    let mut instances = Vec::new();
    let mut orgs = Vec::new();
    let mut templates = Vec::new();
    for provider_type in ProviderType::ALL {
        let schema = provider_type.schema();
        let mut instance = object(&[COMMON_INSTANCE_FIELDS, schema.instance]);
        instance["properties"]["type"] =
            json!({"const": provider_type.name(), "description": schema.doc});
        instance["title"] = json!(format!("{provider_type} provider"));
        // The validator's rule, from the same data: no public endpoint, so `base_url` is needed.
        if let BaseUrl::Required { .. } = schema.base_url {
            add_required(&mut instance, "base_url");
        }
        instances.push(instance);

        // A template holds any of an organization's fields, none of them required (not even in
        // a nested table: an organization may hold the rest).
        let mut template = object(&[schema.org]);
        template["properties"]["provider"] = provider_property(provider_type);
        nothing_required(&mut template);
        template["title"] = json!(format!("{provider_type} template"));
        template["description"] = json!(schema.doc);
        templates.push(template);

        let mut org = object(&[schema.org]);
        org["properties"]["provider"] = provider_property(provider_type);
        org["properties"]["template"] = json!({
            "type": "string",
            "description": "Name of a [template.NAME] table whose fields this organization takes where it sets none",
        });
        add_required(&mut org, "provider");
        // With a template, what is required (here or in a nested table) may come from it:
        // `validate` checks the merge.
        let mut with_template = org.clone();
        nothing_required(&mut with_template);
        let mut org = json!({
            "if": {"required": ["template"]},
            "then": with_template,
            "else": org,
        });
        org["title"] = json!(format!("{provider_type} organization"));
        org["description"] = json!(schema.doc);
        orgs.push(org);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://orgform.dev/schema/spec.json",
        "title": "orgform spec",
        "description": "A file of orgform specs: provider instances, templates, organizations and state settings",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "provider": {
                "type": "object",
                "description": "Provider instances, by name",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"oneOf": instances},
            },
            "org": {
                "type": "object",
                "description": "Organizations, by address",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"anyOf": orgs},
            },
            "template": {
                "type": "object",
                "description": "Templates, by name: organization fields that organizations naming them take",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"anyOf": templates},
            },
            "state": object(&[STATE_FIELDS]),
        },
    })
}

/// `schema` with no field required in it or in its nested tables (a secret reference, one
/// schema of several, keeps its own).
fn nothing_required(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    map.remove("required");
    for key in ["properties", "additionalProperties", "items"] {
        match map.get_mut(key) {
            Some(Value::Object(inner)) if key == "properties" => {
                inner.values_mut().for_each(nothing_required);
            }
            Some(inner) => nothing_required(inner),
            None => {}
        }
    }
}

fn provider_property(provider_type: ProviderType) -> Value {
    json!({
        "type": "string",
        "description": format!("Name of a [provider.NAME] table of type {provider_type}"),
    })
}

fn add_required(schema: &mut Value, name: &str) {
    if let Some(list) = schema.get_mut("required").and_then(Value::as_array_mut) {
        list.push(json!(name));
    } else {
        schema["required"] = json!([name]);
    }
}

fn object(field_sets: &[&[Field]]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in field_sets.iter().flat_map(|f| f.iter()) {
        let mut schema = kind_schema(&field.kind);
        if !field.doc.is_empty() {
            schema["description"] = json!(field.doc);
        }
        properties.insert(field.name.to_string(), schema);
        if field.required {
            required.push(json!(field.name));
        }
    }
    let mut out =
        json!({"type": "object", "additionalProperties": false, "properties": properties});
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    out
}

fn kind_schema(kind: &Kind) -> Value {
    match kind {
        Kind::String(text) => {
            let mut s = json!({"type": "string"});
            if let Some(min) = text.min_len {
                s["minLength"] = json!(min);
            }
            if let Some(max) = text.max_len {
                s["maxLength"] = json!(max);
            }
            if let Some(pattern) = text
                .format
                .and_then(crate::catalog::schema::Format::pattern)
            {
                s["pattern"] = json!(pattern);
            }
            s
        }
        Kind::Integer { min, max } => {
            let mut s = json!({"type": "integer"});
            if let Some(min) = min {
                s["minimum"] = json!(min);
            }
            if let Some(max) = max {
                s["maximum"] = json!(max);
            }
            s
        }
        Kind::Float => json!({"type": "number"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Enum(values) => json!({"type": "string", "enum": values}),
        Kind::IntEnum(values) => json!({"type": "integer", "enum": values}),
        Kind::Secret => json!({
            "description": "A secret, by reference only",
            "oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["env"], "properties": {"env": {"type": "string", "minLength": 1}}},
                {"type": "object", "additionalProperties": false, "required": ["file"], "properties": {"file": {"type": "string", "minLength": 1}}},
            ],
        }),
        Kind::Object(fields) => object(&[fields]),
        Kind::Array(inner) => json!({"type": "array", "items": kind_schema(inner)}),
        Kind::Map(inner) => json!({"type": "object", "additionalProperties": kind_schema(inner)}),
        Kind::Any => json!({}),
    }
}
