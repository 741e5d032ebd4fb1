//! Heron Data: `POST /api/crm_integrations` (seed 003), with the OpenAPI rules of
//! docs/providers/heron.md, "Create".
//!
//! Heron's own `provider` field clashes with orgform's `provider` key, so it is `crm_provider`
//! in specs. `auth` and `secret` are write-only at Heron and secrets here: by reference only.

use super::schema::{BaseUrl, Field, Format, Kind, ProviderSchema, Text};
use super::{Capabilities, Descriptor, Reads};
use crate::model::{NaturalKey, ProviderType, Table, Value};

const S: Kind = Kind::String(Text::ANY);

static OBJECT_ID: &[Field] = &[
    Field::new("external_name", "external_name", S)
        .required()
        .doc("Name of the CRM object, like \"Account\""),
    Field::new("alias", "alias", S).doc("Alias of the id, like \"Company\""),
];

static LOOKUP_CONFIG: &[Field] = &[
    Field::new(
        "external_lookup_fields_and",
        "external_lookup_fields_and",
        Kind::Array(&S),
    )
    .doc("CRM fields that must all match when looking a record up"),
    Field::new(
        "external_lookup_fields_or",
        "external_lookup_fields_or",
        Kind::Array(&S),
    )
    .doc("CRM fields of which one must match when looking a record up"),
    Field::new("sort_field_name", "sort_field_name", S)
        .doc("Field to sort look-up results by (default CreatedDate)"),
    Field::new("sort_order", "sort_order", Kind::Enum(&["ASC", "DESC"]))
        .doc("Sort order of look-up results"),
];

static FIELD_MAPPING: &[Field] = &[
    Field::new("field_name", "field_name", S)
        .required()
        .doc("CRM field name, like \"Name\""),
    Field::new(
        "external_lookup_field_name",
        "external_lookup_field_name",
        S,
    ),
    Field::new(
        "external_object_name_for_id",
        "external_object_name_for_id",
        S,
    ),
    Field::new(
        "heron_company_attribute_label",
        "heron_company_attribute_label",
        S,
    )
    .doc("Heron company attribute to map, like \"owner_1_first_name\""),
    Field::new(
        "max_length",
        "max_length",
        Kind::Integer {
            min: Some(0),
            max: None,
        },
    ),
    Field::new("overwrite_on_update", "overwrite_on_update", Kind::Bool).doc("Default true"),
    Field::new("regex_remove", "regex_remove", S)
        .doc("Pattern removed from the value before it is written"),
    Field::new("required", "required", Kind::Bool).doc("Default false"),
    Field::new("static_value", "static_value", S),
    Field::new(
        "static_value_key",
        "static_value_key",
        Kind::Enum(&["date_today"]),
    ),
    Field::new("value_mapping_name", "value_mapping_name", S)
        .doc("Name of a value mapping to apply"),
    Field::new("value_type", "value_type", S).doc("CRM value type, like \"Text\""),
];

static STATIC_DATA: &[Field] = &[
    Field::new("key", "key", S).required(),
    Field::new("value", "value", Kind::Any).required(),
];

static OBJECT_CONFIG: &[Field] = &[
    Field::new("external_name", "external_name", S)
        .required()
        .doc("CRM object name, like \"Account\""),
    Field::new("key", "key", S)
        .required()
        .doc("Key of this object configuration"),
    Field::new("description", "description", S),
    Field::new(
        "external_lookup_config",
        "external_lookup_config",
        Kind::Object(LOOKUP_CONFIG),
    ),
    Field::new(
        "field_mappings",
        "field_mappings",
        Kind::Array(&Kind::Object(FIELD_MAPPING)),
    ),
    Field::new("is_optional", "is_optional", Kind::Bool).doc("Default false"),
    Field::new(
        "required_ids",
        "required_ids",
        Kind::Array(&Kind::Object(OBJECT_ID)),
    ),
    Field::new(
        "static_data",
        "static_data",
        Kind::Array(&Kind::Object(STATIC_DATA)),
    ),
];

static VALUE_MAPPING: &[Field] = &[
    Field::new("name", "name", S).required(),
    Field::new("mapping", "mapping", Kind::Map(&Kind::Any))
        .required()
        .doc("Heron value to CRM value"),
    Field::new("use_partial_match", "use_partial_match", Kind::Bool).doc("Default false"),
];

