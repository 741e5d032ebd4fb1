//! NeonCRM API v1: organization accounts (docs/providers/neoncrm.md, seed 004).
//!
//! v1 is RPC over query strings: every call is a GET of `{base}/{service}/{method}` with
//! `responseType=json` and, once logged in, `userSessionId`. Three quirks shape this client:
//!
//! - **Failure is HTTP 200.** A refusal arrives as `operationResult = FAIL` with
//!   `errors.error[]`; [`ERRORS`] maps the documented codes to what they mean for the user.
//! - **One-element lists are objects.** v1's JSON is rendered from XML, so a list of one
//!   (`errors.error`, `nameValuePairs`, `addresses.address`) comes as a bare object;
//!   [`one_or_many`] reads both shapes everywhere a list is expected.
//! - **Sessions lapse.** `common/login` gives a `userSessionId` that expires after some idle
//!   minutes; a FAIL with code 3 or 4 means nothing was done, so the client logs in again and
//!   resends, up to three times in one call.
//!
//! Secrets (API key, org id, session id, an account's login password) only ever travel in the
//! query string of the request sent; no URL of this client is ever shown, and transport errors
//! are stripped of theirs. NeonCRM allows two accounts with one name, so no create is sent for
//! a name this run has not seen absent: apply's bulk read, made under the state lock, answers
//! for the creates the plan proposes, and apply looks a name up before it sends a create again
//! after an answer was lost ([`CreateContext::absent_in_read`]); anywhere else
//! [`Neon::create`] looks the name up itself (one `listAccounts` request) and answers
//! `AlreadyExists` when it is taken. What this can't see is an account someone makes by hand
//! between the read and the create.
//!
//! What is sourced and what is inferred ([S] a vendor document, [I] inferred, [U] unknown):
//!
//! - Create: parameter names, the custom field triplet sent whole with blanks, error codes
//!   10050 to 10071 [S: seed 004]. Any other field a spec leaves empty (`""`) is not sent at
//!   all [I: v1's update documents that a blank clears a field, so a blank is a value]. In a
//!   repeated group (addresses, organization types) an element is padded with blanks for the
//!   parameters another element of the same group sets, so that elements pair by position [I:
//!   the seed's triplet rule is the only pairing v1 documents; v1's own rule is U].
//! - Look-up: `listAccounts` with output columns and ANDed `searches.search` groups [S:
//!   NeonCRM's "List Accounts" and "Querying", docs/providers/neoncrm.md]. Column names in
//!   answers are matched ignoring case and surrounding blanks [S: the vendor's List Accounts
//!   example asks for `Account ID` and answers `Account Id`, as quoted in issue 13; seed 004
//!   does not cover listing].
//! - Organizations only: an individual account may carry an organization name (where the
//!   person works) [S: the keyword-search example, `userType` Individual | Organization]. The
//!   search adds `Account Type EQUAL Organization` and reads the `Account Type` column, and a
//!   row typed anything else is never taken for the organization [I: the column's and search
//!   key's name; a row without the column is trusted to the search].
//! - What a read reports (`RemoteOrg::attributes`, compared with what is declared): the search
//!   also asks for the output columns `First Name`, `Last Name` and `Email 1` [S: the List
//!   Accounts example asks for these, and answers the last as `Email`], read as the primary
//!   contact's [I: a company account has no name or e-mail of its own]; no more requests than
//!   before. `list_all` (discover) lists every organization account, then reads each once
//!   with `retrieveOrganizationAccount` [S: "Retrieve Organization Account"], whose object
//!   holds the rest. Both are read back through the schema's wire names (a retrieve's object
//!   by [`wire_view`], a row's columns by [`row_organization`]), one-element lists and numbers
//!   as strings included; a blank is a field left unset, as orgform never sends one. A search
//!   page is read straight from its text, row by row ([`read_page`]), with no JSON tree of it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use reqwest::{Method, Response, StatusCode};
use serde::de::{
    DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer};

use super::http::{Effect, Http, read_body, short};
use super::login::LoginCell;
use super::wire::{ReportedReader, WireKey, from_wire};
use super::{ConnectOptions, CreateContext, Provider, ProviderError};
use crate::catalog::schema::{Field, Kind};
use crate::model::{
    InstanceReality, NaturalKey, ProviderType, RemoteOrg, RemoteStatus, Reported, Table, Value,
};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::{OrgSpec, ProviderInstance};

/// How many times one call may log in again after NeonCRM says its session lapsed.
const MAX_RENEWALS: u32 = 3;

/// Results per `listAccounts` page, as the catalog gives it.
pub(crate) const PAGE_SIZE: usize = crate::catalog::neoncrm::PAGE_SIZE as usize;

/// How much of a query string one batch of names may take. Servers commonly refuse request
/// lines over 8 KiB; this leaves room for the session id and the other parameters.
const MAX_NAMES_BYTES: usize = 4_000;

/// The output columns and search keys orgform names. Requests use the vendor's spelling
/// (`Account ID`); answers are read without regard to case or surrounding blanks, because the
/// vendor's own List Accounts example asks for `Account ID` and answers `Account Id`. Which
/// name NeonCRM uses for an organization's name is not documented for sure
/// (docs/providers/neoncrm.md: "Organization Name" or "Company Name"), so answers are read under
/// either.
const ACCOUNT_ID: &str = "Account ID";
const ORGANIZATION_NAME: &str = "Organization Name";
const COMPANY_NAME: &str = "Company Name";
/// [I] The column and search key of an account's kind. v1 documents `userType` (Individual |
/// Organization) on its searches; this column's name is inferred. An individual may carry an
/// organization name (where they work), so a search on the name alone finds people too.
const ACCOUNT_TYPE: &str = "Account Type";
const ORGANIZATION: &str = "Organization";
/// [S: the List Accounts example] Output columns that hold declarable fields, with the
/// `organizationAccount` wire name of each, under `primaryContact` [I: an organization
/// account's name and e-mail columns are its primary contact's]. The example asks for `Email 1`
/// and answers `Email`, so answers are read under any of the names.
const CONTACT_COLUMNS: &[(&[&str], &str)] = &[
    (&["First Name"], "firstName"),
    (&["Last Name"], "lastName"),
    (&["Email 1", "Email"], "email1"),
];

