//! Oracle Commerce Cloud (OCC): organization requests and organizations (seed 002,
//! docs/providers/oracle_commerce.md).
//!
//! Every field of the seed's organization request is declarable under the snake_case of its API
//! name, nested objects as nested tables (`organization.customerType` is
//! `organization.customer_type`) and `secondaryAddresses` as an array of tables.
//!
//! One declaration serves both of the instance's modes:
//! - `mode = "request"` (the default) sends the whole table to `POST /ccstore/v1/organizationRequests`
//!   and waits for an administrator's approval. The request's `name` is the natural key, and a
//!   request needs `profile` (its contact's e-mail, first and last name, as the seed requires).
//! - `mode = "direct"` sends only the `organization` table to `POST /ccadmin/v1/organizations`.
//!   `organization.name` is then the natural key; the request-only fields (`name`, `profile`,
//!   `requester_comments`, `related_organization_name`) have no place in it.
//!
//! Which of these a declaration needs, or may hold, depends on its instance's `mode`, so the
//! rule (`fields_fit_mode`) sees the instance's settings too: `validate` refuses what a mode
//! cannot send, before any request leaves.

use super::schema::{BaseUrl, Field, Format, Kind, ProviderSchema, Rule, Text};
use super::{Capabilities, Descriptor, Reads};
use crate::model::{NaturalKey, ProviderType, Table, Value};

const S: Kind = Kind::String(Text::ANY);
const NAME: Kind = Kind::String(Text::non_empty());
const PARTY_ID: Kind = Kind::Integer {
    min: Some(1),
    max: None,
};

/// `organization.customerType`, as the seed lists it.
pub(crate) const CUSTOMER_TYPES: &[&str] = &[
    "Standard",
    "Preferred",
    "Enterprise",
    "OEM",
    "Distributor",
    "Supplier",
];

/// `organization.type`, as the seed lists it.
pub(crate) const ORGANIZATION_TYPES: &[&str] =
    &["none", "company", "division", "department", "group"];

/// The instance's `mode` values; the first is the default.
pub(crate) const MODES: &[&str] = &["request", "direct"];

/// Fields that only mean something in an organization request.
pub(crate) const REQUEST_ONLY: &[&str] = &[
    "name",
    "profile",
    "requester_comments",
    "related_organization_name",
];

static ADDRESS: &[Field] = &[
    Field::same_on_wire("address1", S).doc("First line of the secondary address"),
    Field::same_on_wire("address2", S).doc("Second line of the secondary address"),
    Field::same_on_wire("city", S).doc("City of the secondary address"),
    Field::new("company_name", "companyName", S).doc("Company name of the secondary address"),
    Field::same_on_wire("country", S).doc("Country of the address, like \"US\""),
    Field::new("external_address_id", "externalAddressId", S).doc("External address id"),
    Field::new("phone_number", "phoneNumber", S).doc("Phone number of the address"),
    Field::new("postal_code", "postalCode", S).doc("Postal code of the address"),
    Field::same_on_wire("state", S).doc("State of the address, like \"AL\""),
    Field::same_on_wire("types", Kind::Array(&S)).doc("The types of the address"),
];

static SECONDARY_ADDRESS: &[Field] = &[
    Field::same_on_wire("address", Kind::Object(ADDRESS))
        .doc("Address created for the organization"),
    Field::new("address_type", "addressType", S)
        .doc("Nickname of the address, like \"Office Address\""),
];

static ORGANIZATION: &[Field] = &[
    Field::new("customer_type", "customerType", Kind::Enum(CUSTOMER_TYPES))
        .doc("Customer type: Standard, Preferred, Enterprise, OEM, Distributor or Supplier"),
    Field::same_on_wire("description", S).doc("Description of the organization"),
    Field::new(
        "duns_number",
        "dunsNumber",
        Kind::String(Text::format(Format::Digits(9))),
    )
    .doc("DUNS number of the organization: 9 digits"),
    Field::new("external_organization_id", "externalOrganizationId", S)
        .doc("External organization id"),
    Field::same_on_wire("name", NAME)
        .doc("Name of the organization; required with mode = \"direct\""),
    Field::new("party_id", "partyId", PARTY_ID).doc("Party id of the organization"),
    Field::new("party_number", "partyNumber", S)
        .doc("Party number, linking the organization to a CDM account"),
    Field::new(
        "secondary_addresses",
        "secondaryAddresses",
        Kind::Array(&Kind::Object(SECONDARY_ADDRESS)),
    )
    .doc("Addresses of the organization, as [[org.NAME.organization.secondary_addresses]]"),
    Field::new("tax_reference_number", "taxReferenceNumber", S)
        .doc("Tax reference number of the organization"),
    Field::same_on_wire("type", Kind::Enum(ORGANIZATION_TYPES))
        .doc("Type: none, company, division, department or group"),
    Field::new("unique_id", "uniqueId", S).doc("Unique id of the organization"),
    Field::new("vat_reference_number", "vatReferenceNumber", S)
        .doc("VAT reference number of the organization"),
];

static PROFILE: &[Field] = &[
    Field::new("customer_contact_id", "customerContactId", S)
        .doc("The external customer contact id"),
    Field::same_on_wire("email", Kind::String(Text::format(Format::Email)))
        .required()
        .doc("E-mail address of the contact"),
    Field::new("first_name", "firstName", NAME)
        .required()
        .doc("First name of the contact"),
    Field::new("last_name", "lastName", NAME)
        .required()
        .doc("Last name of the contact"),
    Field::new("party_id", "partyId", PARTY_ID).doc("Party id of the contact"),
    Field::new("party_number", "partyNumber", S).doc("Party number of the contact"),
    Field::new("receive_email", "receiveEmail", Kind::Enum(&["yes", "no"]))
        .doc("Whether the contact receives e-mail newsletters: \"yes\" or \"no\""),
];

