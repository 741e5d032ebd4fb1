//! NeonCRM API v1: `account/createOrganizationAccount` (seed 004, docs/providers/neoncrm.md).
//!
//! Every request parameter of the seed is declarable. The `organizationAccount.` prefix is
//! dropped from spec names (`organizationAccount.primaryContact.firstName` is
//! `primary_contact.first_name`), while the three parameters the seed lists outside
//! `organizationAccount` (`originDetail`, `sendAcknowledgeEmail`, `consentInformation.*`) keep
//! their own names. The `wire` of a top-level field is therefore its whole parameter name, and
//! the `wire` of a nested field is the segment joined to its parent's with a dot: the client's
//! query encoder only ever joins.
//!
//! v1's XML-derived repeated groups (`addresses.address`, `customFieldDataList.customFieldData`,
//! `organizationTypes.organizationType`) are arrays of tables here, and their `wire` is the whole
//! group path, so that each element's fields are sent as repeated parameters in order.
//!
//! The natural key is `organization_name`, compared exactly: NeonCRM allows two accounts with
//! one name, so orgform's look-up before every create is what stops a duplicate.

use super::schema::{BaseUrl, Field, Format, Kind, Problems, ProviderSchema, Rule, Text};
use super::{Capabilities, Descriptor, Reads};
use crate::model::{NaturalKey, ProviderType, Table, Value};

const S: Kind = Kind::String(Text::ANY);
const ID: Kind = Kind::Integer {
    min: Some(1),
    max: None,
};
const DATE: Kind = Kind::String(Text::format(Format::Date));
const EMAIL: Kind = Kind::String(Text::format(Format::Email));
const PHONE_TYPE: Kind = Kind::Enum(&["Home", "Work", "Mobile"]);
const CONSENT: Kind = Kind::Enum(&["GIVEN", "DECLINED", "NOT_ASKED"]);

static GENDER: &[Field] = &[
    Field::same_on_wire("code", S).doc("Gender code, like \"M\"; from the List Genders request"),
    Field::same_on_wire("name", S).doc("Gender name; from the List Genders request"),
];

static ADDRESS_TYPE: &[Field] = &[
    Field::same_on_wire("id", ID).doc("Address type id; from the List Address Types request"),
    Field::same_on_wire("name", S)
        .doc("Address type name, like \"Home\"; from the List Address Types request"),
];

static STATE: &[Field] = &[
    Field::same_on_wire("code", S).doc("State code, like \"AL\"; from the List States request"),
    Field::same_on_wire("name", S)
        .doc("State name, like \"ALABAMA\"; from the List States request"),
];

static COUNTRY: &[Field] = &[
    Field::same_on_wire("id", ID).doc("Country id; from the List Countries request"),
    Field::same_on_wire("name", S).doc("Country name; from the List Countries request"),
];

static ADDRESS: &[Field] = &[
    Field::new("is_primary_address", "isPrimaryAddress", Kind::Bool)
        .doc("Whether this address is the primary address"),
    Field::new("is_shipping_address", "isShippingAddress", Kind::Bool)
        .doc("Whether this address is a shipping address"),
    Field::new("shipping_company_name", "shippingCompanyName", S)
        .doc("Company to ship to (shipping addresses only)"),
    Field::new("shipping_deliver_to", "shippingDeliverTo", S)
        .doc("Person to deliver to (shipping addresses only)"),
    Field::new("address_id", "addressId", ID).doc("NeonCRM's id of an existing address"),
    Field::new("address_type", "addressType", Kind::Object(ADDRESS_TYPE))
        .doc("By `id` or `name`, from the List Address Types request"),
    Field::new("address_line1", "addressLine1", S),
    Field::new("address_line2", "addressLine2", S),
    Field::new("address_line3", "addressLine3", S),
    Field::new("address_line4", "addressLine4", S),
    Field::same_on_wire("city", S),
    Field::same_on_wire("state", Kind::Object(STATE))
        .doc("By `code` or `name`; US states and Canadian provinces"),
    Field::same_on_wire("province", S)
        .doc("Only for countries other than the US and Canada; ignored when `state` is set"),
    Field::same_on_wire("county", S),
    Field::same_on_wire("country", Kind::Object(COUNTRY))
        .doc("By `id` or `name`, from the List Countries request"),
    Field::new("zip_code", "zipCode", S),
    Field::new("zip_code_suffix", "zipCodeSuffix", S),
    Field::new("start_date", "startDate", DATE).doc("First day of the address, YYYY-MM-DD"),
    Field::new("end_date", "endDate", DATE).doc("Last day of the address, YYYY-MM-DD"),
];