/// Every error code the v1 documents name for the calls orgform makes: code, NeonCRM's text,
/// and what the user can do about it.
pub(crate) const ERRORS: &[(&str, &str, &str)] = &[
    (
        "1",
        "Unexpected System error occured.",
        "NeonCRM failed internally",
    ),
    ("2", "Service is not available.", "try again later"),
    (
        "3",
        "User session ID is required.",
        "orgform logs in again by itself",
    ),
    (
        "4",
        "User session id is invalid.",
        "the session lapsed; orgform logs in again by itself",
    ),
    (
        "5",
        "Permission denied.",
        "the API key's user lacks permission for this call",
    ),
    (
        "10050",
        "Organization name is required.",
        "set `organization_name`",
    ),
    (
        "10051",
        "Organization type is required.",
        "this NeonCRM organization requires `organization_types`",
    ),
    (
        "10052",
        "Available organization types cannot be found.",
        "no organization types are configured in NeonCRM",
    ),
    (
        "10053",
        "OrganizationType id is invalid.",
        "check `organization_types[].id` against the List Organization Types request",
    ),
    (
        "10054",
        "Company contact id is invalid.",
        "the primary contact refers to a contact NeonCRM does not know",
    ),
    (
        "10055",
        "Address type is invalid.",
        "check `primary_contact.addresses[].address_type` against the List Address Types request",
    ),
    (
        "10056",
        "Address state is invalid.",
        "check `primary_contact.addresses[].state` against the List States request",
    ),
    (
        "10057",
        "Address country is invalid.",
        "check `primary_contact.addresses[].country` against the List Countries request",
    ),
    (
        "10058",
        "Organization type name is invalid.",
        "check `organization_types[].name` against the List Organization Types request",
    ),
    (
        "10059",
        "Organization type is invalid",
        "each of `organization_types` needs an `id` or a `name`",
    ),
    (
        "10060",
        "Login username is required.",
        "`login.password` needs `login.username`",
    ),
    (
        "10061",
        "Login username is already exist.",
        "choose another `login.username`",
    ),
    (
        "10062",
        "Login password is required.",
        "`login.username` needs `login.password`",
    ),
    (
        "10063",
        "Source is invalid.",
        "check `source` against the List Sources request",
    ),
    (
        "10064",
        "CustomField id is required.",
        "each of `custom_field_data_list` needs `field_id`",
    ),
    (
        "10065",
        "CustomField id is invalid.",
        "check `custom_field_data_list[].field_id` against the List Custom Fields request",
    ),
    (
        "10067",
        "CustomField option value is required.",
        "a text custom field needs `field_value`",
    ),
    (
        "10068",
        "CustomField optionId is required.",
        "a select or radio custom field needs `field_option_id`",
    ),
    (
        "10070",
        "Organizaiton type is duplicated.",
        "list each of `organization_types` once",
    ),
    (
        "10071",
        "CustomField optionId is invalid.",
        "check `custom_field_data_list[].field_option_id` against the List Custom Fields request",
    ),
];

/// Reads a list that v1 may render as an array, as a bare object (one element), or as nothing
/// at all (`null`, `""`, `{}`: XML's empty element).
pub(crate) fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    let items = match value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::String(s) if s.trim().is_empty() => Vec::new(),
        serde_json::Value::Object(ref map) if map.is_empty() => Vec::new(),
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(serde::de::Error::custom))
        .collect()
}

/// Reads an object that v1 may leave out or render empty (`""`, `null`) as its default.
fn object_or_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Object(map) => {
            serde_json::from_value(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
        }
        _ => Ok(T::default()),
    }
}

/// A scalar that v1 sends as a number or as a string (`accountId`, `errorCode`, `value`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        Ok(Text(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }))
    }
}

/// The fields every v1 answer carries.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Common {
    operation_result: Option<String>,
    response_message: Option<String>,
    #[serde(deserialize_with = "object_or_empty")]
    errors: Errors,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Errors {
    #[serde(deserialize_with = "one_or_many")]
    error: Vec<ApiError>,
}