static ORG: &[Field] = &[
    Field::same_on_wire("name", NAME)
        .doc("Name of the organization request (request mode): what orgform matches it by"),
    Field::same_on_wire("organization", Kind::Object(ORGANIZATION))
        .doc("The organization to create; all that is sent with mode = \"direct\""),
    Field::same_on_wire("profile", Kind::Object(PROFILE))
        .doc("The requester's contact, required in a request: email, first_name, last_name"),
    Field::new("related_organization_name", "relatedOrganizationName", S)
        .doc("Name of an existing organization the request relates to"),
    Field::new("requester_comments", "requesterComments", S)
        .doc("Requester comments given when the request is created"),
];

static ORG_RULES: &[Rule] = &[Rule::WithInstance(fields_fit_mode)];

/// What each mode sends decides what a declaration needs and may hold:
/// - request mode sends the seed's payload, whose `name` is required (seed 002) and whose
///   `profile` carries the requester's contact (e-mail, first and last name, required by the
///   seed's nested schema; a request without one has nobody to answer to);
/// - direct mode sends only `organization` to `POST /ccadmin/v1/organizations`, so it needs
///   `organization.name` (its natural key, docs/providers/oracle_commerce.md) and the
///   request-only fields would be silently dropped.
fn fields_fit_mode(org: &Table, instance: &Table) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if is_direct(instance) {
        if organization_name(org).is_none() {
            problems.push((
                "organization.name".into(),
                "is missing: with mode = \"direct\" the organization is created, and matched, by its name: set `organization.name`".into(),
            ));
        }
        for key in REQUEST_ONLY.iter().filter(|k| org.contains_key(k)) {
            problems.push((
                (*key).to_string(),
                "belongs to an organization request, but the provider instance has mode = \"direct\", which sends only `organization`: remove it, or use a provider instance with mode = \"request\"".into(),
            ));
        }
    } else {
        if !org.contains_key("name") {
            problems.push((
                "name".into(),
                "is missing: with mode = \"request\" (the default) an organization request needs its `name`, by which orgform also matches it; or use a provider instance with mode = \"direct\" to create `organization` on its own".into(),
            ));
        }
        if !org.contains_key("profile") {
            problems.push((
                "profile".into(),
                "is required in an organization request: add `profile = { email = \"...\", first_name = \"...\", last_name = \"...\" }`".into(),
            ));
        }
    }
    problems
}

static INSTANCE: &[Field] = &[
    Field::same_on_wire("app_key", Kind::Secret)
        .required()
        .doc("The application key (a JWT from Settings > Web APIs > Registered Applications), by reference"),
    Field::same_on_wire("mode", Kind::Enum(MODES)).doc(
        "\"request\" (default): organization requests, approved by an administrator; \"direct\": organizations created at once",
    ),
    Field::same_on_wire("store_url", Kind::String(Text::format(Format::Url)),
    )
    .doc("Root URL of the storefront, where requests are sent (/ccstore/v1); defaults to base_url"),
];

static INSTANCE_RULES: &[Rule] = &[];

/// Whether an instance's settings choose direct mode.
pub(crate) fn is_direct(instance: &Table) -> bool {
    instance.get("mode").and_then(Value::as_str) == Some("direct")
}

/// The request's `name` in request mode, the organization's name in direct mode; compared
/// exactly, since OCC lets two requests or organizations share a name.
fn natural_key(org: &Table, instance: &Table) -> NaturalKey {
    let name = if is_direct(instance) {
        organization_name(org)
    } else {
        org.get("name").and_then(Value::as_str)
    };
    ProviderType::OracleCommerce.natural_key(&[name.unwrap_or("")])
}

/// `organization.name`, without copying the table (specs may hold a hundred thousand).
fn organization_name(org: &Table) -> Option<&str> {
    org.get("organization")
        .and_then(Value::as_table)
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str)
}

/// Items per list page (`limit`): the most the sandbox serves (OCC documents no maximum).
pub(crate) const PAGE_LIMIT: u32 = 250;

pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    asynchronous: true,
    // A request waits for an administrator, for hours or days: apply looks once and leaves it
    // `pending` for a later plan or `refresh`.
    waits_for_creates: false,
    reads: Reads::ByKeys {
        page_size: PAGE_LIMIT,
    },
    vendor_hosts: &["*.oraclecloud.com"],
    ..Capabilities::PLAIN
};

pub(crate) static DESCRIPTOR: Descriptor = Descriptor {
    schema: ProviderSchema::new(
        "Oracle Commerce Cloud organization request (POST /ccstore/v1/organizationRequests) or organization (POST /ccadmin/v1/organizations)",
        // Every Commerce Cloud instance has its own administration host: there is no public default.
        BaseUrl::Required {
            why: "each Commerce Cloud instance has its own administration host, like \"https://p1234567c1dev-admin.occa.ocs.oraclecloud.com\"",
        },
        natural_key,
    )
    .key_fields(&["organization.name", "name"])
    .instance(INSTANCE, INSTANCE_RULES)
    .org(ORG, ORG_RULES),
    capabilities: CAPABILITIES,
    sandbox_credentials: sandbox::CREDENTIALS,
};

/// What the sandbox's emulator accepts: fixed, public values for a machine with no account.
pub(crate) mod sandbox {
    /// The application key the sandbox's login accepts (a real one is a JWT from Settings >
    /// Web APIs > Registered Applications).
    pub const APP_KEY: &str = "sandbox-occ-app-key";
    /// By the instance key that carries each.
    pub(crate) const CREDENTIALS: &[(&str, &str)] = &[("app_key", APP_KEY)];
}