static PRIMARY_CONTACT: &[Field] = &[
    Field::new("first_name", "firstName", S),
    Field::new("last_name", "lastName", S),
    Field::new("middle_name", "middleName", S),
    Field::same_on_wire("prefix", S).doc("Like \"Mrs.\"; from the List Prefixes request"),
    Field::same_on_wire("suffix", S),
    Field::new("preferred_name", "preferredName", S),
    Field::same_on_wire("salutation", S),
    Field::same_on_wire("phone1", S),
    Field::new("phone1_type", "phone1Type", PHONE_TYPE).doc("Home, Work or Mobile"),
    Field::same_on_wire("phone2", S),
    Field::new("phone2_type", "phone2Type", PHONE_TYPE).doc("Home, Work or Mobile"),
    Field::same_on_wire("phone3", S),
    Field::new("phone3_type", "phone3Type", PHONE_TYPE).doc("Home, Work or Mobile"),
    Field::same_on_wire("fax", S),
    Field::same_on_wire("dob", DATE).doc("Date of birth, YYYY-MM-DD"),
    Field::same_on_wire("gender", Kind::Object(GENDER))
        .doc("By `code` or `name`, from the List Genders request"),
    Field::same_on_wire("deceased", Kind::Bool),
    Field::same_on_wire("title", S).doc("Job title"),
    Field::same_on_wire("department", S),
    Field::same_on_wire("email1", EMAIL).doc("Main e-mail address"),
    Field::same_on_wire("email2", EMAIL).doc("Second e-mail address"),
    Field::same_on_wire("email3", EMAIL).doc("Third e-mail address"),
    Field::new(
        "addresses",
        "addresses.address",
        Kind::Array(&Kind::Object(ADDRESS)),
    )
    .doc("The contact's addresses, as `[[org.NAME.primary_contact.addresses]]` tables"),
];

static LOGIN: &[Field] = &[
    Field::same_on_wire("username", Kind::String(Text::non_empty()))
        .doc("Login name of the account in NeonCRM; needs `password`"),
    Field::same_on_wire("password", Kind::Secret)
        .doc("Login password, by reference; needs `username`"),
    Field::new("org_id", "orgId", S).doc("NeonCRM organization id of the login"),
];

static CUSTOM_FIELD_DATA: &[Field] = &[
    Field::new("field_id", "fieldId", ID)
        .required()
        .doc("Account custom field id, from the List Custom Fields request"),
    Field::new("field_option_id", "fieldOptionId", ID)
        .doc("Option id, for select and radio custom fields"),
    // Not empty: `field_value` is what marks a text field (a select or radio field takes
    // `field_option_id`), and a text field sent with a blank value is NeonCRM's 10067.
    Field::new("field_value", "fieldValue", Kind::String(Text::non_empty()))
        .doc("Text, for text and textarea custom fields; not empty"),
];

static SOURCE: &[Field] = &[
    Field::same_on_wire("id", ID).doc("Source id, from the List Sources request"),
    Field::same_on_wire("name", S).doc("Source name, from the List Sources request"),
];

static ORGANIZATION_TYPE: &[Field] = &[
    Field::same_on_wire("id", ID)
        .doc("Organization type id, from the List Organization Types request"),
    Field::same_on_wire("name", S)
        .doc("Organization type name, like \"Church\"; from the List Organization Types request"),
];

static CONSENT_INFORMATION: &[Field] = &[
    Field::new("email_consent_status", "emailConsentStatus", CONSENT)
        .doc("GIVEN, DECLINED or NOT_ASKED (default)"),
    Field::new("phone_consent_status", "phoneConsentStatus", CONSENT)
        .doc("GIVEN, DECLINED or NOT_ASKED (default)"),
    Field::new("mail_consent_status", "mailConsentStatus", CONSENT)
        .doc("GIVEN, DECLINED or NOT_ASKED (default)"),
    Field::new("sms_consent_status", "smsConsentStatus", CONSENT)
        .doc("GIVEN, DECLINED or NOT_ASKED (default)"),
    Field::new(
        "data_sharing_consent_status",
        "dataSharingConsentStatus",
        CONSENT,
    )
    .doc("GIVEN, DECLINED or NOT_ASKED (default)"),
];