/// One entry of `errors.error`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiError {
    pub(crate) error_code: Text,
    pub(crate) error_message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginAnswer {
    user_session_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAnswer {
    account_id: Option<Text>,
}

/// What `listAccounts` answers: a page of rows, each a list of name/value pairs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListAnswer {
    #[serde(deserialize_with = "object_or_empty")]
    pub(crate) page: Page,
    #[serde(deserialize_with = "object_or_empty")]
    pub(crate) search_results: SearchResults,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[expect(
    clippy::struct_field_names,
    reason = "the fields mirror the API's currentPage and totalPage"
)]
pub(crate) struct Page {
    pub(crate) current_page: Option<Text>,
    pub(crate) total_page: Option<Text>,
    pub(crate) total_results: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SearchResults {
    #[serde(deserialize_with = "one_or_many")]
    pub(crate) name_value_pairs: Vec<Row>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Row {
    #[serde(deserialize_with = "one_or_many")]
    pub(crate) name_value_pair: Vec<Pair>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Pair {
    pub(crate) name: String,
    pub(crate) value: Text,
}

impl ListAnswer {
    /// Parses the inside of `listAccountsResponse`.
    pub fn parse(inner: &serde_json::Value) -> Result<ListAnswer, String> {
        ListAnswer::deserialize(inner).map_err(|e| e.to_string())
    }

    /// The organizations on this page, as (account id, organization name). Column names are
    /// matched ignoring case and surrounding blanks. A row whose account type says anything
    /// but Organization (an individual) is never one: the search asks for organizations only,
    /// and this holds even if the server ignored that.
    pub fn accounts(&self) -> Vec<(String, String)> {
        self.organizations()
            .into_iter()
            .map(|org| (org.remote_id, org.natural_key.0))
            .collect()
    }

    /// The organizations on this page as orgform's model holds them, with what their row
    /// reports about declarable fields (the contact columns).
    pub(crate) fn organizations(&self) -> Vec<RemoteOrg> {
        self.search_results
            .name_value_pairs
            .iter()
            .filter_map(|row| {
                let pairs: Vec<(&str, &str)> = row
                    .name_value_pair
                    .iter()
                    .map(|p| (p.name.as_str(), p.value.0.as_str()))
                    .collect();
                // Strings in memory always read.
                row_organization::<serde::de::value::Error>(&pairs).unwrap_or(None)
            })
            .collect()
    }

    /// How many pages the search has; a missing or unreadable count means this one.
    pub fn total_pages(&self) -> u32 {
        self.page.total_pages()
    }
}

impl Page {
    /// How many pages the search has; a missing or unreadable count means this one.
    fn total_pages(&self) -> u32 {
        self.total_page
            .as_ref()
            .and_then(|t| t.0.trim().parse().ok())
            .unwrap_or(1)
    }
}

/// The organization of one row of a search, from its `(name, value)` pairs, with what the row
/// reports about declarable fields, under spec names; `None` for a row that is not one. Column
/// names are matched ignoring case and surrounding blanks, and the first pair of a name counts.
/// A row whose account type says anything but Organization (an individual) is never one: the
/// search asks for organizations only, and this holds even if the server ignored that. A blank
/// value is a field left unset, as orgform never sends one (as [`wire_view`] reads a retrieve).
fn row_organization<E: serde::de::Error>(pairs: &[(&str, &str)]) -> Result<Option<RemoteOrg>, E> {
    use serde::de::IntoDeserializer as _;
    use serde::de::value::{MapDeserializer, StrDeserializer};
    let get = |names: &[&str]| {
        pairs
            .iter()
            .find(|(have, _)| {
                let have = have.trim();
                names.iter().any(|n| n.eq_ignore_ascii_case(have))
            })
            .map(|(_, value)| *value)
    };
    if let Some(kind) = get(&[ACCOUNT_TYPE])
        && !kind.trim().eq_ignore_ascii_case(ORGANIZATION)
    {
        return Ok(None);
    }
    let Some(id) = get(&[ACCOUNT_ID]).filter(|id| !id.trim().is_empty()) else {
        return Ok(None);
    };
    let Some(name) = get(&[ORGANIZATION_NAME, COMPANY_NAME]) else {
        return Ok(None);
    };
    let mut reported = ReportedReader::new(ProviderType::Neoncrm.schema().org);
    if !name.trim().is_empty() {
        reported.put::<StrDeserializer<'_, E>>(
            "organizationAccount.organizationName",
            name.into_deserializer(),
        )?;
    }
    let contact: Vec<(&str, &str)> = CONTACT_COLUMNS
        .iter()
        .filter_map(|(names, wire)| Some((*wire, get(names)?)))
        .filter(|(_, value)| !value.trim().is_empty())
        .collect();
    if !contact.is_empty() {
        reported.put(
            "organizationAccount.primaryContact",
            MapDeserializer::<_, E>::new(contact.into_iter()),
        )?;
    }
    Ok(Some(RemoteOrg {
        remote_id: id.trim().to_string(),
        natural_key: ProviderType::Neoncrm.natural_key(&[name]),
        status: RemoteStatus::Ready,
        detail: crate::model::Detail::default(),
        attributes: reported.finish(),
    }))
}

/// Request parameters in order. Values may hold secrets (the session id, a login password), so
/// `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// The query parameters of `createOrganizationAccount` for declared attributes, in schema
/// order, with secrets resolved. Nested tables join their wire names with dots; arrays of
/// tables (v1's repeated groups) repeat their parameters element by element, every element
/// sending the same parameters (blank where it has no value) so that NeonCRM pairs them by
/// position. Custom fields always send the whole `fieldId`/`fieldOptionId`/`fieldValue`
/// triplet, as the seed requires.
pub fn encode_create(
    fields: &[Field],
    attrs: &Table,
    secrets: &SecretResolver,
) -> Result<Params, ProviderError> {
    let mut out = Params::default();
    push_fields(&mut out, "", fields, attrs, secrets)?;
    Ok(out)
}

fn join(prefix: &str, wire: &str) -> String {
    if prefix.is_empty() {
        wire.to_string()
    } else {
        format!("{prefix}.{wire}")
    }
}

fn push_fields(
    out: &mut Params,
    prefix: &str,
    fields: &[Field],
    attrs: &Table,
    secrets: &SecretResolver,
) -> Result<(), ProviderError> {
    for field in fields {
        let Some(value) = attrs.get(field.name) else {
            continue;
        };
        let name = join(prefix, field.wire);
        match (&field.kind, value) {
            (Kind::Object(inner), Value::Table(table)) => {
                push_fields(out, &name, inner, table, secrets)?;
            }
            (Kind::Array(Kind::Object(inner)), Value::Array(items)) => {
                let whole = field.name == "custom_field_data_list";
                push_group(out, &name, inner, items, whole, secrets)?;
            }
            (_, scalar) => {
                // A blank value is a field left unset (TOML has no null): NeonCRM would read
                // the blank parameter as a value, so it is not sent. Inside a repeated group
                // `push_group` still pads it where another element sets it, for pairing.
                let text = scalar_text(scalar, secrets)?;
                if !text.trim().is_empty() {
                    out.push(name, text);
                }
            }
        }
    }
    Ok(())
}

/// One repeated group: the parameters any element sets, sent for every element.
fn push_group(
    out: &mut Params,
    group: &str,
    fields: &[Field],
    items: &[Value],
    whole: bool,
    secrets: &SecretResolver,
) -> Result<(), ProviderError> {
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        let mut params = Params::default();
        if let Value::Table(table) = item {
            push_fields(&mut params, "", fields, table, secrets)?;
        }
        flat.push(params);
    }
    let mut leaves = Vec::new();
    leaf_names(fields, "", &mut leaves);
    let used: Vec<&String> = leaves
        .iter()
        .filter(|leaf| whole || flat.iter().any(|p| p.get(leaf).is_some()))
        .collect();
    for params in &flat {
        for leaf in &used {
            out.push(join(group, leaf), params.get(leaf).unwrap_or(""));
        }
    }
    Ok(())
}

/// Every scalar parameter name under `fields`, in schema order.
fn leaf_names(fields: &[Field], prefix: &str, out: &mut Vec<String>) {
    for field in fields {
        let name = join(prefix, field.wire);
        match &field.kind {
            Kind::Object(inner) => leaf_names(inner, &name, out),
            _ => out.push(name),
        }
    }
}

fn scalar_text(value: &Value, secrets: &SecretResolver) -> Result<String, ProviderError> {
    Ok(match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => x.to_string(),
        Value::String(s) => s.clone(),
        Value::Secret(r) => secrets.resolve(r)?.expose().to_string(),
        Value::Array(_) | Value::Table(_) => {
            return Err(ProviderError::Config {
                message: "a nested value has no NeonCRM parameter".into(),
            });
        }
    })
}

/// The `listAccounts` parameters of one page of a search for `names` (without the session).
/// One name is an `EQUAL` search; several are one `IN_RANGE` search, `("a","b")`.
pub fn list_params(names: &[&str], page: u32) -> Params {
    match names {
        [one] => search_params("EQUAL", one, page),
        many => {
            let list = many
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(",");
            search_params("IN_RANGE", &format!("({list})"), page)
        }
    }
}

/// The parameters of a search for every organization account (a name that is not blank).
pub(crate) fn list_all_params(page: u32) -> Params {
    search_params("NOT_BLANK", "", page)
}

/// One page of a search on the organization name among organization accounts (search groups
/// are ANDed), with the columns orgform reads: what it matches on, and the contact's.
fn search_params(operator: &str, value: &str, page: u32) -> Params {
    let mut p = Params::default();
    let contact = CONTACT_COLUMNS.iter().map(|(names, _)| names[0]);
    for column in [ACCOUNT_ID, ORGANIZATION_NAME, ACCOUNT_TYPE]
        .into_iter()
        .chain(contact)
    {
        p.push("outputfields.idnamepair.id", "");
        p.push("outputfields.idnamepair.name", column);
    }
    p.push("searches.search.key", ORGANIZATION_NAME);
    p.push("searches.search.searchOperator", operator);
    p.push("searches.search.value", value);
    p.push("searches.search.key", ACCOUNT_TYPE);
    p.push("searches.search.searchOperator", "EQUAL");
    p.push("searches.search.value", ORGANIZATION);
    p.push("page.currentPage", page.to_string());
    p.push("page.pageSize", PAGE_SIZE.to_string());
    p.push("page.sortColumn", ACCOUNT_ID);
    p.push("page.sortDirection", "ASC");
    p
}

/// Splits names into searches: as many per `IN_RANGE` as fit in a request line, at most a
/// page's worth; a name with a double quote can't be quoted in `IN_RANGE`, so it is searched
/// alone with `EQUAL`.
pub fn batches<'a>(names: &[&'a str]) -> Vec<Vec<&'a str>> {
    batches_at_most(names, usize::MAX).unwrap_or_default()
}

/// [`batches`], or `None` once they would be more than `most`: a read of a hundred thousand
/// names otherwise encoded each of them only to learn that listing everything takes fewer
/// requests.
fn batches_at_most<'a>(names: &[&'a str], most: usize) -> Option<Vec<Vec<&'a str>>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for name in names {
        if name.contains('"') {
            if out.len() == most {
                return None;
            }
            out.push(vec![name]);
            continue;
        }
        // As it will travel: quoted, comma-separated, percent-encoded.
        let cost = url::form_urlencoded::byte_serialize(format!("\"{name}\",").as_bytes())
            .map(str::len)
            .sum::<usize>();
        if !current.is_empty() && (bytes + cost > MAX_NAMES_BYTES || current.len() >= PAGE_SIZE) {
            if out.len() == most {
                return None;
            }
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += cost;
        current.push(name);
    }
    if !current.is_empty() {
        if out.len() == most {
            return None;
        }
        out.push(current);
    }
    Some(out)
}