static POLICY_EVALUATION: &[Field] = &[
    Field::new("external_object_name", "external_object_name", S)
        .required()
        .doc("Like \"Opportunity\""),
    Field::new(
        "failure_reason_external_name",
        "failure_reason_external_name",
        S,
    ),
    Field::new("result_external_name", "result_external_name", S),
];

static CONFIG: &[Field] = &[
    Field::new(
        "child_file_filtering_enabled",
        "child_file_filtering_enabled",
        Kind::Bool,
    )
    .doc("Default true"),
    Field::new(
        "small_file_filtering_enabled",
        "small_file_filtering_enabled",
        Kind::Bool,
    )
    .doc("Default false"),
    Field::new(
        "download_legacy_attachments",
        "download_legacy_attachments",
        Kind::Bool,
    )
    .doc("Default false"),
    Field::new(
        "data_source_accounts_config",
        "data_source_accounts_config",
        Kind::Object(OBJECT_CONFIG),
    ),
    Field::new("default_id", "default_id", Kind::Object(OBJECT_ID)),
    Field::new(
        "object_configs",
        "object_configs",
        Kind::Array(&Kind::Object(OBJECT_CONFIG)),
    ),
    Field::new(
        "policy_evaluation_config",
        "policy_evaluation_config",
        Kind::Object(POLICY_EVALUATION),
    ),
    Field::new(
        "sync_file_classes",
        "sync_file_classes",
        Kind::Map(&Kind::Bool),
    )
    .doc("File class to whether it syncs"),
    Field::new(
        "value_mappings",
        "value_mappings",
        Kind::Array(&Kind::Object(VALUE_MAPPING)),
    ),
];

static ORG: &[Field] = &[
    Field::new("crm_provider", "provider", Kind::String(Text::non_empty()))
        .required()
        .doc("The CRM, like \"salesforce\" (Heron's `provider`)"),
    Field::new(
        "instance_url",
        "instance_url",
        Kind::String(Text::format(Format::Url)),
    )
    .required()
    .doc("URL of the CRM instance"),
    Field::new("auth", "auth", Kind::Map(&Kind::Secret))
        .required()
        .doc("CRM credentials (client_id, client_secret, refresh_token, ...), each by reference"),
    Field::new("secret", "secret", Kind::Secret)
        .required()
        .doc("Webhook shared secret, by reference"),
    Field::new("config", "config", Kind::Object(CONFIG))
        .required()
        .doc("Objects, mappings and policy evaluation"),
    Field::new("is_enabled", "is_enabled", Kind::Bool).doc("Default true"),
    Field::new("is_live", "is_live", Kind::Bool).doc("Default true"),
    Field::new(
        "failure_notification_channel",
        "failure_notification_channel",
        S,
    )
    .doc("Where Heron reports sync failures"),
];

static INSTANCE: &[Field] = &[Field::new("api_key", "x-api-key", Kind::Secret)
    .required()
    .doc("Heron API key, sent as the x-api-key header")];

fn natural_key(org: &Table, _instance: &Table) -> NaturalKey {
    let part = |k: &str| org.get(k).and_then(Value::as_str).unwrap_or("");
    ProviderType::Heron.natural_key(&[part("crm_provider"), part("instance_url")])
}

pub const CAPABILITIES: Capabilities = Capabilities {
    // One call lists every integration.
    reads: Reads::ListAll,
    vendor_hosts: &["app.herondata.io"],
    ..Capabilities::PLAIN
};

pub static DESCRIPTOR: Descriptor = Descriptor {
    schema: ProviderSchema::new(
        ProviderType::Heron,
        "Heron Data CRM integration (POST /api/crm_integrations)",
        BaseUrl::Default("https://app.herondata.io"),
        natural_key,
    )
    .instance(INSTANCE, &[])
    .org(ORG, &[]),
    capabilities: CAPABILITIES,
    sandbox_credentials: sandbox::CREDENTIALS,
};

/// What the sandbox's emulator accepts: fixed, public values for a machine with no account.
pub mod sandbox {
    /// The one API key the Heron emulator accepts, besides any listed in its data file.
    pub const API_KEY: &str = "sandbox-heron-key";
    /// By the instance key that carries each.
    pub const CREDENTIALS: &[(&str, &str)] = &[("api_key", API_KEY)];
}