static ORG: &[Field] = &[
    Field::new(
        "organization_name",
        "organizationAccount.organizationName",
        Kind::String(Text::non_empty()),
    )
    .required()
    .doc("Name of the organization account; how orgform finds it again"),
    Field::new("origin_detail", "originDetail", S)
        .doc("Your App ID; required for integration partner applications"),
    Field::new(
        "primary_contact",
        "organizationAccount.primaryContact",
        Kind::Object(PRIMARY_CONTACT),
    )
    .doc("The organization's primary contact"),
    Field::new(
        "no_solicitation",
        "organizationAccount.noSolicitation",
        Kind::Bool,
    )
    .doc("The Do Not Contact flag"),
    Field::new("url", "organizationAccount.url", S).doc("The organization's web site"),
    Field::new("login", "organizationAccount.login", Kind::Object(LOGIN))
        .doc("A login for the account: `username` and `password` go together"),
    Field::new(
        "custom_field_data_list",
        "organizationAccount.customFieldDataList.customFieldData",
        Kind::Array(&Kind::Object(CUSTOM_FIELD_DATA)),
    )
    .doc("Account custom field values: `field_id` with `field_option_id` or `field_value`"),
    Field::new("source", "organizationAccount.source", Kind::Object(SOURCE))
        .doc("By `id` or `name`, from the List Sources request"),
    Field::new(
        "organization_types",
        "organizationAccount.organizationTypes.organizationType",
        Kind::Array(&Kind::Object(ORGANIZATION_TYPE)),
    )
    .doc("Each by `id` or `name`, from the List Organization Types request"),
    Field::new("send_acknowledge_email", "sendAcknowledgeEmail", Kind::Bool)
        .doc("Send the Account Creation system e-mail (default false)"),
    Field::new(
        "consent_information",
        "consentInformation",
        Kind::Object(CONSENT_INFORMATION),
    )
    .doc("Consent statuses; each NOT_ASKED unless set"),
];

static INSTANCE: &[Field] = &[
    Field::new("org_id", "login.orgid", Kind::Secret)
        .required()
        .doc("NeonCRM organization id, by reference; sent as login.orgid"),
    Field::new("api_key", "login.apiKey", Kind::Secret)
        .required()
        .doc("NeonCRM API key, by reference; sent as login.apiKey"),
];

static ORG_RULES: &[Rule] = &[
    Rule::Pair("login.username", "login.password"),
    Rule::Check(check_name),
    Rule::Check(check_contact),
    Rule::Check(check_custom_fields),
    Rule::Check(check_id_or_name),
    Rule::Check(check_organization_types),
];

/// The name is the natural key, compared exactly; NeonCRM keeps names without surrounding
/// blanks, so a name declared with them would never be found again, and would be created on
/// every run.
fn check_name(values: &Table) -> Problems {
    match values.text("organization_name") {
        Some(name) if name.trim() != name => vec![(
            "organization_name".into(),
            "starts or ends with blanks, which NeonCRM drops: orgform would never find the account again by this name; remove them".into(),
        )],
        _ => Vec::new(),
    }
}

/// Phone types without their phone, and the address rules of the seed: `province` is ignored
/// once a state is given, shipping fields belong to shipping addresses, one primary address,
/// and an address ends after it starts.
fn check_contact(values: &Table) -> Problems {
    let mut problems = Vec::new();
    let Some(contact) = values.table("primary_contact") else {
        return problems;
    };
    for n in 1..=3 {
        let kind = format!("phone{n}_type");
        if contact.contains_key(&kind) && !contact.contains_key(&format!("phone{n}")) {
            problems.push((
                format!("primary_contact.{kind}"),
                format!("is set without `phone{n}`: a phone type describes a phone number, so set `phone{n}` or remove it"),
            ));
        }
    }
    let addresses = contact.tables("addresses");
    let primaries = addresses
        .iter()
        .filter(|a| matches!(a.get("is_primary_address"), Some(Value::Bool(true))))
        .count();
    if primaries > 1 {
        problems.push((
            "primary_contact.addresses".into(),
            format!(
                "has {primaries} addresses with `is_primary_address = true`; a contact has one primary address"
            ),
        ));
    }
    for (i, address) in addresses.iter().enumerate() {
        let at = format!("primary_contact.addresses[{i}]");
        if address.contains_key("province") && address.contains_key("state") {
            problems.push((
                format!("{at}.province"),
                "is ignored by NeonCRM when `state` is set: use `state` for US states and Canadian provinces, `province` for other countries".into(),
            ));
        }
        let shipping = matches!(address.get("is_shipping_address"), Some(Value::Bool(true)));
        for key in ["shipping_company_name", "shipping_deliver_to"] {
            if address.contains_key(key) && !shipping {
                problems.push((
                    format!("{at}.{key}"),
                    "only applies to a shipping address: set `is_shipping_address = true` or remove it".into(),
                ));
            }
        }
        if let (Some(start), Some(end)) = (address.text("start_date"), address.text("end_date"))
            && end < start
        {
            problems.push((
                format!("{at}.end_date"),
                format!("({end}) is before `start_date` ({start})"),
            ));
        }
    }
    problems
}