/// What a FAIL means, in words: each error's code and text, and what to do when known.
pub fn describe_errors(errors: &[ApiError]) -> String {
    if errors.is_empty() {
        return "NeonCRM answered FAIL without saying why".into();
    }
    errors
        .iter()
        .map(|e| {
            let code = e.error_code.0.trim();
            let known = ERRORS.iter().find(|(c, _, _)| *c == code);
            let text = e
                .error_message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .or(known.map(|(_, t, _)| *t))
                .unwrap_or("no message");
            let text = short(text);
            match known {
                Some((_, _, hint)) => format!("{code} {text} ({hint})"),
                None => format!("{code} {text}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How one v1 call ended, before session renewal is decided: what a success holds (the inside
/// of its wrapper, unless a call reads it otherwise), or a FAIL's errors.
enum Answer<T = serde_json::Value> {
    Success(T),
    Fail(Vec<ApiError>),
}

pub struct Neon {
    http: Http,
    org_id: SecretString,
    api_key: SecretString,
    secrets: SecretResolver,
    /// The current `userSessionId`; a secret. Held across the login so that concurrent callers
    /// that find it lapsed log in once between them.
    session: LoginCell<SecretString>,
}

impl Neon {
    pub(crate) fn connect(
        instance: &ProviderInstance,
        options: &ConnectOptions,
    ) -> Result<Neon, ProviderError> {
        Ok(Neon {
            http: options.http(instance)?,
            org_id: options.secret(instance, "org_id")?,
            api_key: options.secret(instance, "api_key")?,
            secrets: options.secrets.clone(),
            session: LoginCell::default(),
        })
    }

    /// The session id, logging in first if there is none.
    async fn session(&self) -> Result<Arc<SecretString>, ProviderError> {
        self.session.get(|| self.log_in()).await
    }

    /// `common/login`: the API key and org id in, a `userSessionId` out.
    async fn log_in(&self) -> Result<SecretString, ProviderError> {
        let response = self
            .http
            .send_retrying(|| {
                self.http.request(Method::GET, "/common/login").query(&[
                    ("login.apiKey", self.api_key.expose()),
                    ("login.orgid", self.org_id.expose()),
                    ("responseType", "json"),
                ])
            })
            .await?;
        let login_failed = |message: String| ProviderError::Login { message };
        match read_answer(response, "loginResponse", Effect::Safe).await {
            Ok(Answer::Success(inner)) => {
                let answer = LoginAnswer::deserialize(&inner)
                    .map_err(|e| login_failed(format!("the login answer is unreadable: {e}")))?;
                answer
                    .user_session_id
                    .filter(|id| !id.trim().is_empty())
                    .map(SecretString::new)
                    .ok_or_else(|| login_failed("the login answer has no userSessionId".into()))
            }
            Ok(Answer::Fail(errors)) => Err(ProviderError::Unauthorized {
                message: format!(
                    "NeonCRM refused the login with this org_id and api_key: {}",
                    describe_errors(&errors)
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// One v1 call with the session, renewed once if NeonCRM says it lapsed.
    async fn call(
        &self,
        path: &str,
        wrapper: &str,
        params: &Params,
        call: Effect,
    ) -> Result<serde_json::Value, ProviderError> {
        self.call_reading(path, params, call, |body| interpret(body, wrapper, call))
            .await
    }

    /// [`Neon::call`], with its answer's body read by `read`: the inside of the wrapper as JSON
    /// ([`interpret`]), or what a call reads from the text itself.
    async fn call_reading<T>(
        &self,
        path: &str,
        params: &Params,
        call: Effect,
        read: impl Fn(&str) -> Result<Answer<T>, ProviderError>,
    ) -> Result<T, ProviderError> {
        let mut session = self.session().await?;
        let mut renewals = 0;
        loop {
            let request = || {
                self.http
                    .request(Method::GET, path)
                    .query(&[
                        ("responseType", "json"),
                        ("userSessionId", session.expose()),
                    ])
                    .query(&params.0)
            };
            let response = self.http.send_as(call, request).await?;
            let body = answer_body(response, call).await?;
            match read(&body)? {
                Answer::Success(inner) => return Ok(inner),
                Answer::Fail(errors) if session_lapsed(&errors) => {
                    // Nothing was done: the request was refused before its work. Concurrent
                    // calls share the session, so the one another caller renewed may lapse in
                    // turn; a few renewals, never an endless loop.
                    if renewals == MAX_RENEWALS {
                        return Err(ProviderError::Unauthorized {
                            message: format!(
                                "NeonCRM refused {} sessions in a row, fresh ones included: {}",
                                MAX_RENEWALS + 1,
                                describe_errors(&errors)
                            ),
                        });
                    }
                    tracing::debug!("NeonCRM session lapsed: logging in again");
                    (session, _) = self.session.renew(&session, || self.log_in()).await?;
                    renewals += 1;
                }
                Answer::Fail(errors) => return Err(fail_error(&errors, call)),
            }
        }
    }

    /// Every account whose organization name matches one of `names`, in as few requests as the
    /// API allows: batches of names, each followed through all of its pages.
    async fn search(&self, names: &[&str]) -> Result<InstanceReality, ProviderError> {
        let mut reality = InstanceReality::default();
        for batch in batches(names) {
            self.search_pages(|page| list_params(&batch, page), &mut reality)
                .await?;
        }
        Ok(reality)
    }

    /// `retrieveOrganizationAccount` of an account a search listed: what it reports replaces
    /// what the search's columns did (the same fields, and more). The listed name stays the
    /// natural key: it is what the search matched on.
    async fn retrieve(&self, listed: RemoteOrg) -> Result<RemoteOrg, ProviderError> {
        let mut params = Params::default();
        params.push("accountId", listed.remote_id.clone());
        let inner = self
            .call(
                "/account/retrieveOrganizationAccount",
                "retrieveOrganizationAccountResponse",
                &params,
                Effect::Safe,
            )
            .await?;
        if !inner
            .get("organizationAccount")
            .is_some_and(serde_json::Value::is_object)
        {
            return Err(ProviderError::Protocol {
                message: format!(
                    "the retrieveOrganizationAccount answer for account {} has no organizationAccount",
                    listed.remote_id
                ),
            });
        }
        let retrieved = to_remote(listed.remote_id.clone(), &listed.natural_key.0, &inner);
        let attributes = listed.attributes.extended(&retrieved.attributes);
        Ok(RemoteOrg {
            attributes,
            ..listed
        })
    }

    /// Every organization account: a search for a name that is not blank.
    async fn search_all(&self) -> Result<InstanceReality, ProviderError> {
        let mut reality = InstanceReality::default();
        self.search_pages(list_all_params, &mut reality).await?;
        Ok(reality)
    }

    /// One search into `reality`: the first page, then every other page it announces at once
    /// (within the instance's `max_concurrency`), until no answer announces more.
    async fn search_pages(
        &self,
        params: impl Fn(u32) -> Params,
        reality: &mut InstanceReality,
    ) -> Result<(), ProviderError> {
        let page = |number: u32| {
            let params = params(number);
            async move {
                self.call_reading("/account/listAccounts", &params, Effect::Safe, read_page)
                    .await
            }
        };
        let mut pages = vec![page(1).await?];
        let mut fetched = 1;
        // The most pages any answer has announced, and how often that grew after the first.
        let mut announced = 0;
        let mut grew = 0;
        loop {
            let mut total = fetched;
            for page in pages.drain(..) {
                total = total.max(page.total_pages);
                for org in page.organizations {
                    reality.insert(org);
                }
            }
            if fetched >= total {
                return Ok(());
            }
            if announced > 0 && total > announced {
                grew += 1;
            }
            announced = announced.max(total);
            // Accounts added while a search is read may add a page now and then; a count that
            // keeps growing as it is followed never ends.
            if grew > MAX_GROWTH {
                return Err(ProviderError::Protocol {
                    message: format!(
                        "the listAccounts answers' page count grew {grew} times as it was followed (now {total}); orgform stops rather than follow it without end"
                    ),
                });
            }
            // A count the answer states is not trusted to size anything: one that grows with
            // every page, or says a billion, ends here rather than in a loop or in memory.
            if total > MAX_PAGES {
                return Err(ProviderError::Protocol {
                    message: format!(
                        "the listAccounts answer announces {total} pages, more than the {MAX_PAGES} orgform follows"
                    ),
                });
            }
            // A bounded number in flight at once (the instance's own limit holds the requests).
            let next = (fetched + 1..=total.min(fetched + PAGES_AT_ONCE)).map(page);
            pages = futures_util::future::try_join_all(next).await?;
            fetched = total.min(fetched + PAGES_AT_ONCE);
        }
    }
}

/// Pages followed for one search before giving up: 20 million accounts at 200 a page, far past
/// any account, and a guard against an answer whose page count grows as it is followed.
const MAX_PAGES: u32 = 100_000;

/// How often a search's page count may grow as it is followed before the search is refused.
const MAX_GROWTH: u32 = 16;

/// Pages of a search requested together, then read before the next ones are asked for.
const PAGES_AT_ONCE: u32 = 64;

/// One page of a search as the client keeps it: how many pages the search has, and the
/// organizations on this one.
struct ListedPage {
    total_pages: u32,
    organizations: Vec<RemoteOrg>,
}

/// Reads a `listAccounts` answer. The documented success is read straight from the text
/// ([`streamed_page`]); anything else (a FAIL, the answer under another wrapper, a shape only
/// the tolerant reader judges) as every other answer is, through [`interpret`] and
/// [`ListAnswer`], which say the same of a success.
fn read_page(body: &str) -> Result<Answer<ListedPage>, ProviderError> {
    if let Some(page) = streamed_page(body) {
        return Ok(Answer::Success(page));
    }
    match interpret(body, "listAccountsResponse", Effect::Safe)? {
        Answer::Success(inner) => {
            let answer = ListAnswer::parse(&inner).map_err(|e| ProviderError::Protocol {
                message: format!("the listAccounts answer is not what NeonCRM documents: {e}"),
            })?;
            Ok(Answer::Success(ListedPage {
                total_pages: answer.total_pages(),
                organizations: answer.organizations(),
            }))
        }
        Answer::Fail(errors) => Ok(Answer::Fail(errors)),
    }
}

/// A `listAccounts` success read from its text as it is parsed, each row into the model as soon
/// as it is read: no JSON tree of the page is built (that was most of the cost of reading a
/// hundred thousand organizations). `None` for anything but `{"listAccountsResponse":
/// {"operationResult": "SUCCESS", ...}}` whose every part is of a documented shape, so that
/// what this reads is exactly what [`ListAnswer`] reads, and the rest is left to it.
fn streamed_page(body: &str) -> Option<ListedPage> {
    serde_json::from_str::<StreamedPage>(body)
        .ok()
        .map(|StreamedPage(page)| page)
}

/// The whole answer: `{"listAccountsResponse": {...}}`, other keys skipped.
struct StreamedPage(ListedPage);

impl<'de> Deserialize<'de> for StreamedPage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StreamedPage, D::Error> {
        const KEY: &str = "listAccountsResponse";
        deserializer
            .deserialize_map(KeyIn {
                key: KEY,
                seed: Inner,
            })?
            .map(StreamedPage)
            .ok_or_else(|| D::Error::missing_field(KEY))
    }
}

/// The value under one key of an object, read by `seed`; other keys skipped, the key twice
/// refused (the tolerant reader then takes the answer); `None` when the object lacks it.
struct KeyIn<S> {
    key: &'static str,
    seed: S,
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for KeyIn<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with `{}`", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seed = Some(self.seed);
        let mut found = None;
        while let Some(WireKey(key)) = map.next_key()? {
            if key != self.key {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let Some(seed) = seed.take() else {
                return Err(A::Error::custom(format_args!("{} twice", self.key)));
            };
            found = Some(map.next_value_seed(seed)?);
        }
        Ok(found)
    }
}

/// The inside of the wrapper: the fields every answer carries (read as [`Common`] reads them,
/// and only a SUCCESS taken), `page`, and `searchResults` read row by row.
struct Inner;

impl<'de> DeserializeSeed<'de> for Inner {
    type Value = ListedPage;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ListedPage, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Inner {
    type Value = ListedPage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the inside of a listAccounts answer")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListedPage, A::Error> {
        let mut common = serde_json::Map::new();
        let mut page = None;
        let mut organizations = None;
        while let Some(WireKey(key)) = map.next_key()? {
            match &*key {
                "searchResults" => {
                    if organizations.is_some() {
                        return Err(A::Error::custom("searchResults twice"));
                    }
                    organizations = Some(map.next_value_seed(Results)?);
                }
                "page" => page = Some(map.next_value::<serde_json::Value>()?),
                "operationResult" | "responseMessage" | "errors" => {
                    common.insert(key.into_owned(), map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let common =
            Common::deserialize(serde_json::Value::Object(common)).map_err(A::Error::custom)?;
        if common.operation_result.as_deref().map(str::trim) != Some("SUCCESS") {
            return Err(A::Error::custom("not a SUCCESS"));
        }
        let page = match page {
            Some(page @ serde_json::Value::Object(_)) => {
                Page::deserialize(page).map_err(A::Error::custom)?
            }
            _ => Page::default(),
        };
        Ok(ListedPage {
            total_pages: page.total_pages(),
            organizations: organizations.unwrap_or_default(),
        })
    }
}

/// `searchResults`: an object whose `nameValuePairs` holds the rows; anything else holds none
/// (v1's empty element, as [`object_or_empty`] reads it).
struct Results;

impl<'de> DeserializeSeed<'de> for Results {
    type Value = Vec<RemoteOrg>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Results {
    type Value = Vec<RemoteOrg>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("searchResults")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let rows = KeyIn {
            key: "nameValuePairs",
            seed: Rows,
        };
        Ok(rows.visit_map(map)?.unwrap_or_default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

/// `nameValuePairs`: the rows, an array of row objects or one row as the object itself; none
/// when `null` or blank. Any other shape is left to the tolerant reader.
struct Rows;

impl<'de> DeserializeSeed<'de> for Rows {
    type Value = Vec<RemoteOrg>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Rows {
    type Value = Vec<RemoteOrg>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rows")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(RowSeed.visit_map(map)?.into_iter().collect())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut organizations = Vec::with_capacity(seq.size_hint().unwrap_or(PAGE_SIZE));
        while let Some(row) = seq.next_element_seed(RowSeed)? {
            organizations.extend(row);
        }
        Ok(organizations)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if text.trim().is_empty() {
            Ok(Vec::new())
        } else {
            Err(E::custom("a row as text"))
        }
    }
}

/// One row object: its `nameValuePair` (others skipped), as the organization it names.
struct RowSeed;

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = Option<RemoteOrg>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = Option<RemoteOrg>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let pairs = KeyIn {
            key: "nameValuePair",
            seed: Pairs,
        };
        let pairs = pairs.visit_map(map)?.unwrap_or_default();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&**n, &**v)).collect();
        row_organization(&pairs)
    }
}

/// `nameValuePair`: a row's `(name, value)` pairs, an array of pair objects or one pair as the
/// object itself (none when empty, `null` or blank), borrowed from the text where they can be.
struct Pairs;

/// A pair's name and value, as [`Pair`] reads them.
type PairText<'de> = (Cow<'de, str>, Cow<'de, str>);

impl<'de> DeserializeSeed<'de> for Pairs {
    type Value = Vec<PairText<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pairs {
    type Value = Vec<PairText<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("name/value pairs")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(PairSeed.visit_map(map)?.into_iter().collect())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(pair) = seq.next_element_seed(PairSeed)? {
            // An empty object in an array is a pair of blanks, as `Pair`'s defaults make it.
            pairs.push(pair.unwrap_or((Cow::Borrowed(""), Cow::Borrowed(""))));
        }
        Ok(pairs)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if text.trim().is_empty() {
            Ok(Vec::new())
        } else {
            Err(E::custom("a pair as text"))
        }
    }
}

/// One pair object, `{"name", "value"}` (others skipped; the last of a repeated key, as a JSON
/// map keeps it); `None` when it has no key at all (v1's empty element).
struct PairSeed;

impl<'de> DeserializeSeed<'de> for PairSeed {
    type Value = Option<PairText<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PairSeed {
    type Value = Option<PairText<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name/value pair")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut name, mut value) = (Cow::Borrowed(""), Cow::Borrowed(""));
        let mut any = false;
        while let Some(WireKey(key)) = map.next_key()? {
            any = true;
            match &*key {
                "name" => name = map.next_value::<WireKey<'de>>()?.0,
                "value" => value = map.next_value::<Scalar<'de>>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(any.then_some((name, value)))
    }
}

/// A pair's value as [`Text`] reads a scalar (a string as it is, `null` blank, a number or a
/// boolean as its JSON text), borrowed from the text where it can be; an array or an object is
/// left to the tolerant reader.
struct Scalar<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar<'de>, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Scalar<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Borrowed(s)))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(s.to_string())))
            }

            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(s)))
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Borrowed("")))
            }

            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Borrowed(if b { "true" } else { "false" })))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(n.to_string())))
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(n.to_string())))
            }

            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Scalar<'de>, E> {
                serde_json::Number::from_f64(x)
                    .map(|n| Scalar(Cow::Owned(n.to_string())))
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
        }
        deserializer.deserialize_any(Any)
    }
}

