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
    Field::same_on_wire("external_name", S)
        .required()
        .doc("Name of the CRM object, like \"Account\""),
    Field::same_on_wire("alias", S).doc("Alias of the id, like \"Company\""),
];

static LOOKUP_CONFIG: &[Field] = &[
    Field::same_on_wire("external_lookup_fields_and", Kind::Array(&S))
        .doc("CRM fields that must all match when looking a record up"),
    Field::same_on_wire("external_lookup_fields_or", Kind::Array(&S))
        .doc("CRM fields of which one must match when looking a record up"),
    Field::same_on_wire("sort_field_name", S)
        .doc("Field to sort look-up results by (default CreatedDate)"),
    Field::same_on_wire("sort_order", Kind::Enum(&["ASC", "DESC"]))
        .doc("Sort order of look-up results"),
];

static FIELD_MAPPING: &[Field] = &[
    Field::same_on_wire("field_name", S)
        .required()
        .doc("CRM field name, like \"Name\""),
    Field::same_on_wire("external_lookup_field_name", S),
    Field::same_on_wire("external_object_name_for_id", S),
    Field::same_on_wire("heron_company_attribute_label", S)
        .doc("Heron company attribute to map, like \"owner_1_first_name\""),
    Field::same_on_wire(
        "max_length",
        Kind::Integer {
            min: Some(0),
            max: None,
        },
    ),
    Field::same_on_wire("overwrite_on_update", Kind::Bool).doc("Default true"),
    Field::same_on_wire("regex_remove", S)
        .doc("Pattern removed from the value before it is written"),
    Field::same_on_wire("required", Kind::Bool).doc("Default false"),
    Field::same_on_wire("static_value", S),
    Field::same_on_wire("static_value_key", Kind::Enum(&["date_today"])),
    Field::same_on_wire("value_mapping_name", S).doc("Name of a value mapping to apply"),
    Field::same_on_wire("value_type", S).doc("CRM value type, like \"Text\""),
];

static STATIC_DATA: &[Field] = &[
    Field::same_on_wire("key", S).required(),
    Field::same_on_wire("value", Kind::Any).required(),
];

static OBJECT_CONFIG: &[Field] = &[
    Field::same_on_wire("external_name", S)
        .required()
        .doc("CRM object name, like \"Account\""),
    Field::same_on_wire("key", S)
        .required()
        .doc("Key of this object configuration"),
    Field::same_on_wire("description", S),
    Field::same_on_wire("external_lookup_config", Kind::Object(LOOKUP_CONFIG)),
    Field::same_on_wire("field_mappings", Kind::Array(&Kind::Object(FIELD_MAPPING))),
    Field::same_on_wire("is_optional", Kind::Bool).doc("Default false"),
    Field::same_on_wire("required_ids", Kind::Array(&Kind::Object(OBJECT_ID))),
    Field::same_on_wire("static_data", Kind::Array(&Kind::Object(STATIC_DATA))),
];

static VALUE_MAPPING: &[Field] = &[
    Field::same_on_wire("name", S).required(),
    Field::same_on_wire("mapping", Kind::Map(&Kind::Any))
        .required()
        .doc("Heron value to CRM value"),
    Field::same_on_wire("use_partial_match", Kind::Bool).doc("Default false"),
];

static POLICY_EVALUATION: &[Field] = &[
    Field::same_on_wire("external_object_name", S)
        .required()
        .doc("Like \"Opportunity\""),
    Field::same_on_wire("failure_reason_external_name", S),
    Field::same_on_wire("result_external_name", S),
];

static CONFIG: &[Field] = &[
    Field::same_on_wire("child_file_filtering_enabled", Kind::Bool).doc("Default true"),
    Field::same_on_wire("small_file_filtering_enabled", Kind::Bool).doc("Default false"),
    Field::same_on_wire("download_legacy_attachments", Kind::Bool).doc("Default false"),
    Field::same_on_wire("data_source_accounts_config", Kind::Object(OBJECT_CONFIG)),
    Field::same_on_wire("default_id", Kind::Object(OBJECT_ID)),
    Field::same_on_wire("object_configs", Kind::Array(&Kind::Object(OBJECT_CONFIG))),
    Field::same_on_wire("policy_evaluation_config", Kind::Object(POLICY_EVALUATION)),
    Field::same_on_wire("sync_file_classes", Kind::Map(&Kind::Bool))
        .doc("File class to whether it syncs"),
    Field::same_on_wire("value_mappings", Kind::Array(&Kind::Object(VALUE_MAPPING))),
];

static ORG: &[Field] = &[
    Field::new("crm_provider", "provider", Kind::String(Text::non_empty()))
        .required()
        .doc("The CRM, like \"salesforce\" (Heron's `provider`)"),
    Field::same_on_wire("instance_url", Kind::String(Text::format(Format::Url)))
        .required()
        .doc("URL of the CRM instance"),
    Field::same_on_wire("auth", Kind::Map(&Kind::Secret))
        .required()
        .doc("CRM credentials (client_id, client_secret, refresh_token, ...), each by reference"),
    Field::same_on_wire("secret", Kind::Secret)
        .required()
        .doc("Webhook shared secret, by reference"),
    Field::same_on_wire("config", Kind::Object(CONFIG))
        .required()
        .doc("Objects, mappings and policy evaluation"),
    Field::same_on_wire("is_enabled", Kind::Bool).doc("Default true"),
    Field::same_on_wire("is_live", Kind::Bool).doc("Default true"),
    Field::same_on_wire("failure_notification_channel", S).doc("Where Heron reports sync failures"),
];

static INSTANCE: &[Field] = &[Field::new("api_key", "x-api-key", Kind::Secret)
    .required()
    .doc("Heron API key, sent as the x-api-key header")];

fn natural_key(org: &Table, _instance: &Table) -> NaturalKey {
    let part = |k: &str| org.get(k).and_then(Value::as_str).unwrap_or("");
    ProviderType::Heron.natural_key(&[part("crm_provider"), part("instance_url")])
}

pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    // One call lists every integration.
    reads: Reads::ListAll,
    vendor_hosts: &["app.herondata.io"],
    ..Capabilities::PLAIN
};

pub(crate) static DESCRIPTOR: Descriptor = Descriptor {
    schema: ProviderSchema::new(
        "Heron Data CRM integration (POST /api/crm_integrations)",
        BaseUrl::Default("https://app.herondata.io"),
        natural_key,
    )
    .key_fields(&["crm_provider", "instance_url"])
    .instance(INSTANCE, &[])
    .org(ORG, &[]),
    capabilities: CAPABILITIES,
    sandbox_credentials: sandbox::CREDENTIALS,
};

/// What the sandbox's emulator accepts: fixed, public values for a machine with no account.
pub(crate) mod sandbox {
    /// The one API key the Heron emulator accepts, besides any listed in its data file.
    pub const API_KEY: &str = "sandbox-heron-key";
    /// By the instance key that carries each.
    pub(crate) const CREDENTIALS: &[(&str, &str)] = &[("api_key", API_KEY)];
}