/// The seed: a text custom field needs `fieldValue`, a select or radio field `fieldOptionId`
/// (NeonCRM's 10067 and 10068). orgform cannot tell the field's type without another call, so
/// it asks for exactly one of the two; the client sends the other one blank, as v1 requires.
fn check_custom_fields(values: &Table) -> Problems {
    let mut problems = Vec::new();
    for (i, data) in values.tables("custom_field_data_list").iter().enumerate() {
        let at = format!("custom_field_data_list[{i}]");
        match (
            data.contains_key("field_option_id"),
            data.contains_key("field_value"),
        ) {
            (false, false) => problems.push((
                at,
                "needs `field_option_id` (select and radio fields) or `field_value` (text fields)"
                    .into(),
            )),
            (true, true) => problems.push((
                at,
                "sets both `field_option_id` and `field_value`: a select or radio field takes an option id, a text field a value".into(),
            )),
            _ => {}
        }
    }
    problems
}

/// Lookup objects (gender, source, address type, state, country) are named by id or by name;
/// an empty one would be sent as nothing at all.
fn check_id_or_name(values: &Table) -> Problems {
    let mut problems = Vec::new();
    let mut need = |at: String, object: Option<&Table>, keys: [&str; 2]| {
        if let Some(object) = object
            && !keys.iter().any(|k| object.contains_key(k))
        {
            problems.push((at, format!("needs `{}` or `{}`", keys[0], keys[1])));
        }
    };
    need("source".into(), values.table("source"), ["id", "name"]);
    if let Some(contact) = values.table("primary_contact") {
        need(
            "primary_contact.gender".into(),
            contact.table("gender"),
            ["code", "name"],
        );
        for (i, address) in contact.tables("addresses").iter().enumerate() {
            let at = format!("primary_contact.addresses[{i}]");
            need(
                format!("{at}.address_type"),
                address.table("address_type"),
                ["id", "name"],
            );
            need(
                format!("{at}.state"),
                address.table("state"),
                ["code", "name"],
            );
            need(
                format!("{at}.country"),
                address.table("country"),
                ["id", "name"],
            );
        }
    }
    problems
}

/// Each organization type by id or name (10059), and none twice (10070).
fn check_organization_types(values: &Table) -> Problems {
    let mut problems = Vec::new();
    let types = values.tables("organization_types");
    for (i, kind) in types.iter().enumerate() {
        let at = format!("organization_types[{i}]");
        if !kind.contains_key("id") && !kind.contains_key("name") {
            problems.push((at, "needs `id` or `name`".into()));
            continue;
        }
        let same = |other: &&Table| {
            let by = |k: &str| kind.get(k).is_some_and(|v| other.get(k) == Some(v));
            by("id") || by("name")
        };
        if let Some(first) = types[..i].iter().position(same) {
            problems.push((
                at,
                format!(
                    "repeats `organization_types[{first}]`; NeonCRM refuses a duplicated organization type"
                ),
            ));
        }
    }
    problems
}

fn natural_key(org: &Table, _instance: &Table) -> NaturalKey {
    let name = org
        .get("organization_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ProviderType::Neoncrm.natural_key(&[name])
}

/// Results per `listAccounts` page: the documented maximum.
pub(crate) const PAGE_SIZE: u32 = 200;

pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    reads: Reads::ByKeys {
        page_size: PAGE_SIZE,
    },
    vendor_hosts: &["api.neoncrm.com"],
    ..Capabilities::PLAIN
};

pub(crate) static DESCRIPTOR: Descriptor = Descriptor {
    schema: ProviderSchema::new(
        "NeonCRM organization account (API v1 account/createOrganizationAccount)",
        BaseUrl::Default("https://api.neoncrm.com/neonws/services/api"),
        natural_key,
    )
    .key_fields(&["organization_name"])
    .instance(INSTANCE, &[])
    .org(ORG, ORG_RULES),
    capabilities: CAPABILITIES,
    sandbox_credentials: sandbox::CREDENTIALS,
};

/// What the sandbox's emulator accepts: fixed, public values for a machine with no account.
pub(crate) mod sandbox {
    /// The organization id the emulator's `common/login` accepts.
    pub const ORG_ID: &str = "sandbox-neon-org";
    /// The API key the emulator's `common/login` accepts.
    pub const API_KEY: &str = "sandbox-neon-api-key";
    /// By the instance key that carries each.
    pub(crate) const CREDENTIALS: &[(&str, &str)] = &[("org_id", ORG_ID), ("api_key", API_KEY)];
}