/// An organization account as orgform's model holds it: its id, its name (the natural key), and
/// what `answer` (`{"organizationAccount": {...}}`, as retrieve answers) says about declarable
/// fields, under their spec names.
fn to_remote(id: String, name: &str, answer: &serde_json::Value) -> RemoteOrg {
    let fields = ProviderType::Neoncrm.schema().org;
    let attributes = match answer {
        serde_json::Value::Object(answer) => {
            from_wire(fields, &wire_view(fields, answer)).without(NOT_REPORTED)
        }
        _ => Reported::default(),
    };
    RemoteOrg {
        remote_id: id,
        natural_key: ProviderType::Neoncrm.natural_key(&[name]),
        status: RemoteStatus::Ready,
        detail: crate::model::Detail::default(),
        attributes,
    }
}

/// Fields never reported, whatever an answer holds. `login`: the Retrieve Organization Account
/// example shows none [S: by absence], and its `username` goes with a `password` that no read
/// returns (the spec's pair rule), so a reported username could never be declared as reported.
const NOT_REPORTED: &[&str] = &["login"];

/// What a v1 answer holds for `fields`, keyed by their wire names as `from_wire` reads them.
/// A field's wire name is its dotted parameter path (`organizationAccount.primaryContact`,
/// `addresses.address`), and the answer nests an object per segment, so each is looked up
/// segment by segment. A repeated group may be one bare object (v1's one-element list) or
/// empty (`""`, `{}`); a blank scalar is a field left unset, as orgform never sends a blank;
/// both are left out, as are empty objects and keys the schema does not know.
pub(crate) fn wire_view(
    fields: &[Field],
    answer: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value as J;
    let mut out = serde_json::Map::new();
    for field in fields {
        let Some(value) = at_path(answer, field.wire) else {
            continue;
        };
        let value = match (&field.kind, value) {
            (Kind::Object(inner), J::Object(map)) => {
                let inner = wire_view(inner, map);
                if inner.is_empty() {
                    continue;
                }
                J::Object(inner)
            }
            (Kind::Object(_), _) => continue,
            (Kind::Array(item), value) => {
                let items: Vec<J> = match value {
                    J::Array(items) => items.iter().collect(),
                    J::Object(map) if map.is_empty() => Vec::new(),
                    J::Object(_) => vec![value],
                    _ => Vec::new(),
                }
                .into_iter()
                .map(|element| match (item, element) {
                    (Kind::Object(inner), J::Object(map)) => J::Object(wire_view(inner, map)),
                    (_, other) => other.clone(),
                })
                .collect();
                if items.is_empty() {
                    continue;
                }
                J::Array(items)
            }
            (_, J::String(text)) if text.trim().is_empty() => continue,
            (_, other) => other.clone(),
        };
        out.insert(field.wire.to_string(), value);
    }
    out
}

/// The value at a dotted path of nested objects.
fn at_path<'a>(
    answer: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    let mut segments = path.split('.');
    let first = answer.get(segments.next()?)?;
    segments.try_fold(first, |at, segment| at.get(segment))
}

fn session_lapsed(errors: &[ApiError]) -> bool {
    errors
        .iter()
        .any(|e| matches!(e.error_code.0.trim(), "3" | "4"))
}

/// A FAIL as an error the caller can act on. A create refused for a documented reason created
/// nothing (`Rejected`); an unexpected system error during a create may hide one.
fn fail_error(errors: &[ApiError], call: Effect) -> ProviderError {
    let message = describe_errors(errors);
    let has = |code: &str| errors.iter().any(|e| e.error_code.0.trim() == code);
    if has("3") || has("4") || has("5") {
        return ProviderError::Unauthorized { message };
    }
    match call {
        Effect::Safe if has("1") || has("2") => ProviderError::Unavailable {
            message,
            retry_after: None,
        },
        Effect::Safe => ProviderError::Protocol { message },
        Effect::Creates if has("2") => ProviderError::Unavailable {
            message,
            retry_after: None,
        },
        Effect::Creates if has("1") => ProviderError::OutcomeUnknown { message },
        Effect::Creates => ProviderError::Rejected {
            status: StatusCode::OK.as_u16(),
            message,
        },
    }
}

/// Reads one v1 answer: HTTP status, the `wrapper` object, and `operationResult`.
async fn read_answer(
    response: Response,
    wrapper: &str,
    call: Effect,
) -> Result<Answer, ProviderError> {
    interpret(&answer_body(response, call).await?, wrapper, call)
}

/// The body of a v1 answer whose HTTP status is a success (as v1's answers are, failures
/// included); any other status as the error it means for `call`.
async fn answer_body(response: Response, call: Effect) -> Result<String, ProviderError> {
    let status = response.status();
    let body = read_body(response, call, "the answer").await?;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(ProviderError::Unauthorized {
            message: format!("HTTP {status}: {}", short(&body)),
        });
    }
    if !status.is_success() {
        let message = format!("HTTP {status}: {}", short(&body));
        return Err(match call {
            // A 4xx is a refusal before any work: nothing was created.
            Effect::Creates if status.is_client_error() => ProviderError::Rejected {
                status: status.as_u16(),
                message,
            },
            Effect::Creates => ProviderError::OutcomeUnknown { message },
            Effect::Safe => ProviderError::Protocol { message },
        });
    }
    Ok(body)
}

/// Reads the body of a v1 answer: the `wrapper` object, and `operationResult`.
fn interpret(body: &str, wrapper: &str, call: Effect) -> Result<Answer, ProviderError> {
    let unreadable = |why: String| match call {
        // Answered but unreadable: it may have been created, and the look-up will tell.
        Effect::Creates => ProviderError::OutcomeUnknown {
            message: format!("the create answer could not be read: {why}"),
        },
        Effect::Safe => ProviderError::Protocol {
            message: format!("the answer is not NeonCRM's JSON: {why}"),
        },
    };
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| unreadable(format!("{e} in {}", short(body))))?;
    let inner = match json.get(wrapper) {
        Some(inner) => inner.clone(),
        // Some failures come wrapped under another name; accept a lone wrapper of any name.
        None => match json.as_object().map(|o| o.values().collect::<Vec<_>>()) {
            Some(values) if values.len() == 1 && values[0].is_object() => values[0].clone(),
            _ => return Err(unreadable(format!("no `{wrapper}` in {}", short(body)))),
        },
    };
    let common = Common::deserialize(&inner).map_err(|e| unreadable(e.to_string()))?;
    match common.operation_result.as_deref().map(str::trim) {
        Some("SUCCESS") => Ok(Answer::Success(inner)),
        Some("FAIL") => {
            let mut errors = common.errors.error;
            if errors.is_empty()
                && let Some(m) = common.response_message
            {
                errors.push(ApiError {
                    error_code: Text::default(),
                    error_message: Some(m),
                });
            }
            Ok(Answer::Fail(errors))
        }
        other => Err(unreadable(format!(
            "operationResult is {}",
            other.map_or_else(|| "missing".to_string(), |o| format!("`{}`", short(o)))
        ))),
    }
}

impl Provider for Neon {
    async fn login(&self) -> Result<(), ProviderError> {
        self.session().await.map(|_| ())
    }

    async fn read(&self, keys: &[NaturalKey]) -> Result<InstanceReality, ProviderError> {
        let mut names: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if batches_at_most(&names, names.len().div_ceil(PAGE_SIZE)).is_none() {
            // Names in IN_RANGE searches cost a request per request line (a hundred names or
            // so). When that is more searches than N accounts fill pages of 200, reading every
            // organization account takes fewer, for as long as most accounts are orgform's.
            return self.search_all().await;
        }
        self.search(&names).await
    }

    /// Every organization account in pages of 200 (the same search as a read of many names),
    /// then each read once with `retrieveOrganizationAccount`, whose object holds the
    /// declarable fields the search's columns do not: concurrently, within the instance's
    /// `max_concurrency`. A login, `ceil(N / 200)` pages and `N` retrieves.
    async fn list_all(&self) -> Result<InstanceReality, ProviderError> {
        let listed = self.search_all().await?;
        let retrieved = futures_util::future::try_join_all(
            listed
                .orgs
                .into_values()
                .flatten()
                .map(|org| self.retrieve(org)),
        )
        .await?;
        let mut reality = InstanceReality::default();
        for org in retrieved {
            reality.insert(org);
        }
        Ok(reality)
    }

    async fn create(&self, org: &OrgSpec, cx: CreateContext) -> Result<RemoteOrg, ProviderError> {
        let schema = ProviderType::Neoncrm.schema();
        let name = org.natural_key.0.as_str();
        // NeonCRM would happily create a second account with this name: look first, unless this
        // run's own read (made under the state lock) just found the name absent.
        if !cx.absent_in_read {
            let existing = self.search(&[name]).await?;
            if let Some(found) = existing.find(&org.natural_key).first() {
                return Err(ProviderError::AlreadyExists {
                    message: format!(
                        "NeonCRM account {} is already named `{name}`",
                        found.remote_id
                    ),
                });
            }
        }
        let params = encode_create(schema.org, &org.attrs.unpack(), &self.secrets)?;
        let inner = self
            .call(
                "/account/createOrganizationAccount",
                "createOrganizationAccountResponse",
                &params,
                Effect::Creates,
            )
            .await?;
        let answer =
            CreateAnswer::deserialize(&inner).map_err(|e| ProviderError::OutcomeUnknown {
                message: format!("the create answer could not be read: {e}"),
            })?;
        let id = answer
            .account_id
            .map(|t| t.0)
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| ProviderError::OutcomeUnknown {
                message: "NeonCRM said SUCCESS without an accountId".into(),
            })?;
        Ok(RemoteOrg {
            remote_id: id,
            natural_key: org.natural_key.clone(),
            status: RemoteStatus::Ready,
            detail: crate::model::Detail::default(),
            attributes: Reported::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retrieve_answers_are_read_back_under_spec_names() {
        // The vendor's Retrieve Organization Account example, one-element lists as objects
        // and a zip code as a number, with a number as text and a blank as v1 varies them,
        // and a login, which is never reported.
        let answer = json!({
            "operationResult": "SUCCESS",
            "organizationAccount": {
                "accountId": 3543,
                "organizationName": "kliOrganizationName",
                "createdBy": "Administrator ",
                "primaryContact": {
                    "contactId": 5180, "firstName": "kevin", "lastName": "lee",
                    "email1": "kevin@example.org", "middleName": "",
                    "addresses": {"address": {
                        "addressId": "3438", "isPrimaryAddress": true,
                        "addressType": {"id": 1, "name": "Home"}, "addressLine1": "street1",
                        "city": "city", "state": {"code": "AL", "name": "ALABAMA"},
                        "country": {"id": 2, "name": "Canada"}, "zipCode": 111
                    }}
                },
                "noSolicitation": false,
                "url": "www.z2systems.com",
                "customFieldDataList": {"customFieldData": {"fieldId": 73, "fieldOptionId": 94}},
                "source": {"id": 43, "name": "J. Starr"},
                "organizationTypes": {"organizationType": [
                    {"id": 1, "name": "Church"}, {"id": "2", "name": "School"}
                ]},
                "login": {"username": "kli", "password": "never believed"}
            }
        });
        let org = to_remote("3543".into(), "kliOrganizationName", &answer);
        assert_eq!(
            serde_json::Value::Object(org.attributes.to_json()),
            json!({
                "organization_name": "kliOrganizationName",
                "primary_contact": {
                    "first_name": "kevin", "last_name": "lee", "email1": "kevin@example.org",
                    "addresses": [{
                        "address_id": 3438, "is_primary_address": true,
                        "address_type": {"id": 1, "name": "Home"}, "address_line1": "street1",
                        "city": "city", "state": {"code": "AL", "name": "ALABAMA"},
                        "country": {"id": 2, "name": "Canada"}, "zip_code": "111"
                    }]
                },
                "no_solicitation": false,
                "url": "www.z2systems.com",
                "custom_field_data_list": [{"field_id": 73, "field_option_id": 94}],
                "source": {"id": 43, "name": "J. Starr"},
                "organization_types": [{"id": 1, "name": "Church"}, {"id": 2, "name": "School"}]
            })
        );
    }

    #[test]
    fn list_rows_report_the_contact_columns_whatever_their_names() {
        let answer = ListAnswer::parse(&json!({
            "searchResults": {"nameValuePairs": {"nameValuePair": [
                {"name": "ACCOUNT ID", "value": "7"},
                {"name": "company name", "value": 1905},
                {"name": "First Name", "value": "Ruth"},
                {"name": "Last Name", "value": ""},
                {"name": "Email", "value": "ruth@example.org"}
            ]}}
        }))
        .expect("parse");
        let orgs = answer.organizations();
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].remote_id, "7");
        assert_eq!(orgs[0].natural_key.0, "1905");
        assert_eq!(
            serde_json::Value::Object(orgs[0].attributes.to_json()),
            json!({
                "organization_name": "1905",
                "primary_contact": {"first_name": "Ruth", "email1": "ruth@example.org"}
            })
        );
    }

    /// What the JSON tree reads of a `listAccounts` body: the reference the streamed reader
    /// must match (`None` for a FAIL or an error).
    fn by_tree(body: &str) -> Option<(u32, Vec<RemoteOrg>)> {
        match interpret(body, "listAccountsResponse", Effect::Safe).ok()? {
            Answer::Success(inner) => {
                let answer = ListAnswer::parse(&inner).ok()?;
                Some((answer.total_pages(), answer.organizations()))
            }
            Answer::Fail(_) => None,
        }
    }

    /// What a row was read as before rows were read without a JSON tree: the account's JSON
    /// made of the row, then [`to_remote`].
    fn by_json(pairs: &[(&str, &str)]) -> Option<RemoteOrg> {
        let get = |names: &[&str]| {
            pairs
                .iter()
                .find(|(have, _)| names.iter().any(|n| n.eq_ignore_ascii_case(have.trim())))
                .map(|(_, v)| (*v).to_string())
        };
        if let Some(kind) = get(&[ACCOUNT_TYPE])
            && !kind.trim().eq_ignore_ascii_case(ORGANIZATION)
        {
            return None;
        }
        let id = get(&[ACCOUNT_ID]).filter(|id| !id.trim().is_empty())?;
        let name = get(&[ORGANIZATION_NAME, COMPANY_NAME])?;
        let contact: serde_json::Map<String, serde_json::Value> = CONTACT_COLUMNS
            .iter()
            .filter_map(|(names, wire)| Some(((*wire).to_string(), get(names)?.into())))
            .collect();
        let account = json!({
            "organizationAccount": {"organizationName": &name, "primaryContact": contact},
        });
        Some(to_remote(id.trim().to_string(), &name, &account))
    }

    #[test]
    fn a_row_reports_what_its_account_json_did() {
        let rows: &[&[(&str, &str)]] = &[
            &[
                ("Account Id", "7"),
                ("Organization Name", "Acme"),
                ("First Name", "Ann"),
                ("Last Name", ""),
                ("Email", "a@example.org"),
            ],
            &[
                ("ACCOUNT ID", " 8 "),
                ("company name", " Beta "),
                ("email 1", "b@example.org"),
                ("Account Type", "organization"),
            ],
            &[
                ("Account ID", "9"),
                ("Organization Name", ""),
                ("First Name", "  "),
            ],
            &[
                ("Account ID", "10"),
                ("Organization Name", "Person"),
                ("Account Type", "Individual"),
            ],
            &[("Account ID", " "), ("Organization Name", "No id")],
            &[("Account ID", "11")],
            &[
                ("Account ID", "12"),
                ("Organization Name", "First"),
                ("Organization Name", "Second"),
                ("First Name", "x\"y\u{e9}"),
            ],
        ];
        for pairs in rows {
            let read = row_organization::<serde::de::value::Error>(pairs)
                .ok()
                .flatten();
            assert_eq!(read, by_json(pairs), "{pairs:?}");
        }
    }

    #[test]
    fn a_page_streamed_reads_what_the_json_tree_reads() {
        let extra = r#""extra": {"deep": [1, {"x": null}]}"#;
        let streamed = [
            // Documented, with every object carrying more, and a person among the rows.
            format!(
                r#"{{"listAccountsResponse": {{"operationResult": "SUCCESS", "responseDateTime": "t", {extra},
                "page": {{"currentPage": 1, "pageSize": 200, "totalPage": 3, "totalResults": 401, {extra}}},
                "searchResults": {{{extra}, "nameValuePairs": [
                  {{"nameValuePair": [{{"name": "Account Id", "value": 10001, {extra}}}, {{"name": "Organization Name", "value": "Acme"}},
                    {{"name": "Account Type", "value": "Organization"}}, {{"name": "First Name", "value": "Ann"}},
                    {{"name": "Last Name", "value": ""}}, {{"name": "Email", "value": "ann@example.org"}}], {extra}}},
                  {{"nameValuePair": [{{"name": "ACCOUNT ID", "value": "10002"}}, {{"name": "company name", "value": 1905}},
                    {{"name": "account type", "value": "Individual"}}]}},
                  {{"nameValuePair": [{{"name": "account id", "value": "10003"}}, {{"name": "Company Name", "value": "Esc \"q\" \u00e9"}},
                    {{"value": true, "name": "First Name"}}, {{"name": "Last Name", "value": null}}, {{"name": "Email", "value": -1.5}}, {{}}]}},
                  {{}}
                ]}}}}, "other": 1}}"#
            ),
            // Pages as strings, one row as the object, one pair as the object, the result last.
            r#"{"listAccountsResponse": {"page": {"totalPage": "2"}, "searchResults": {"nameValuePairs":
                {"nameValuePair": {"name": "Account ID", "value": 5}}}, "operationResult": " SUCCESS "}}"#.to_string(),
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs":
                {"nameValuePair": [{"name": "Account ID", "value": 5}, {"name": "Organization Name", "value": "Solo"}]}}}}"#.to_string(),
            // Nothing found, every way v1 says it.
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "page": "", "searchResults": {}}}"#.to_string(),
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": ""}}"#.to_string(),
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": [1]}}"#.to_string(),
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": null}}}"#.to_string(),
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": " "}}}"#.to_string(),
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": [{"nameValuePair": ""}, {"nameValuePair": {}}]}}}"#.to_string(),
        ];
        for body in &streamed {
            let Some(page) = streamed_page(body) else {
                panic!("not streamed: {body}");
            };
            let tree = by_tree(body);
            assert_eq!(Some((page.total_pages, page.organizations)), tree, "{body}");
        }
        assert_eq!(
            streamed_page(&streamed[0]).map(|p| p.organizations.len()),
            Some(2),
            "the person is not an organization"
        );
        // Left to the tolerant reader: a FAIL, another wrapper, a value that is no scalar,
        // shapes the tree reads otherwise or refuses.
        let left = [
            r#"{"listAccountsResponse": {"operationResult": "FAIL", "errors": {"error": {"errorCode": "4"}}}}"#,
            r#"{"otherResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": {"nameValuePair": {"name": "Account ID", "value": 5}}}}}"#,
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": {"nameValuePair": [{"name": "Account ID", "value": 5}, {"name": "Organization Name", "value": [1]}]}}}}"#,
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": [[{"nameValuePair": []}]]}}}"#,
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "searchResults": {"nameValuePairs": [{"nameValuePair": [{"name": 5}]}]}}}"#,
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS", "errors": {"error": 5}}}"#,
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS"}, "listAccountsResponse": {"operationResult": "SUCCESS"}}"#,
            r#"{"listAccountsResponse": {"searchResults": {}}}"#,
            r"[1]",
            r#"{"listAccountsResponse": {"operationResult": "SUCCESS"}} trailing"#,
        ];
        for body in left {
            assert!(streamed_page(body).is_none(), "streamed: {body}");
        }
        assert!(
            by_tree(left[1]).is_some_and(|(_, orgs)| orgs.is_empty()),
            "another wrapper is still read"
        );
        assert!(
            by_tree(left[2]).is_some_and(|(_, orgs)| orgs[0].natural_key.0 == "[1]"),
            "a value that is no scalar is read as its JSON text"
        );
    }
}
